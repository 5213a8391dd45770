"""A non-finite loss or gradient never reaches the weights: the stage stops, or skips the batch.

    stages:
      - {name: sft_x, kind: sft, data: ..., skip_bad_batches: 3}   # default 0: stop at the first

Before each optimizer step every rank looks at the losses of the step's micro-batches and at the
gradients (after DDP's all-reduce, so every rank sees the same); the ranks agree with one
all-reduce. A bad step then either
- stops the stage (`TrainingDiverged`, exit 3) before the update: the weights, and so every
  checkpoint already written, stay finite, and a rerun resumes from the last one; or
- with `skip_bad_batches: N`, drops the step's gradients so the optimizer leaves the weights alone
  (AdamW skips parameters without a gradient), up to N times; the N+1-th stops the stage.

Transformers has no such check (its `logging_nan_inf_filter` only hides a NaN from the logged
loss), so we add it: a callback at `on_pre_optimizer_step` plus a mixin over `training_step`
that keeps each micro-batch's loss tensor (no extra GPU sync; the callback reads them once per step)
and over `_get_grad_norm`, which hands over the gradient norm the Trainer computes anyway (for clipping
and its log) so the check need not make a second pass over the gradients (1-2% of a step here).

Under DeepSpeed the engine updates inside `backward`, before this check, and the gradients are
its own: a bad loss stops the stage there, before the step is saved, and cannot be skipped.
"""

from __future__ import annotations

import logging

import torch
from transformers import TrainerCallback

from cpt.core.checkpoints import latest_complete_checkpoint
from cpt.core.distributed import any_process, is_main_process, zero_stage
from cpt.errors import TrainingDiverged

logger = logging.getLogger(__name__)


class BadBatchCheck(TrainerCallback):
    """Counts steps with a non-finite loss or gradient; stops the stage past `limit` of them."""

    def __init__(self, stage: str, limit: int, checkpoint_dir):
        self.stage = stage
        self.limit = limit
        self.checkpoint_dir = checkpoint_dir
        self.losses: list[torch.Tensor] = []  # this step's micro-batch losses, filled by RecordsLoss
        self.grad_norm = None  # this step's gradient norm as the Trainer computed it, filled by RecordsLoss
        self.skipped: list[int] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        losses, self.losses = self.losses, []
        recorded, self.grad_norm = self.grad_norm, None
        problem = _problem(losses, _gradient_norm(recorded, model))
        if not any_process(problem is not None):
            return control
        step = state.global_step + 1
        problem = problem or "a non-finite loss on another process"
        if len(self.skipped) >= self.limit or zero_stage() is not None:
            raise TrainingDiverged(self._stop_message(step, problem))
        self.skipped.append(step)
        for parameter in model.parameters():
            parameter.grad = None  # the optimizer skips parameters without a gradient
        if is_main_process():
            logger.warning("stage %s: skipped step %d (%s); %d of at most %d (skip_bad_batches)",
                           self.stage, step, problem, len(self.skipped), self.limit)
        return control

    def _stop_message(self, step: int, problem: str) -> str:
        last = latest_complete_checkpoint(self.checkpoint_dir)
        kept = f"the last good checkpoint, {last}, is kept and a rerun resumes from it" if last else \
            "no checkpoint was written yet; a rerun starts the stage again"
        if zero_stage() is not None:
            advice = "under DeepSpeed a bad batch cannot be skipped; lower the learning rate"
        elif len(self.skipped) >= self.limit > 0:
            advice = f"already skipped {self.limit} (skip_bad_batches: {self.limit}, at steps " \
                     f"{', '.join(map(str, self.skipped))}); lower the learning rate or raise the limit"
        else:
            advice = "lower the learning rate, or set skip_bad_batches: N on the stage to skip up to N bad batches"
        return f"stage {self.stage}: {problem} at step {step}; stopped before the update, so {kept}; {advice}"


class RecordsLoss:
    """Mixin placed before a trainer class: hands each micro-batch's loss to the BadBatchCheck, the
    trainer's `cpt_hooks.check` (stages/hooks.py builds the class and sets it)."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.cpt_hooks.check.losses.append(loss.detach())
        return loss

    def _get_grad_norm(self, model, grad_norm=None):
        # A private Trainer method (transformers 5): if a release drops it, this is never called and the
        # check computes the norm itself. Under DeepSpeed the engine's norm is its own: not taken.
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        if zero_stage() is None:
            self.cpt_hooks.check.grad_norm = grad_norm
        return grad_norm


def _gradient_norm(recorded, model) -> torch.Tensor | None:
    """The step's total gradient norm: the Trainer's, else computed here; None without gradients (DeepSpeed)."""
    if recorded is not None:
        return torch.as_tensor(recorded)
    gradients = [] if model is None else [p.grad for p in model.parameters() if p.grad is not None]
    if not gradients:  # none under DeepSpeed: its own buffers
        return None
    return torch.nn.utils.get_total_norm(gradients, error_if_nonfinite=False, foreach=True)


def _problem(losses: list[torch.Tensor], grad_norm: torch.Tensor | None) -> str | None:
    """What is wrong with this step on this process, or None."""
    if losses:
        values = torch.stack([loss.float().reshape(()) for loss in losses])
        if not torch.isfinite(values).all():
            bad = values[~torch.isfinite(values)][0].item()
            return f"non-finite loss ({bad})"
    if grad_norm is not None and not torch.isfinite(grad_norm):
        return f"non-finite gradients (norm {grad_norm.item()})"
    return None

