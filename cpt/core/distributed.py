"""The few facts about process ranks the runner needs. Works unlaunched (one process) and under
`accelerate launch` alike: everything goes through accelerate's PartialState."""

from __future__ import annotations

import contextlib
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


def any_process(flag: bool) -> bool:
    """Whether `flag` is true on any process; every process gets the same answer (a collective call
    when there are several, so every process must make it at the same point)."""
    if num_processes() == 1:
        return flag
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([1.0 if flag else 0.0], device=_state().device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def process_index() -> int:
    return _state().process_index


def gather_objects(item) -> list:
    """Every process's `item` (picklable, from our own code), in rank order, on every process (a collective
    when there are several, so every process must make it at the same point)."""
    if num_processes() == 1:
        return [item]
    import torch.distributed as dist

    gathered: list = [None] * num_processes()
    dist.all_gather_object(gathered, item)
    return gathered


def wait_for_everyone() -> None:
    _state().wait_for_everyone()


def shutdown() -> None:
    """End a distributed run cleanly; without it a rank may abort at exit (stack notes)."""
    import torch.distributed as dist

    if num_processes() > 1 and dist.is_initialized():
        wait_for_everyone()
        dist.destroy_process_group()


@contextlib.contextmanager
def main_process_first():
    """The main process runs the block first, then the others (which then find its files).

    For anything that writes a shared folder (the toy build, a model import): transformers'
    save_pretrained silently skips the weights on any rank but 0 once torch.distributed is up,
    so a folder written by another rank would hold a config and tokenizer but no model.
    """
    if not is_main_process():
        wait_for_everyone()
    yield
    if is_main_process():
        wait_for_everyone()


def launch_description() -> str:
    """How this run was launched, from accelerate's environment: '2 processes, DeepSpeed ZeRO-3'."""
    count, stage = num_processes(), zero_stage()
    text = f"{count} process{'es' if count > 1 else ''}"
    if stage is not None:
        return f"{text}, DeepSpeed ZeRO-{stage}"
    return f"{text}, DDP" if count > 1 else text


def zero_stage() -> int | None:
    """The DeepSpeed ZeRO stage this process was launched with, or None without DeepSpeed. accelerate puts
    the stage in the environment, except with a DeepSpeed config file (`deepspeed_config_file:`), which
    then holds it."""
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() != "true":
        return None
    stage = os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
    config_file = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if stage is None and config_file:
        import json

        with open(config_file, encoding="utf-8") as handle:
            stage = json.load(handle).get("zero_optimization", {}).get("stage")
    return int(stage if stage is not None else 2)


def end_deepspeed_stage() -> None:
    """After a stage: forget its DeepSpeed config, so models loaded before the next stage's trainer
    exists load whole. Under ZeRO-3, transformers loads every model sharded (zero.Init) while the last
    stage's config is alive; the evaluation, which loads its model on the main process alone, would
    then wait forever for the other ranks. The next stage's TrainingArguments set a config again."""
    if zero_stage() is not None:
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
