"""The steps every stage kind shares around its TRL trainer: load the starting model, build the
trainer config over our defaults, train with resume and committed checkpoints, and save the
final model as a plain Hugging Face folder (LoRA merged in).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.trainer import TRAINING_ARGS_NAME

from cpt.core.atomic import commit_folder
from cpt.core.distributed import is_main_process, wait_for_everyone, zero_stage
from cpt.core.layout import StageLayout
from cpt.core.precision import choose_precision
from cpt.core.recipe_base import PeftSpec
from cpt.errors import Preempted
from cpt.guards import make_guard
from cpt.guards.travelling import carry_forward
from cpt.stages.bad_batches import BadBatchCheck
from cpt.stages.context import StageContext, StageResult
from cpt.stages.defaults import fast_defaults, runner_owned
from cpt.stages.hooks import StageHooks, hooked_trainer_class
from cpt.stages.lm_head import whole_logits_lm_head
from eval.files import atomic_write_json


def load_tokenizer(ctx: StageContext):
    source = ctx.tokenizer_source or ctx.input_model
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=ctx.trust_remote_code)
    if ctx.chat_template:
        tokenizer.chat_template = _read_template(ctx.chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _read_template(template: str) -> str:
    path = Path(template)
    return path.read_text(encoding="utf-8-sig") if path.suffix == ".jinja" else template


def load_model(ctx: StageContext, folder: Path | None = None):
    """The stage's starting model (or the one in `folder`) in float32 (bf16 runs as autocast mixed precision)."""
    return AutoModelForCausalLM.from_pretrained(
        folder or ctx.input_model, dtype=torch.float32, trust_remote_code=ctx.trust_remote_code
    )


def lora_config(spec: PeftSpec | None):
    if spec is None:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        task_type="CAUSAL_LM",
    )


def trainer_config(config_cls: type, ctx: StageContext, kind_defaults: dict[str, Any]):
    """Our defaults, then the kind's, then the recipe's `train:`, then what the runner owns
    (the precision it chose, which already honours the recipe's own bf16/fp16)."""
    chosen = ctx.precision or choose_precision(ctx.spec.train)
    precision = {"bf16": chosen.bf16, "fp16": chosen.fp16}
    settings = {**fast_defaults(), **kind_defaults, **ctx.spec.train, **precision, **runner_owned(ctx)}
    return config_cls(**settings)


def build_trainer(trainer_cls: type, ctx: StageContext, model, tokenizer, stage_callbacks: list | None = None,
                  **kwargs):
    """`trainer_cls(model=..., **kwargs)` with every hook of the stage in one ordered list (stages/hooks.py):
    the stage's own callbacks, the check for non-finite losses (stages/bad_batches.py), the stage's guard
    (if any) through its extension points (the model it prepares, its loss term, its callbacks: cpt/guards),
    and the runner's checkpoint commit, resume notice and stop."""
    guard = make_guard(ctx, tokenizer, load_model)
    check = BadBatchCheck(ctx.spec.name, ctx.spec.skip_bad_batches, ctx.checkpoint_dir)
    if guard is not None:
        model = guard.prepare_model(model)
    hooks = StageHooks.for_stage(ctx, guard, check, stage_callbacks)
    return hooked_trainer_class(trainer_cls)(model=model, processing_class=tokenizer, cpt_hooks=hooks, **kwargs)


def train_and_save(trainer, tokenizer, ctx: StageContext) -> StageResult:
    """Train (resuming if the runner found a checkpoint), then write the final model atomically.
    Raises Preempted, after a complete checkpoint, if the run was asked to stop (core/preemption.py).
    `trainer` comes from build_trainer, which gave it the checkpoint commit and the stop among its hooks."""
    stop = trainer.cpt_hooks.stop
    resume = str(ctx.resume_from) if ctx.resume_from else None
    with whole_logits_lm_head(trainer.args.device):  # TRL's LM head without Triton is slow (stages/lm_head.py)
        output = trainer.train(resume_from_checkpoint=resume)
    if stop.stopped_at is not None:
        raise Preempted(f"stage {ctx.spec.name}: checkpoint saved at step {stop.stopped_at}")
    _save_final(trainer, tokenizer, ctx)
    _write_train_log(trainer, ctx)
    metrics = {k: v for k, v in output.metrics.items() if isinstance(v, (int, float))}
    if ctx.resume_from:
        metrics["train_loss"] = _logged_mean_loss(trainer.state.log_history, metrics.get("train_loss"))
    result = StageResult(global_step=trainer.state.global_step, metrics=metrics)
    _release(trainer)
    return result


