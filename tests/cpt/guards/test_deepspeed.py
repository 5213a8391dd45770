"""Guards under DeepSpeed ZeRO-2, two processes on CPU (gloo): O-LoRA's loss term, OSF's gradient hooks
and after-step projection (on DeepSpeed's fp32 master weights), and the KL anchor all act there too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import REPO, write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]


def test_guards_under_zero2(tmp_path, toy_dir):
    train = {"max_steps": 6, "per_device_train_batch_size": 4, "learning_rate": 1e-3, "save_steps": 3,
             "logging_steps": 2, "disable_tqdm": True, "bf16": False}
    stages = [
        {"name": "a", "kind": "sft", "data": {"toy": "date_format"}, "train": train, "guard": {"method": "olora"}},
        {"name": "b", "kind": "sft", "data": {"toy": "sorting"}, "train": train, "guard": {"method": "olora"}},
        {"name": "c", "kind": "sft", "data": {"toy": "sorting"}, "train": train, "guard": {"method": "osf"}},
        {"name": "k", "kind": "sft", "data": {"toy": "sorting"}, "train": train, "guard": {"method": "kl_anchor"}},
    ]
    path = write_recipe(tmp_path / "r.yaml", {"run": {"name": "ds", "output_dir": str(tmp_path)}, "stages": stages})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--num_machines", "1",
               "--use_deepspeed", "--zero_stage", "2", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "cpt", "run", str(path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "deepspeed" in (result.stdout + result.stderr).lower()
    run = tmp_path / "ds" / "stages"

    orthogonality = [e["guard/olora"] for e in json.loads((run / "b" / "train_log.json").read_text()) if "guard/olora" in e]
    assert len(orthogonality) >= 2 and orthogonality[-1] < orthogonality[0]
    assert load_file(str(run / "b" / "model" / "olora_subspaces.safetensors"))[
        "model.layers.0.self_attn.q_proj"].shape[0] == 16  # stage a's rank 8 + stage b's

    start, end = load_file(str(run / "b" / "model" / "model.safetensors")), load_file(str(run / "c" / "model" / "model.safetensors"))
    for name in (n for n in start if n.endswith("proj.weight")):
        delta = end[name] - start[name]
        u, _, vh = torch.linalg.svd(start[name], full_matrices=False)
        k = min(start[name].shape) // 2  # OSF's default preserved share, 0.5
        assert (u[:, :k].T @ delta).norm() < 1e-3 * delta.norm(), name
        assert (delta @ vh[:k].T).norm() < 1e-3 * delta.norm(), name

    anchor = [e["guard/kl_anchor"] for e in json.loads((run / "k" / "train_log.json").read_text()) if "guard/kl_anchor" in e]
    assert anchor and all(v > 0 for v in anchor)
