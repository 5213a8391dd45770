"""Crash anywhere: a 3-stage recipe (cpt with learned mixing, sft, dpo; evaluated after each) is
SIGKILLed at 13 moments and rerun after each kill: once at a random time in startup, then in each
stage while a checkpoint folder is being written, at a random time in training, while the final model
is being written and during its evaluation (delays drawn with a fixed seed). After every kill the run's files must be
consistent (the manifest parses, a stage marked done has a complete model, every checkpoint marked
COMPLETE loads), every resume must start from a complete checkpoint, and the final run must end with
an uninterrupted run's weights (bit for bit: CPU, same seed, data order and RNG states restored),
logged training losses and accuracy matrix. The matrix is all 0% on a run this short (a toy task takes
hundreds of steps to learn), so the weights and losses are the comparison that can fail.

    pytest tests/cpt/runner/test_crash_anywhere.py -s    # prints where each kill landed and resume times
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO, write_recipe

pytestmark = pytest.mark.slow

STAGES = ("pre", "sft", "dpo")
TASKS = ("date_format", "addition")
# Where each kill lands: once during startup, then in each stage, in turn: while a checkpoint folder is being
# written, at a random time in training (after a checkpoint, so the next attempt resumes mid-stage), while
# the final model is being written, during its evaluation.
IN_STAGE = ("checkpoint write", "training", "model write", "evaluation")
PLAN = [("startup", None)] + [(moment, stage) for stage in STAGES for moment in IN_STAGE]


def _recipe(out_dir: Path, name: str) -> dict:
    common = {"save_steps": 4, "logging_steps": 4, "disable_tqdm": True}  # checkpoints every ~0.3 s
    return {
        "run": {"name": name, "output_dir": str(out_dir), "seed": 0},
        "model": {"name_or_path": "toy"},
        "stages": [
            {"name": "pre", "kind": "cpt",
             "domains": [{"name": "general", "data": {"toy": "general"}}, {"name": "code", "data": {"toy": "code"}}],
             "mixing": {"learner": "odm", "update_every": 4, "held_out_sequences": 2},
             "train": {"max_steps": 24, "per_device_train_batch_size": 8, "max_length": 32, "learning_rate": 3e-3,
                       **common}},
            {"name": "sft", "kind": "sft", "data": {"toy": "date_format"},
             "train": {"max_steps": 24, "per_device_train_batch_size": 16, "learning_rate": 3e-3, **common}},
            {"name": "dpo", "kind": "dpo", "data": {"toy": "date_format"},
             "train": {"max_steps": 16, "per_device_train_batch_size": 8, "max_length": 64, "learning_rate": 5e-4,
                       "beta": 0.1, **common}},
        ],
        "eval": {"tasks": list(TASKS), "max_examples": 12},
    }


class Attempt:
    """One `cpt run` of the recipe, its output in a file, and what existed on disk when it started."""

    def __init__(self, recipe_path: Path, run_dir: Path, log: Path):
        self.run_dir = run_dir
        self.before = _inodes(run_dir)
        self.log = log
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        with log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "cpt", "run", str(recipe_path)], cwd=REPO, env=env,
                                         stdout=out, stderr=subprocess.STDOUT)
        self.started = time.time()

    def new(self, path: Path) -> bool:
        """Whether `path` exists and was created by this attempt (not left by an earlier one)."""
        try:
            return self.before.get(path) != path.stat().st_ino
        except FileNotFoundError:
            return False

    def wait_for(self, moment: str, stage: str | None, rng: random.Random) -> bool:
        """Poll until `moment` happens in `stage` (then wait a random delay where the moment lasts);
        False if the run ended first."""
        delay = {"startup": rng.uniform(0.3, 5.0), "training": rng.uniform(0.0, 0.8),
                 "evaluation": rng.uniform(0.05, 0.5)}.get(moment, 0.0)  # writes: kill at once
        while self.proc.poll() is None:
            if self._happening(moment, stage):
                time.sleep(delay)
                return self.proc.poll() is None
            time.sleep(0.002)
        return False

    def _happening(self, moment: str, stage: str | None) -> bool:
        stage_dir = self.run_dir / "stages" / str(stage)
        if moment == "startup":
            return True
        if moment == "training":  # under way: this attempt has completed a checkpoint of the stage
            return any(self.new(c / "COMPLETE") for c in (stage_dir / "checkpoints").glob("checkpoint-*"))
        if moment == "checkpoint write":
            return any(self.new(c) and not (c / "COMPLETE").exists() for c in (stage_dir / "checkpoints").glob("checkpoint-*"))
        if moment == "model write":
            return self.new(stage_dir / ".model.partial")
        return self.new(stage_dir / "model" / "COMPLETE")  # evaluation: it follows the model's commit

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def _inodes(folder: Path) -> dict[Path, int]:
    if not folder.exists():
        return {}
    return {path: path.stat().st_ino for path in folder.rglob("*")}


def _state_of(run_dir: Path) -> str:
    """Where the run stood when killed: the running stage and what was being written, in words."""
    manifest = run_dir / "manifest.json"
    if not manifest.exists():
        return "before the manifest"
    stages = json.loads(manifest.read_text())["stages"]
    running = [n for n in STAGES if stages.get(n, {}).get("status") == "running"]
    done = [n for n in STAGES if stages.get(n, {}).get("status") == "done"]
    if running:
        return f"training {running[0]}"
    return f"after {done[-1]}" if done else "evaluating base"


def _check_consistent(run_dir: Path) -> None:
    """What any kill must leave: a readable manifest agreeing with the folders, and sound checkpoints."""
    manifest_path = run_dir / "manifest.json"
    if not manifest_path.exists():
        return
    stages = json.loads(manifest_path.read_text())["stages"]
    statuses = [stages.get(name, {}).get("status", "pending") for name in STAGES]
    assert statuses == sorted(statuses, key=["done", "running", "pending"].index), statuses  # in order
    for name, status in zip(STAGES, statuses):
        stage_dir = run_dir / "stages" / name
        if status == "done":
            assert (stage_dir / "model" / "COMPLETE").exists(), name
            assert load_file(stage_dir / "model" / "model.safetensors")
        for checkpoint in (stage_dir / "checkpoints").glob("checkpoint-*"):
            if (checkpoint / "COMPLETE").exists():
                assert load_file(checkpoint / "model.safetensors")
                state = json.loads((checkpoint / "trainer_state.json").read_text())
                assert f"checkpoint-{state['global_step']}" == checkpoint.name
                assert (checkpoint / "optimizer.pt").stat().st_size > 0
        for results in (stage_dir / "eval").glob("*.json"):
            json.loads(results.read_text())


def _final(run_dir: Path) -> tuple[dict, dict, dict[str, dict[str, torch.Tensor]]]:
    matrix = json.loads((run_dir / "eval" / "matrix.json").read_text())
    logs = {name: json.loads((run_dir / "stages" / name / "train_log.json").read_text()) for name in STAGES}
    losses = {name: [(e["step"], e["loss"]) for e in log if "loss" in e] for name, log in logs.items()}
    weights = {name: load_file(run_dir / "stages" / name / "model" / "model.safetensors") for name in STAGES}
    return matrix, losses, weights


def test_sigkill_at_thirteen_moments_then_the_run_ends_as_an_uninterrupted_one(tmp_path, toy_dir):
    killed_recipe = write_recipe(tmp_path / "killed.yaml", _recipe(tmp_path, "killed"))
    run_dir = tmp_path / "killed"
    rng = random.Random(0)
    kills, resumes, attempts = [], [], 0
    while True:
        attempts += 1
        attempt = Attempt(killed_recipe, run_dir, tmp_path / f"attempt-{attempts}.log")
        complete_at_start = {p for p in run_dir.glob("stages/*/checkpoints/checkpoint-*") if (p / "COMPLETE").exists()}
        if len(kills) < len(PLAN):
            moment, stage = PLAN[len(kills)]
            assert attempt.wait_for(moment, stage, rng), f"the run ended before {moment} in {stage}"
            attempt.kill()
            kills.append((f"{moment} {stage or ''}", _state_of(run_dir), round(time.time() - attempt.started, 1)))
        else:
            assert attempt.proc.wait(timeout=600) == 0, attempt.log.read_text()[-3000:]
        output = attempt.log.read_text()
        for stage, checkpoint, seconds in re.findall(r"^(\w+): resumed from (checkpoint-\d+), at step \d+ "
                                                     r"([\d.]+)s after", output, re.MULTILINE):
            assert run_dir / "stages" / stage / "checkpoints" / checkpoint in complete_at_start
            resumes.append((stage, checkpoint, float(seconds)))
        _check_consistent(run_dir)
        if attempt.proc.returncode == 0:
            break
        assert attempts < 40, "the run never finished"

    print(f"\n{len(kills)} kills, {attempts} attempts")
    for moment, where, seconds in kills:
        print(f"  killed at {seconds:5.1f}s: {moment:<22} ({where})")
    print(f"resumes: {resumes}; longest {max(s for *_, s in resumes):.1f}s" if resumes else "no resumes")
    assert len(kills) == len(PLAN) and attempts == len(PLAN) + 1

    plain_recipe = write_recipe(tmp_path / "plain.yaml", _recipe(tmp_path, "plain"))
    plain = Attempt(plain_recipe, tmp_path / "plain", tmp_path / "plain.log")
    assert plain.proc.wait(timeout=600) == 0, plain.log.read_text()[-3000:]
    matrix, losses, weights = _final(run_dir)
    plain_matrix, plain_losses, plain_weights = _final(tmp_path / "plain")
    assert matrix == plain_matrix
    assert losses == plain_losses
    for stage in STAGES:
        for key, tensor in plain_weights[stage].items():
            torch.testing.assert_close(weights[stage][key], tensor, rtol=0, atol=0, msg=f"{stage} {key}")
