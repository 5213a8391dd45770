"""A non-finite loss or gradient stops the stage before the update, naming stage and step, and keeps
the last good checkpoint; `skip_bad_batches: N` skips up to N such steps, leaving the weights untouched.

The bad batches are injected (nothing real here diverges on demand): a forward hook on the toy model's
embedding multiplies its output by NaN (so the loss is NaN), or makes its gradient inf, on chosen
training forward calls. (TRL computes the SFT loss from hidden states itself, so the model's own
`loss` output cannot be poisoned instead.)
Everything else is the real runner, trainer and checkpoints.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from safetensors.torch import load_file

from cpt import cli
from cpt.errors import DIVERGED_EXIT
from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import tiny_sft_recipe, write_recipe

pytestmark = pytest.mark.slow


def _recipe(tmp_path, steps, **stage):
    recipe = tiny_sft_recipe(tmp_path, name="r", steps=steps, save_steps=5, logging_steps=1)
    recipe["stages"] = [{**recipe["stages"][0], **stage}]
    recipe.pop("eval")
    return write_recipe(tmp_path / "r.yaml", recipe)


def _inject(monkeypatch, bad_calls: set[int], where: str = "loss"):
    """Make the training forward calls numbered in `bad_calls` (from 1) produce a NaN loss, or an inf gradient."""
    from cpt.stages import sft

    original = sft.load_model
    calls = {"n": 0}

    def poisoned(output):
        if where == "loss":
            return output * float("nan")
        output.register_hook(lambda grad: grad * float("inf"))
        return output

    def hook(module, args, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] in bad_calls:
                return poisoned(output)
        return output

    def load_model(ctx, folder=None):
        model = original(ctx, folder)
        model.get_input_embeddings().register_forward_hook(hook)
        return model

    monkeypatch.setattr(sft, "load_model", load_model)


def test_nan_loss_stops_at_its_step_and_the_rerun_resumes_from_the_last_good_checkpoint(
        tmp_path, toy_dir, monkeypatch, capsys, caplog, cli_state_restored):
    path = _recipe(tmp_path, steps=20)
    _inject(monkeypatch, {13})
    assert cli.main(["run", str(path)]) == DIVERGED_EXIT
    said = capsys.readouterr().err  # the progress logged before it, then the error
    message = said[said.index("cpt: error:"):].strip()
    assert message.startswith("cpt: error: stage a: non-finite loss (nan) at step 13; stopped before the update")
    assert "checkpoint-10" in message and "skip_bad_batches" in message and "Traceback" not in said

    checkpoints = tmp_path / "r" / "stages" / "a" / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    assert (checkpoints / "checkpoint-10" / "COMPLETE").exists()
    assert all(torch.isfinite(w).all() for w in load_file(checkpoints / "checkpoint-10" / "model.safetensors").values())
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["stages"]["a"]["status"] == "running"

    monkeypatch.undo()
    with caplog.at_level(logging.INFO, logger="cpt"):
        summary = run_recipe(load_recipe(path), path.read_text())
    assert summary.stage_actions == {"a": "resumed"}
    assert "a: resumed from checkpoint-10, at step 10" in caplog.text


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_a_skipped_batch_leaves_the_weights_untouched(tmp_path, toy_dir, monkeypatch, caplog, where):
    path = _recipe(tmp_path, steps=1, skip_bad_batches=1)
    _inject(monkeypatch, {1}, where)
    with caplog.at_level(logging.INFO, logger="cpt"):
        summary = run_recipe(load_recipe(path), path.read_text())
    assert summary.stage_actions == {"a": "trained"}
    assert f"stage a: skipped step 1 (non-finite {where}" in caplog.text
    trained = load_file(tmp_path / "r" / "stages" / "a" / "model" / "model.safetensors")
    start = load_file(toy_dir / "model" / "model.safetensors")
    assert trained.keys() == start.keys()
    for key in start:
        assert torch.equal(trained[key], start[key]), key


def test_past_the_limit_the_stage_stops_naming_the_skipped_steps(tmp_path, toy_dir, monkeypatch):
    from cpt.errors import TrainingDiverged

    path = _recipe(tmp_path, steps=8, skip_bad_batches=1)
    _inject(monkeypatch, {2, 4})
    with pytest.raises(TrainingDiverged, match=r"stage a: non-finite loss \(nan\) at step 4;.*already skipped 1 "
                                               r"\(skip_bad_batches: 1, at steps 2\)"):
        run_recipe(load_recipe(path), path.read_text())


def test_the_check_takes_the_trainers_gradient_norm_instead_of_a_second_pass(tmp_path, toy_dir, monkeypatch):
    from cpt.stages import bad_batches

    recorded = []
    original = bad_batches._gradient_norm

    def spy(norm, model):
        recorded.append(norm)
        return original(norm, model)

    monkeypatch.setattr(bad_batches, "_gradient_norm", spy)
    path = _recipe(tmp_path, steps=3)
    run_recipe(load_recipe(path), path.read_text())
    assert len(recorded) == 3 and all(norm is not None and torch.isfinite(torch.as_tensor(norm)) for norm in recorded)
