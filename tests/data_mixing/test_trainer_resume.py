"""A cpt stage with learned mixing, interrupted after its step-10 checkpoint and rerun, trains on
exactly the sequences an uninterrupted run trains on: the stream's state at step 20 (position,
per-domain cursors, random state, the hash chain over every sequence id it produced) is the same,
and so are the learned weights and the final model. For DoReMi the reference's per-token losses
(taken from the stage's starting model) come back from the checkpoint, not from the resumed model. Without `ignore_data_skip` the Trainer would
drop ten batches of the restored stream (the callback's read-ahead check stops the run; without
that check the weights differ by ~3e-3), and a state saved at the read-ahead position would drop one.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from data_mixing.callback import MIXTURE_STATE, MixingCallback
from tests.helpers import write_recipe

pytestmark = pytest.mark.slow

STEPS, PER_DEVICE = 20, 4


def _recipe(out_dir, name, learner):
    stage = {
        "name": "pre", "kind": "cpt",
        "domains": [{"name": "general", "data": {"toy": "general"}}, {"name": "code", "data": {"toy": "code"}}],
        "mixing": {"learner": learner, "update_every": 5, "held_out_sequences": 2},
        "train": {"max_steps": STEPS, "per_device_train_batch_size": PER_DEVICE, "max_length": 32,
                  "learning_rate": 3e-3, "save_steps": 10, "logging_steps": 5, "disable_tqdm": True},
    }
    return {"run": {"name": name, "output_dir": str(out_dir), "seed": 0}, "stages": [stage]}


def _run(tmp_path, name, learner):
    path = write_recipe(tmp_path / f"{name}.yaml", _recipe(tmp_path, name, learner))
    return run_recipe(load_recipe(path), path.read_text())


def _state(tmp_path, name, step):
    return json.loads((tmp_path / name / "stages" / "pre" / "checkpoints" / f"checkpoint-{step}" / MIXTURE_STATE).read_text())


@pytest.mark.parametrize("learner", ["odm", "doremi"])
def test_interrupted_mixing_stage_resumes_the_exact_stream(tmp_path, toy_dir, monkeypatch, learner):
    original = MixingCallback.on_step_end

    def crash_after_checkpoint_10(self, args, state, control, **kwargs):
        if state.global_step == 13:
            raise KeyboardInterrupt("simulated kill after checkpoint-10")
        return original(self, args, state, control, **kwargs)

    monkeypatch.setattr(MixingCallback, "on_step_end", crash_after_checkpoint_10)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "resumed", learner)
    monkeypatch.setattr(MixingCallback, "on_step_end", original)
    assert _run(tmp_path, "resumed", learner).stage_actions == {"pre": "resumed"}
    assert _run(tmp_path, "straight", learner).stage_actions == {"pre": "trained"}

    resumed, straight = _state(tmp_path, "resumed", STEPS), _state(tmp_path, "straight", STEPS)
    assert resumed["consumed_sequences"] == straight["consumed_sequences"] == STEPS * PER_DEVICE
    for key in ("position", "cursors", "counts", "digest", "rng"):
        assert resumed["stream"][key] == straight["stream"][key], key
    weights = [e["weights"][d] for e in straight["trajectory"] for d in ("general", "code")]
    assert [e["step"] for e in resumed["trajectory"]] == [0, 5, 10, 15, 20]
    assert weights[-1] != weights[1], "the learner moved the weights, so the resumed run had changes to restore"
    assert resumed["reference_token_losses"] == straight["reference_token_losses"]  # not retaken from step 10
    assert (straight["reference_token_losses"] is not None) == (learner == "doremi")
    assert [e["weights"][d] for e in resumed["trajectory"] for d in ("general", "code")] == pytest.approx(weights, abs=1e-5)
    trajectory = json.loads((tmp_path / "resumed" / "stages" / "pre" / "mixture_weights.json").read_text())
    assert [e["step"] for e in trajectory] == [0, 5, 10, 15, 20]

    model_r = load_file(tmp_path / "resumed" / "stages" / "pre" / "model" / "model.safetensors")
    model_s = load_file(tmp_path / "straight" / "stages" / "pre" / "model" / "model.safetensors")
    for key in model_s:
        torch.testing.assert_close(model_r[key], model_s[key], rtol=1e-4, atol=1e-5)
    log = json.loads((tmp_path / "straight" / "stages" / "pre" / "train_log.json").read_text())
    assert [e["step"] for e in log if "loss" in e] == [5, 10, 15, 20], "mixing logs must not swallow the loss logs"
    assert any("mixture/weight/code" in e for e in log)
