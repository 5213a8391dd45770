"""RFT instance filtering: the decision rule on a constructed reward matrix, the whole pre-pass with
real rollouts from the toy model and rewards that fix each prompt's outcome, and a recipe with chat
(`messages`) prompts and a negative length penalty through the filter and GRPO training.
Run: python -m pytest tests/cpt/stages/test_rft_filter.py -q"""

from __future__ import annotations

import json

import pytest
from datasets import Dataset

from cpt.recipe.load import load_recipe
from cpt.rewards import load_rewards
from cpt.runner.run import run_recipe
from cpt.stages.context import StageContext
from cpt.stages.grpo import generation_settings
from cpt.stages.grpo_config import GRPOStageSpec
from cpt.stages.rft_filter import (
    ALL_FAILED,
    ALL_SUCCEEDED,
    FILTER_FILE,
    filter_dataset,
    filter_decisions,
    shard,
    unshard,
)
from tests.helpers import write_recipe

PROMPTS = ["always 1 =", "never 2 =", "mixed 3 =", "always 4 =", "mixed 5 =", "never 6 ="]
EXPECTED_DROPS = {"always 1 =": ALL_SUCCEEDED, "always 4 =": ALL_SUCCEEDED, "never 2 =": ALL_FAILED,
                  "never 6 =": ALL_FAILED}
# Every completion pays at least 1 (coef 1 per token beyond 0): judged by the weighted sum, all would fail.
PENALTY = {"name": "length_penalty", "args": {"max_tokens": 0, "coef": 1.0}}


def test_decisions_on_a_constructed_matrix():
    rewards = [[0, 0, 0], [1, 0, 0], [1, 1, 1], [0.5, 0.9, 0.99], [1.2, 1.0, 2.0]]
    assert filter_decisions(rewards, 1.0, drop_all_succeeded=False) == [ALL_FAILED, None, None, ALL_FAILED, None]
    assert filter_decisions(rewards, 1.0, drop_all_succeeded=True) == [
        ALL_FAILED, None, ALL_SUCCEEDED, ALL_FAILED, ALL_SUCCEEDED,
    ]


def test_ranks_share_the_prompts_and_their_scores_come_back_in_order():
    """Each of 3 ranks samples every third prompt; the gathered scores are the prompts' in order, whatever the
    order the ranks' parts arrive in, and a prompt no rank scored is an error (not a silently shorter list)."""
    parts = [shard(7, rank, 3) for rank in range(3)]
    assert parts == [[0, 3, 6], [1, 4], [2, 5]]
    gathered = [{i: [float(i)] for i in part} for part in reversed(parts)]
    assert unshard(gathered, 7) == [[float(i)] for i in range(7)]
    assert shard(2, 2, 3) == []  # more ranks than prompts: a rank with none
    with pytest.raises(RuntimeError, match="5 of 7 prompts"):
        unshard(gathered[1:], 7)  # rank 2's part lost


def test_several_processes_sample_with_transformers_generate(monkeypatch):
    """One vLLM engine per rank beside the training job is not run; each rank samples with generate instead."""
    from cpt.rollouts import RolloutSpec
    from cpt.stages.rft_filter import _rollout_spec

    for processes, backend in ((1, "vllm"), (2, "hf")):
        monkeypatch.setattr("cpt.stages.rft_filter.num_processes", lambda processes=processes: processes)
        assert _rollout_spec(RolloutSpec(backend="vllm")).backend == backend
    assert _rollout_spec(RolloutSpec(backend="hf")).backend == "hf"


def test_prepass_drops_exactly_the_constant_prompts(toy_dir, tmp_path):
    dataset = Dataset.from_list([{"prompt": p, "answer": "x"} for p in PROMPTS])
    spec = GRPOStageSpec(
        name="g", kind="grpo", data={"toy": "sorting"},
        rewards=[{"name": "tests.cpt.rewards.custom_rewards:by_prompt"}],
        filter={"rollouts": 4, "drop_all_succeeded": True},
    )
    ctx = StageContext(spec=spec, input_model=toy_dir / "model", reference_model=toy_dir / "model",
                       stage_dir=tmp_path, seed=0)
    rewards, _ = load_rewards(spec.rewards)
    kept = filter_dataset(ctx, dataset, rewards, max_new_tokens=4, temperature=1.0)
    assert kept["prompt"] == ["mixed 3 =", "mixed 5 ="]
    record = json.loads((tmp_path / FILTER_FILE).read_text())
    assert (record["kept"], record["dropped_all_failed"], record["dropped_all_succeeded"]) == (2, 2, 2)
    assert {d["prompt"]: d["reason"] for d in record["dropped"]} == EXPECTED_DROPS