def _release(trainer) -> None:
    """Drop what the trainer's accelerator keeps of the stage (its model, optimizer, scheduler and dataloader
    lists; the DeepSpeed engine, destroyed), as accelerate's `free_memory` does but without its garbage
    collection, which would find the trainer still alive: the runner collects once the trainer is gone
    (runner/lineage.py), a full collection costing ~0.3 s in a process holding the training libraries."""
    accelerator = trainer.accelerator
    wrapped = getattr(accelerator, "deepspeed_engine_wrapped", None)
    if wrapped is not None:
        wrapped.engine.destroy()
        accelerator.deepspeed_engine_wrapped = None
    for kept in (accelerator._models, accelerator._optimizers, accelerator._schedulers, accelerator._dataloaders):
        kept.clear()


def _logged_mean_loss(log_history: list[dict], fallback):
    """The stage's mean training loss from its logged losses (each the mean over its logging window).
    After a resume, transformers' `train_loss` divides the loss summed in this process alone by every
    step of the stage, the steps before the resume included, so it comes out too low."""
    logged = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    if not logged:
        return fallback
    total, previous = 0.0, 0
    for step, loss in logged:
        total, previous = total + loss * (step - previous), step
    return total / previous


def _save_final(trainer, tokenizer, ctx: StageContext) -> None:
    """Every rank takes part (ZeRO-3 gathers shards); the main process writes and commits.
    A PEFT model (LoRA, O-LoRA, OSF) is saved merged: a plain model to evaluate, serve and train on.
    Files that travel with the model (guards/travelling.py) come along from the input model."""
    tmp = ctx.stage_dir / ".model.partial"
    if is_main_process():
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    wait_for_everyone()
    model = trainer.accelerator.unwrap_model(trainer.model)
    guard = trainer.cpt_hooks.guard
    merging = hasattr(model, "merge_and_unload")  # LoRA: serve and evaluate the trained model, not the base
    with _whole_weights(model) if merging else contextlib.nullcontext():
        if is_main_process():
            if guard is not None:
                guard.write_files(model, tmp)  # before merging: O-LoRA reads its adapter's A matrices
            if merging:
                model.merge_and_unload().save_pretrained(tmp)
    if not merging and zero_stage() == 3:
        trainer.save_model(str(tmp))  # gathers ZeRO-3 shards itself (zero3_save_16bit_model)
        if is_main_process():  # the Trainer's save adds its args as a pickle: the model folder holds safetensors only
            (tmp / TRAINING_ARGS_NAME).unlink(missing_ok=True)
    elif not merging and is_main_process():
        # Whole weights on every rank. Not the Trainer's save: under ZeRO-2 it hands save_pretrained DeepSpeed's
        # state dict, and a tied lm_head is then written as a weight of its own, which the start lacks.
        model.save_pretrained(tmp)
    if is_main_process():
        tokenizer.save_pretrained(tmp)
        carry_forward(ctx.input_model, tmp)  # guards' memory of earlier stages that this stage did not rewrite
        commit_folder(tmp, ctx.output_dir)
    wait_for_everyone()


def _whole_weights(model):
    """Under ZeRO-3 each rank holds a shard of every weight: gather them on all ranks (a collective)
    so the main process can merge the adapter into whole matrices. A no-op otherwise."""
    if zero_stage() != 3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None)


def _write_train_log(trainer, ctx: StageContext) -> None:
    """The trainer's log history (loss, lr, ...) for the report's training curves, and the settings it
    trained with as JSON (the Trainer's own copy, training_args.bin, is a pickle)."""
    if is_main_process():
        atomic_write_json(StageLayout(ctx.stage_dir).train_log, trainer.state.log_history)
        atomic_write_json(StageLayout(ctx.stage_dir).train_args, json.loads(trainer.args.to_json_string()))
