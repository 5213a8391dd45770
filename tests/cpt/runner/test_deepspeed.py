"""`accelerate launch` with the DeepSpeed ZeRO-2 config shipped in recipes/launch/, two processes on CPU
(gloo): the run ends near the single-process run's loss. Every guard x stage kind under every launcher
(ZeRO-3 included): tests/cpt/runner/test_support_matrix_runs.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, run_cli, write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

LAUNCH = REPO / "recipes" / "launch"


def launch(config: str, recipe_path, *args: str, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(LAUNCH / f"{config}.yaml"),
               "--num_processes", str(processes), "-m", "cpt", "run", str(recipe_path), *args]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def _train(steps: int, batch: int, **extra) -> dict:
    settings = {"max_steps": steps, "per_device_train_batch_size": batch, "max_length": 64, "learning_rate": 1e-3,
                "logging_steps": 1, "save_steps": 100, "disable_tqdm": True, **extra}
    return {key: value for key, value in settings.items() if value is not None}


def _losses(run_dir, stage: str) -> list[float]:
    return [e["loss"] for e in json.loads((run_dir / "stages" / stage / "train_log.json").read_text()) if "loss" in e]


def test_zero2_two_processes_end_near_the_single_process_loss(tmp_path, toy_dir):
    """Same global batch (2 x 4 against 1 x 8), same seed: the sampler hands the two ranks the same rows
    the single process takes in one batch, so the loss curves differ only by float reduction order."""
    def recipe(name: str, batch: int) -> dict:
        fp32 = {"bf16": False, "learning_rate": 3e-3}  # bf16 under DeepSpeed keeps bf16 weights, on one process
        # autocast does not; 3e-3: the 0.9M toy learns too little in 20 steps at 1e-3 to tell learning from noise
        return {"run": {"name": name, "output_dir": str(tmp_path), "seed": 0}, "model": {"name_or_path": "toy"},
                "stages": [
                    {"name": "pre", "kind": "cpt", "domains": [{"name": "general", "data": {"toy": "general"}}],
                     "train": _train(20, batch, **fp32)},
                    {"name": "sft", "kind": "sft", "data": {"toy": "date_format"}, "train": _train(20, batch, **fp32)},
                ]}

    single = run_cli("run", str(write_recipe(tmp_path / "one.yaml", recipe("one", 8))))
    assert single.returncode == 0, single.stderr[-3000:]
    result = launch("zero2", write_recipe(tmp_path / "two.yaml", recipe("two", 4)))
    assert "launch: 2 processes, DeepSpeed ZeRO-2" in result.stderr  # progress: on stderr

    for stage in ("pre", "sft"):
        one, two = _losses(tmp_path / "one", stage), _losses(tmp_path / "two", stage)
        assert len(one) == len(two) == 20
        assert two[-1] < 0.8 * two[0], f"{stage}: the 2-process run did not learn"
        # Tolerance: 0.1% of each logged loss (measured: at most 4e-6 relative over both stages).
        for step, (a, b) in enumerate(zip(one, two), start=1):
            assert b == pytest.approx(a, rel=1e-3), f"{stage} step {step}: {a} (1 process) vs {b} (ZeRO-2)"
    # DeepSpeed wrote the checkpoint: its optimizer state is partitioned, one file per rank.
    shards = sorted(p.name for p in (tmp_path / "two" / "stages" / "sft" / "checkpoints").rglob("*optim_states.pt"))
    assert len(shards) == 2 and "zero_pp_rank_1" in shards[1]
