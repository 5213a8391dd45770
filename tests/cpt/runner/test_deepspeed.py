"""Every stage kind under `accelerate launch` with the DeepSpeed configs shipped in recipes/launch/,
two processes on CPU (gloo): ZeRO-2 ends near the single-process run's loss, ZeRO-3 trains all four
kinds (and a LoRA stage) in one launch and saves plain checkpoints that load in transformers.
Guards under ZeRO-2: tests/cpt/guards/test_deepspeed.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

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
    assert "launch: 2 processes, DeepSpeed ZeRO-2" in result.stdout

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


def test_zero3_runs_every_stage_kind_and_saves_plain_checkpoints(tmp_path, toy_dir):
    small = _train(4, 4)
    stages = [
        {"name": "pre", "kind": "cpt", "domains": [{"name": "general", "data": {"toy": "general"}}], "train": small},
        {"name": "sft", "kind": "sft", "data": {"toy": "date_format"}, "train": small},
        {"name": "lora", "kind": "sft", "data": {"toy": "sorting"}, "train": small, "peft": {"r": 8}},
        {"name": "dpo", "kind": "dpo", "data": {"toy": "date_format"}, "train": _train(3, 4)},
        {"name": "grpo", "kind": "grpo", "data": {"toy": "date_format"}, "rewards": [{"name": "exact_match"}],
         "rollout": {"backend": "hf"},
         "train": _train(2, 8, max_length=None, max_completion_length=8, num_generations=4)},
    ]
    recipe = {"run": {"name": "z3", "output_dir": str(tmp_path)}, "model": {"name_or_path": "toy"}, "stages": stages,
              "eval": {"tasks": ["date_format"], "max_examples": 5}}
    result = launch("zero3", write_recipe(tmp_path / "z3.yaml", recipe))
    assert "launch: 2 processes, DeepSpeed ZeRO-3" in result.stdout

    run = tmp_path / "z3"
    manifest = json.loads((run / "manifest.json").read_text())
    assert {n: s["status"] for n, s in manifest["stages"].items()} == {s["name"]: "done" for s in stages}
    parent = load_file(str(toy_dir / "model" / "model.safetensors"))
    for spec in stages:
        folder = run / "stages" / spec["name"] / "model"
        weights = load_file(str(folder / "model.safetensors"))
        assert weights.keys() == parent.keys() and all(weights[k].shape == parent[k].shape for k in parent)
        if spec["kind"] != "grpo":  # GRPO's toy reward is 0 everywhere here: no gradient, nothing to change
            moved = max((weights[k].float() - parent[k].float()).abs().max().item() for k in parent)
            assert moved > 0, f"{spec['name']}: the weights did not change"
        model = AutoModelForCausalLM.from_pretrained(folder)  # plain transformers, no DeepSpeed
        assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()
        parent = weights
    partitioned = list((run / "stages" / "sft" / "checkpoints").rglob("*zero_pp_rank_1*"))
    assert partitioned, "ZeRO-3 wrote no per-rank shards: DeepSpeed was not in use"
    matrix = json.loads((run / "eval" / "matrix.json").read_text())
    assert [row["checkpoint"] for row in matrix["rows"]] == ["base"] + [s["name"] for s in stages]
    assert result.stdout.count("run z3:") == 1, "only rank 0 prints the summary"


def test_zero3_refuses_guards_that_need_whole_weights(tmp_path, toy_dir):
    stage = {"name": "s", "kind": "sft", "data": {"toy": "date_format"}, "train": _train(2, 4),
             "guard": {"method": "osf"}}
    path = write_recipe(tmp_path / "r.yaml", {"run": {"name": "g", "output_dir": str(tmp_path)}, "stages": [stage]})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(LAUNCH / "zero3.yaml"),
               "-m", "cpt", "run", str(path)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert result.stderr.count("stage s: guard.method osf does not run under DeepSpeed ZeRO-3") == 1
    assert not (tmp_path / "g").exists()
