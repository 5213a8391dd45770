"""Trainer settings we choose when the recipe does not: fast for small models on CPU, safe on GPUs.

TRL 1.16 defaults to gradient checkpointing on, which recomputes activations: on a CPU with
small models it nearly doubles the step time (stack notes: 0.253 s -> 0.133 s per step with
bf16 on and checkpointing off). A recipe can set it back. TRL also defaults to bf16, which is
10x slower than fp32 on a CPU without native bf16: `core/precision.py` decides that instead.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from cpt.stages.trainer_args import RUNNER_OWNED_KEYS


def fast_defaults() -> dict[str, Any]:
    """Defaults shared by every stage kind; the recipe's `train:` mapping overrides them.
    Precision is not among them: the runner chooses it per stage from the hardware (core/precision.py)."""
    on_cpu = not torch.cuda.is_available()
    defaults = {
        "activation_checkpointing": False,
        "use_cpu": on_cpu,
        "report_to": "none",
        "logging_steps": 10,
        "save_strategy": "steps",
        "save_steps": 100,
        "dataloader_num_workers": 0,
        "disable_tqdm": False,
    }
    if on_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        defaults["ddp_backend"] = "gloo"  # else each CPU rank believes it is alone (stack notes)
    return defaults


def runner_owned(ctx) -> dict[str, Any]:
    """Settings the runner sets for every stage: one for each key of RUNNER_OWNED_KEYS, which the recipe
    check refuses in `train:` (stages/trainer_args.py), so nothing a recipe says is silently replaced."""
    owned = {
        "output_dir": str(ctx.checkpoint_dir),
        "resume_from_checkpoint": None,  # resuming is the runner's (trainer.train's argument), not the config's
        "save_total_limit": None,  # we rotate after marking complete (core/checkpoints.py)
        "push_to_hub": False,
        "seed": ctx.seed,
    }
    assert owned.keys() == RUNNER_OWNED_KEYS.keys(), "runner_owned and RUNNER_OWNED_KEYS must name the same keys"
    return owned
