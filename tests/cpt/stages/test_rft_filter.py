"""RFT instance filtering: the decision rule on a constructed reward matrix, and the whole pre-pass with
real rollouts from the toy model and rewards that fix each prompt's outcome. Run: pytest tests/cpt/stages -q"""

from __future__ import annotations

import json

from datasets import Dataset

from cpt.rewards import load_rewards
from cpt.stages.context import StageContext
from cpt.stages.grpo_config import GRPOStageSpec
from cpt.stages.rft_filter import ALL_FAILED, ALL_SUCCEEDED, FILTER_FILE, filter_dataset, filter_decisions


def test_decisions_on_a_constructed_matrix():
    rewards = [[0, 0, 0], [1, 0, 0], [1, 1, 1], [0.5, 0.9, 0.99], [1.2, 1.0, 2.0]]
    assert filter_decisions(rewards, 1.0, drop_all_succeeded=False) == [ALL_FAILED, None, None, ALL_FAILED, None]
    assert filter_decisions(rewards, 1.0, drop_all_succeeded=True) == [
        ALL_FAILED, None, ALL_SUCCEEDED, ALL_FAILED, ALL_SUCCEEDED,
    ]


def test_prepass_drops_exactly_the_constant_prompts(toy_dir, tmp_path):
    prompts = ["always 1 =", "never 2 =", "mixed 3 =", "always 4 =", "mixed 5 =", "never 6 ="]
    dataset = Dataset.from_list([{"prompt": p, "answer": "x"} for p in prompts])
    spec = GRPOStageSpec(
        name="g", kind="grpo", data={"toy": "sorting"},
        rewards=[{"name": "tests.cpt.rewards.custom_rewards:by_prompt"}],
        filter={"rollouts": 4, "drop_all_succeeded": True},
    )
    ctx = StageContext(spec=spec, input_model=toy_dir / "model", reference_model=toy_dir / "model",
                       stage_dir=tmp_path, seed=0)
    rewards, weights = load_rewards(spec.rewards)
    kept = filter_dataset(ctx, dataset, rewards, weights, max_new_tokens=4, temperature=1.0)
    assert kept["prompt"] == ["mixed 3 =", "mixed 5 ="]
    record = json.loads((tmp_path / FILTER_FILE).read_text())
    assert (record["kept"], record["dropped_all_failed"], record["dropped_all_succeeded"]) == (2, 2, 2)
    assert {d["prompt"]: d["reason"] for d in record["dropped"]} == {
        "always 1 =": ALL_SUCCEEDED, "always 4 =": ALL_SUCCEEDED, "never 2 =": ALL_FAILED, "never 6 =": ALL_FAILED,
    }
