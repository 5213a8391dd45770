"""Interrupted work resumes: a SIGKILLed stage continues from its last complete checkpoint and
ends where an uninterrupted run ends; a checkpoint whose write crashed is never resumed from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import REPO, run_cli, tiny_sft_recipe, write_recipe

pytestmark = pytest.mark.slow

STEPS = 40


def _one_stage_recipe(out_dir, name):
    recipe = tiny_sft_recipe(out_dir, name=name, steps=STEPS, save_steps=10)
    recipe["stages"] = recipe["stages"][:1]
    recipe["eval"]["base"] = False
    return recipe


def _kill_after_checkpoint(recipe_path, checkpoint_dir, step):
    """Start `cpt run`, SIGKILL it once checkpoint-`step` is complete, and return."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpt", "run", str(recipe_path)], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    marker = checkpoint_dir / f"checkpoint-{step}" / "COMPLETE"
    deadline = time.time() + 300
    while not marker.exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_sigkill_mid_stage_resumes_and_matches_uninterrupted_run(tmp_path, toy_dir):
    killed = write_recipe(tmp_path / "killed.yaml", _one_stage_recipe(tmp_path, "killed"))
    stage_dir = tmp_path / "killed" / "stages" / "a"
    _kill_after_checkpoint(killed, stage_dir / "checkpoints", step=20)

    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert manifest["stages"]["a"]["status"] == "running"
    assert not (stage_dir / "model").exists()

    rerun = run_cli("run", str(killed))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "a: resumed" in rerun.stderr
    manifest = json.loads((tmp_path / "killed" / "manifest.json").read_text())
    assert manifest["stages"]["a"]["status"] == "done"
    assert manifest["stages"]["a"]["global_step"] == STEPS
    state = json.loads((stage_dir / "checkpoints" / f"checkpoint-{STEPS}" / "trainer_state.json").read_text())
    assert state["global_step"] == STEPS

    plain = write_recipe(tmp_path / "plain.yaml", _one_stage_recipe(tmp_path, "plain"))
    assert run_cli("run", str(plain)).returncode == 0
    resumed_w = load_file(stage_dir / "model" / "model.safetensors")
    plain_w = load_file(tmp_path / "plain" / "stages" / "a" / "model" / "model.safetensors")
    # Same data order, optimizer and RNG state after resume: the weights agree to float noise.
    for key in plain_w:
        torch.testing.assert_close(resumed_w[key], plain_w[key], rtol=1e-4, atol=1e-5)


def test_crash_during_checkpoint_write_is_never_resumed_from(tmp_path, toy_dir, monkeypatch):
    from transformers import Trainer

    from cpt.stages import registry as stages

    original_save_rng = Trainer._save_rng_state
    calls = {"n": 0}

    def crash_on_second_checkpoint(self, output_dir):
        calls["n"] += 1
        if calls["n"] == 2:  # the weights of checkpoint-20 are on disk, the rest is not
            raise OSError("simulated crash while writing a checkpoint")
        return original_save_rng(self, output_dir)

    monkeypatch.setattr(Trainer, "_save_rng_state", crash_on_second_checkpoint)
    path = write_recipe(tmp_path / "r.yaml", _one_stage_recipe(tmp_path, "crash"))
    with pytest.raises(OSError, match="simulated crash"):
        run_recipe(load_recipe(path), path.read_text())
    checkpoints = tmp_path / "crash" / "stages" / "a" / "checkpoints"
    assert (checkpoints / "checkpoint-20" / "model.safetensors").exists()
    assert not (checkpoints / "checkpoint-20" / "COMPLETE").exists()

    monkeypatch.setattr(Trainer, "_save_rng_state", original_save_rng)
    resumed_from = []
    original_sft = stages.STAGE_RUNNERS["sft"]
    monkeypatch.setitem(stages.STAGE_RUNNERS, "sft", lambda ctx: resumed_from.append(ctx.resume_from) or original_sft(ctx))
    summary = run_recipe(load_recipe(path), path.read_text())
    assert summary.stage_actions == {"a": "resumed"}
    assert resumed_from == [checkpoints / "checkpoint-10"]
