"""Small helpers for tests: write a recipe, run the CLI in a subprocess."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def tiny_sft_recipe(out_dir: Path, name: str = "t", steps: int = 30, **train) -> dict:
    """A 2-stage SFT recipe on the toy model small enough for a test."""
    settings = {"max_steps": steps, "per_device_train_batch_size": 16, "learning_rate": 3.0e-3,
                "save_steps": 10, "logging_steps": 5, "disable_tqdm": True, **train}
    return {
        "run": {"name": name, "output_dir": str(out_dir), "seed": 0},
        "model": {"name_or_path": "toy"},
        "stages": [
            {"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "train": dict(settings)},
            {"name": "b", "kind": "sft", "data": {"toy": "addition"}, "train": dict(settings)},
        ],
        "eval": {"tasks": ["date_format", "addition"], "max_examples": 20},
    }


def run_cli(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m cpt ARGS` in a subprocess, as a user would run it."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "cpt", *args],
        check=False, capture_output=True, text=True, env=full_env, timeout=timeout, cwd=REPO,
    )


@contextlib.contextmanager
def one_thread():
    """torch on one thread, as torchrun sets each rank: the toy's matmuls are too small to share, and two
    threads spinning on two busy cores made an in-process run of many stages 5x slower (and a 344 x 128
    SVD take 0.5 s instead of 7 ms)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
