"""The few facts about process ranks the runner needs. Works unlaunched (one process) and under
`accelerate launch` alike: everything goes through accelerate's PartialState."""

from __future__ import annotations

import os


def init_distributed() -> None:
    """Join the process group before anything asks for ranks.

    Launched with WORLD_SIZE > 1 on CPU, accelerate's PartialState() reports a single process
    (and without `cpu=True` its barriers do nothing) until a Trainer's arguments reset it to
    gloo, so every rank would act as rank 0 (writing the manifest, evaluating) before stage 1.
    """
    import torch
    from accelerate import PartialState

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    on_cpu = not torch.cuda.is_available()
    PartialState(**({"cpu": True, "backend": "gloo"} if distributed and on_cpu else {}))


def _state():
    # Not cached: TrainingArguments resets accelerate's shared state while it sets up devices,
    # which invalidates any PartialState object kept from before.
    from accelerate import PartialState

    return PartialState()


def is_main_process() -> bool:
    return _state().is_main_process


def num_processes() -> int:
    return _state().num_processes


def wait_for_everyone() -> None:
    _state().wait_for_everyone()


def shutdown() -> None:
    """End a distributed run cleanly; without it a rank may abort at exit (stack notes)."""
    import torch.distributed as dist

    if num_processes() > 1 and dist.is_initialized():
        wait_for_everyone()
        dist.destroy_process_group()
