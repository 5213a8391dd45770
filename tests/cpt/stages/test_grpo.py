"""The grpo stage on the toy model, started from an SFT checkpoint: it trains with a positive KL to its
starting model (the default reference), its rewards are logged, and a reward that raises stops it with
that reward's name. Run: pytest tests/cpt/stages/test_grpo.py

Not asserted yet: that GRPO raises held-out reward. On the toy model it has not done so reliably
(see issue #6's status note), so this file checks only what holds."""

from __future__ import annotations

import json

import pytest

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import run_cli, write_recipe

pytestmark = pytest.mark.slow

TASK = "date_format"
GRPO_TRAIN = {"max_steps": 10, "per_device_train_batch_size": 16, "num_generations": 4, "max_completion_length": 12,
              "learning_rate": 1.0e-4, "logging_steps": 5, "disable_tqdm": True}


def _recipe(tmp_path, **grpo):
    sft_train = {"max_steps": 60, "per_device_train_batch_size": 32, "learning_rate": 3.0e-3, "max_length": 64,
                 "disable_tqdm": True}
    return {"run": {"name": "rl", "output_dir": str(tmp_path)}, "stages": [
        {"name": "sft", "kind": "sft", "data": {"toy": TASK}, "train": sft_train},
        {"name": "grpo", "kind": "grpo", "data": {"toy": TASK, "max_examples": 400}, "train": GRPO_TRAIN, **grpo},
    ]}


def test_grpo_trains_with_kl_to_its_start(tmp_path, toy_dir):
    # The length penalty varies within every group, so each step has a learning signal and the policy moves.
    rewards = [{"name": "exact_match"}, {"name": "length_penalty", "args": {"max_tokens": 4, "coef": 0.1}}]
    path = write_recipe(tmp_path / "r.yaml", _recipe(tmp_path, rewards=rewards))
    run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    log = json.loads((run_dir / "stages" / "grpo" / "train_log.json").read_text())
    kls = [entry["kl"] for entry in log if "kl" in entry]
    assert kls and all(kl >= 0 for kl in kls) and max(kls) > 0
    for name in ("rewards/exact_match/mean", "rewards/length_penalty/mean"):
        assert all(name in entry for entry in log if "kl" in entry), name
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["grpo"]["reference"] == str(run_dir / "stages" / "sft" / "model")


def test_broken_reward_stops_the_stage_with_its_name(tmp_path, toy_dir):
    recipe = _recipe(tmp_path, rewards=[{"name": "tests.cpt.rewards.custom_rewards:broken"}])
    recipe["stages"][0]["train"]["max_steps"] = 2
    result = run_cli("run", str(write_recipe(tmp_path / "r.yaml", recipe)))
    assert result.returncode == 2
    assert "reward 'tests.cpt.rewards.custom_rewards:broken' raised KeyError: 'answer_column'" in result.stderr
    assert "Traceback" not in result.stderr
