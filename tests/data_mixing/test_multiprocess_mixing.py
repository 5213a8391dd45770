"""Two processes (DDP over gloo on CPU) learn identical weights: each rank scores its share of the
held-out sequences (DoReMi: against the reference's per-token losses, gathered on every rank), the
sums are all-reduced, and every rank's learner takes the same steps."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, write_recipe

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]

STEPS, PER_DEVICE, HELD_OUT, DOMAINS = 6, 4, 3, ("general", "code", "legal")


def test_two_ranks_hold_identical_weights(tmp_path, toy_dir):
    stage = {
        "name": "pre", "kind": "cpt",
        "domains": [{"name": d, "data": {"toy": d}} for d in DOMAINS],
        # 3 domains x 3 held-out sequences: 5 on rank 0, 4 (+1 padding) on rank 1
        "mixing": {"learner": "doremi", "update_every": 2, "held_out_sequences": HELD_OUT},
        "train": {"max_steps": STEPS, "per_device_train_batch_size": PER_DEVICE, "max_length": 32,
                  "save_steps": 3, "disable_tqdm": True},
    }
    recipe = write_recipe(tmp_path / "r.yaml", {"run": {"name": "mp", "output_dir": str(tmp_path)}, "stages": [stage]})
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               str(REPO / "tests" / "data_mixing" / "mp_mixing_worker.py"), str(recipe), str(tmp_path)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [e["step"] for e in rank0["trajectory"]] == [0, 2, 4, 6]
    assert rank0["trajectory"] == rank1["trajectory"] and rank0["learner"] == rank1["learner"]
    assert rank0["trajectory"][-1]["weights"] != rank0["trajectory"][0]["weights"]
    # Each rank scored only part of the held-out tokens; together, all of them.
    per_domain = HELD_OUT * 31  # next-token targets per sequence of 32
    for local0, local1 in zip(rank0["local_token_counts"], rank1["local_token_counts"]):
        assert 0 < local1[0] < per_domain and [a + b for a, b in zip(local0, local1)] == [per_domain] * 3
    # accelerate dispatches batches from rank 0: only its stream is read, 2 x batch per step (+ read-ahead)
    state = json.loads((tmp_path / "mp" / "stages" / "pre" / "checkpoints" / f"checkpoint-{STEPS}" /
                        "mixture_state.json").read_text())
    assert state["consumed_sequences"] == STEPS * PER_DEVICE * 2
    assert rank0["stream_position"] >= STEPS * PER_DEVICE * 2 and rank1["stream_position"] == 0
    written = json.loads((tmp_path / "mp" / "stages" / "pre" / "mixture_weights.json").read_text())
    assert written == rank0["trajectory"]
