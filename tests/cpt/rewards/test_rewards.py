"""The reward registry: built-in verifiable rewards, weights, custom rewards by dotted path, and the
messages that name a reward which raises or breaks its contract. Run: pytest tests/cpt/rewards -q"""

from __future__ import annotations

import pytest

from cpt.errors import UserError
from cpt.rewards import RewardError, checked_reward, combined_rewards, load_rewards, resolve_reward, reward_values
from cpt.stages.grpo_config import RewardSpec

COMPLETIONS = [" 123\nmore", " 12", "abc", " 3.5 apples"]


def _run(name, answer=None, **args):
    reward = checked_reward(name, resolve_reward(name), args)
    columns = {"answer": answer} if answer is not None else {}
    return reward(["p"] * len(COMPLETIONS), COMPLETIONS, **columns)


def test_builtin_rewards():
    assert _run("exact_match", answer=["123", "123", "abc", "3.5"]) == [1.0, 0.0, 1.0, 0.0]
    assert _run("numeric_match", answer=["123", "12.4", "1", "3"], tolerance=0.5) == [1.0, 1.0, 0.0, 1.0]
    assert _run("regex", pattern=r"^\d+$", full=True) == [0.0, 1.0, 0.0, 0.0]
    assert _run("regex", pattern=r"apple") == [0.0, 0.0, 0.0, 1.0]
    reward = checked_reward("length_penalty", resolve_reward("length_penalty"), {"max_tokens": 2, "coef": 0.5})
    assert reward(["p", "p"], ["a", "b"], completion_ids=[[1, 2, 3, 4], [1]]) == [-1.0, 0.0]


def test_weighted_combination_and_custom_reward():
    specs = [RewardSpec(name="exact_match", weight=2.0),
             RewardSpec(name="tests.cpt.rewards.custom_rewards:alternating", weight=0.5)]
    rewards, weights = load_rewards(specs)
    assert [r.__name__ for r in rewards] == ["exact_match", "tests.cpt.rewards.custom_rewards.alternating"]
    total = combined_rewards(rewards, weights, ["p"] * 4, COMPLETIONS, answer=["123", "0", "0", "0"])
    assert total == [2.5, 0.0, 0.5, 0.0]


def test_rewards_are_called_as_grpo_training_calls_them():
    """Outside training (the RFT filter) rewards get the same keywords as from TRL's GRPOTrainer: the
    length penalty counts tokens, not characters, and a reward can read the trainer state."""
    specs = [RewardSpec(name="length_penalty", args={"max_tokens": 1, "coef": 1.0}),
             RewardSpec(name="tests.cpt.rewards.custom_rewards:chat_by_prompt")]
    rewards, _ = load_rewards(specs)
    chats = [[{"role": "user", "content": "always 1"}]] * 2
    completions = [[{"role": "assistant", "content": "a long answer"}], [{"role": "assistant", "content": "b"}]]
    assert reward_values(rewards, chats, completions, [[5, 6, 2], [2]]) == [[-2.0, 0.0], [1.0, 1.0]]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tests.cpt.rewards.custom_rewards:broken", "reward 'tests.cpt.rewards.custom_rewards:broken' raised KeyError"),
        ("tests.cpt.rewards.custom_rewards:too_few", "returned 1 values for 4 completions"),
    ],
)
def test_broken_custom_reward_is_named(name, message):
    with pytest.raises(RewardError, match=message):
        _run(name)


def test_unimportable_reward():
    with pytest.raises(UserError, match="reward 'tests.cpt.rewards.custom_rewards:nope': cannot import it"):
        resolve_reward("tests.cpt.rewards.custom_rewards:nope")
    with pytest.raises(ValueError, match="'exactmatch' is not one of exact_match"):
        RewardSpec(name="exactmatch")