@pytest.mark.parametrize("sampling", [None, {"top_k": 1}])
def test_the_filter_samples_with_the_stage_sampling_settings(toy_dir, tmp_path, sampling):
    """top_k 1 (a recipe's GRPO setting) makes every rollout the greedy one; without it, temperature 1 varies them."""
    from tests.cpt.rewards import custom_rewards

    custom_rewards.RECORDED.clear()
    spec = GRPOStageSpec(name="g", kind="grpo", data={"toy": "sorting"}, filter={"rollouts": 4},
                         rewards=[{"name": "tests.cpt.rewards.custom_rewards:recording_by_position"}])
    ctx = StageContext(spec=spec, input_model=toy_dir / "model", reference_model=toy_dir / "model",
                       stage_dir=tmp_path, seed=0)
    rewards, _ = load_rewards(spec.rewards)
    dataset = Dataset.from_list([{"prompt": f"sort {n} =", "answer": "x"} for n in (8312, 5091, 7746, 2203)])
    filter_dataset(ctx, dataset, rewards, max_new_tokens=6, temperature=1.0, sampling=sampling)
    distinct = [len(set(group)) for group in custom_rewards.RECORDED]
    assert len(distinct) == 4 and (max(distinct) == 1 if sampling else max(distinct) > 1)


def test_generation_settings_are_the_grpo_config_ones():
    from trl import GRPOConfig

    defaults = generation_settings(GRPOConfig, {"max_completion_length": 12})
    assert defaults["max_new_tokens"] == 12 and defaults["temperature"] == 1.0
    assert defaults["sampling"] == {"top_p": 1.0, "top_k": 0, "min_p": None, "repetition_penalty": 1.0}
    chosen = generation_settings(GRPOConfig, {"top_k": 5, "generation_kwargs": {"top_p": 0.9, "temperature": 0.7}})
    assert chosen["temperature"] == 0.7 and chosen["sampling"]["top_k"] == 5 and chosen["sampling"]["top_p"] == 0.9


def test_success_is_judged_without_shaping_rewards():
    def spec(**filter_settings):
        return GRPOStageSpec(name="g", kind="grpo", data={"toy": "sorting"},
                             rewards=[{"name": "exact_match", "weight": 0.5}, {"name": "regex", "args": {"pattern": "x"}},
                                      PENALTY], filter={"rollouts": 2, **filter_settings})

    assert spec().success_reward_indices() == [0]
    assert spec(success_rewards=["regex", "exact_match"]).success_reward_indices() == [0, 1]
    with pytest.raises(ValueError, match="filter.success_rewards: 'numeric_match' is not one of this stage's rewards"):
        spec(success_rewards=["numeric_match"])


@pytest.mark.slow
def test_chat_prompts_through_the_filter_and_grpo_training(toy_dir, tmp_path):
    """Chat prompts are generated from with the chat template, every reward gets what training gives it
    (chat_by_prompt raises otherwise, in the filter and in TRL's GRPOTrainer alike), and the length
    penalty (negative on every rollout) does not turn successes into failures."""
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"prompt": [{"role": "user", "content": p}], "answer": "x"}) + "\n"
                            for p in PROMPTS))
    train = {"max_steps": 2, "per_device_train_batch_size": 4, "num_generations": 4, "max_completion_length": 6,
             "logging_steps": 1, "disable_tqdm": True}
    stage = {"name": "rl", "kind": "grpo", "data": {"path": str(data)}, "train": train,
             "rewards": [{"name": "tests.cpt.rewards.custom_rewards:chat_by_prompt"}, PENALTY],
             "filter": {"rollouts": 4, "drop_all_succeeded": True}}
    recipe = {"run": {"name": "chat", "output_dir": str(tmp_path), "seed": 0}, "stages": [stage]}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    record = json.loads((run_dir / "stages" / "rl" / FILTER_FILE).read_text())
    assert record["success_rewards"] == ["tests.cpt.rewards.custom_rewards:chat_by_prompt"]
    assert record["kept_indices"] == [2, 4]
    assert {d["prompt"][-1]["content"]: d["reason"] for d in record["dropped"]} == EXPECTED_DROPS
    log = json.loads((run_dir / "stages" / "rl" / "train_log.json").read_text())
    penalties = [e["rewards/length_penalty/mean"] for e in log if "rewards/length_penalty/mean" in e]
    assert len(penalties) == 2 and all(p <= -1.0 for p in penalties)  # trained on, penalty and all
