"""A stop asked for mid-stage (SIGTERM, as Slurm sends it) checkpoints the current step and exits 75;
rerunning resumes from that checkpoint and ends with an uninterrupted run's weights. The stop file
($CPT_STOP_FILE, what the sbatch scripts use) stops a run before its next stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from cpt.errors import PREEMPTED_EXIT
from tests.helpers import REPO, run_cli, tiny_sft_recipe, write_recipe

STEPS = 80  # the stop lands near step 5 (the first logged loss), far from either end


def _recipe(tmp_path, name):
    recipe = tiny_sft_recipe(tmp_path, name=name, steps=STEPS, save_steps=1000)  # no periodic checkpoint
    recipe["stages"] = recipe["stages"][:1]
    recipe.pop("eval")
    return write_recipe(tmp_path / f"{name}.yaml", recipe)


@pytest.mark.slow
def test_sigterm_checkpoints_exits_75_and_the_rerun_matches(tmp_path, toy_dir):
    path = _recipe(tmp_path, "stopped")
    # Unbuffered, so that the first logged loss reaches this process as it is printed, not when a buffer fills.
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cpt", "run", str(path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:  # the trainer logs its loss every 5 steps: training is under way
        if "'loss'" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    checkpoints = tmp_path / "stopped" / "stages" / "a" / "checkpoints"
    assert proc.returncode == PREEMPTED_EXIT, stderr[-2000:]
    step = int(stderr.split("checkpoint saved at step ")[1].split(";")[0])
    assert 0 < step < STEPS
    print(f"stopped at step {step} of {STEPS}")  # shown with -s
    assert (checkpoints / f"checkpoint-{step}" / "COMPLETE").exists()
    manifest = json.loads((tmp_path / "stopped" / "manifest.json").read_text())
    assert manifest["stages"]["a"]["status"] == "running"

    rerun = run_cli("run", str(path))
    assert rerun.returncode == 0 and "a: resumed" in rerun.stderr, rerun.stderr[-2000:]
    assert run_cli("run", str(_recipe(tmp_path, "plain"))).returncode == 0
    resumed = load_file(str(tmp_path / "stopped" / "stages" / "a" / "model" / "model.safetensors"))
    plain = load_file(str(tmp_path / "plain" / "stages" / "a" / "model" / "model.safetensors"))
    for key in plain:
        torch.testing.assert_close(resumed[key], plain[key], rtol=1e-4, atol=1e-5)


def test_stop_file_stops_before_the_next_stage(tmp_path, monkeypatch):
    from cpt.core import preemption
    from cpt.errors import Preempted

    stop_file = tmp_path / "stop"
    monkeypatch.setenv(preemption.STOP_FILE_ENV, str(stop_file))
    preemption.check_stop("stage a")  # no file: goes on
    stop_file.touch()
    with pytest.raises(Preempted, match="stopped before stage b"):
        preemption.check_stop("stage b")
