"""The few facts about process ranks the runner needs. Works unlaunched (one process) and under
`accelerate launch` alike: everything goes through accelerate's PartialState."""

from __future__ import annotations


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
