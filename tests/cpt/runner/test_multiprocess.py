"""`accelerate launch --num_processes 2 -m cpt run`: two ranks (DDP over gloo on CPU) share the
work, rank 0 alone writes, and the run finishes with a consistent manifest. DeepSpeed and Slurm
runs are tested where they are built (the multi-process and cluster issue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

STEPS, BATCH, ROWS = 10, 8, 2000  # the toy date_format task has 2000 training rows


def test_two_processes_run_every_stage(tmp_path, toy_dir):
    train = {"max_steps": STEPS, "per_device_train_batch_size": BATCH, "save_steps": 5, "disable_tqdm": True}
    recipe = {
        "run": {"name": "mp", "output_dir": str(tmp_path)},
        "stages": [
            {"name": "pre", "kind": "cpt", "domains": [{"name": "general", "data": {"toy": "general"}}],
             "train": {**train, "max_length": 64}},
            {"name": "sft", "kind": "sft", "data": {"toy": "date_format"}, "train": train},
        ],
        "eval": {"tasks": ["date_format"], "max_examples": 10},
    }
    path = write_recipe(tmp_path / "r.yaml", recipe)
    # --multi_gpu selects accelerate's torchrun launcher; without it, a CPU-only machine starts ONE process.
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "cpt", "run", str(path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    manifest = json.loads((tmp_path / "mp" / "manifest.json").read_text())
    assert {n: (s["status"], s["global_step"]) for n, s in manifest["stages"].items()} == {
        "pre": ("done", STEPS), "sft": ("done", STEPS)}
    # Two ranks each take BATCH rows per step, so the run covers twice the single-process epoch.
    assert manifest["stages"]["sft"]["metrics"]["epoch"] == pytest.approx(STEPS * BATCH * 2 / ROWS, rel=0.05)
    matrix = json.loads((tmp_path / "mp" / "eval" / "matrix.json").read_text())
    assert [row["checkpoint"] for row in matrix["rows"]] == ["base", "pre", "sft"]
    assert result.stdout.count("run mp:") == 1, "only rank 0 prints the summary"
