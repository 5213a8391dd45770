"""What a guard may do to a stage, and the one place a loss term enters a trainer.

A guard acts only through the trainers' own extension points:
- `prepare_model`: wrap the starting model (a PEFT adapter: O-LoRA's LoRA, OSF's SVD factors);
- `penalty`: a term added to the trainer's loss (O-LoRA's orthogonality, the KL anchor), through
  `GuardedLoss`, a mixin over `compute_loss` that works the same on Trainer, SFT, DPO and GRPO;
- `callbacks`: TrainerCallbacks (OSF's projection after each optimizer step);
- `write_files`: files saved beside the final model (O-LoRA's subspaces for the next stage).
"""

from __future__ import annotations

from pathlib import Path

import torch

from cpt.guards.logits_loss import sft_loss_with_logits


class Guard:
    """A guard that changes nothing; subclasses override what they use."""

    name = "none"  # the method's recipe name; its penalty is logged as guard/<name>
    needs_outputs = False  # penalty() reads the model's outputs (logits) of the batch

    def prepare_model(self, model):
        return model

    def attach(self, trainer) -> None:
        """Called once the trainer is built (its device and wrapped model are known)."""

    def penalty(self, model, inputs, outputs) -> torch.Tensor | None:
        return None

    def callbacks(self) -> list:
        return []

    def write_files(self, model, folder: Path) -> None:
        """Write extra files into the final model's folder, from the trained (still unmerged) model."""


def passage_lines(path: str | Path) -> list[str]:
    """The non-empty lines of a text guard's passage file (kl_anchor's and gpm's `text`), stripped."""
    lines = (line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


class GuardedLoss:
    """Mixin placed before a trainer class: its loss plus the guard's penalty, logged as `guard/<name>`.
    The guard is the trainer's `cpt_hooks.guard` (stages/hooks.py builds the class and sets both); without
    a guard, or with one that adds no penalty, the loss is the trainer's own.

    The penalty is scaled so it counts once per optimizer step whatever the gradient accumulation:
    the Trainer divides the loss by the accumulation steps unless the loss was already normalised
    over the whole accumulated batch (transformers' `training_step`), and we mirror that choice.
    """

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        guard = self.cpt_hooks.guard
        if not adds_penalty(guard):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if guard.needs_outputs:
            # One forward with logits where TRL's SFT loss would build none (logits_loss.py says what it saves)
            loss_and_outputs = sft_loss_with_logits(self, model, inputs, num_items_in_batch)
            if loss_and_outputs is None:
                loss_and_outputs = super().compute_loss(model, inputs, return_outputs=True,
                                                        num_items_in_batch=num_items_in_batch)
            loss, outputs = loss_and_outputs
        else:
            result = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss, outputs = result if return_outputs else (result, None)
        term = guard.penalty(model, inputs, outputs)
        if term is not None:
            self._guard_log.append(term.detach().float().item())
            loss = loss + term * self._penalty_scale(num_items_in_batch)
        return (loss, outputs) if return_outputs else loss

    def _penalty_scale(self, num_items_in_batch) -> float:
        scaled_for_ga = self.loss_is_scaled_for_ga
        if scaled_for_ga is None:
            scaled_for_ga = (self.model_accepts_loss_kwargs and num_items_in_batch is not None) or \
                self.compute_loss_func is not None
        scale = 1.0 / self.current_gradient_accumulation_steps if scaled_for_ga else 1.0
        # Trainer multiplies a token-normalised loss by the process count (DDP then averages it back).
        if self.args.average_tokens_across_devices and num_items_in_batch is not None and \
                (self.model_accepts_loss_kwargs or self.compute_loss_func):
            scale *= self.accelerator.num_processes
        return scale

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        if self._guard_log and "loss" in logs:  # training logs only, not eval
            logs[f"guard/{self.cpt_hooks.guard.name}"] = sum(self._guard_log) / len(self._guard_log)
            self._guard_log.clear()
        super().log(logs, *args, **kwargs)


def adds_penalty(guard: Guard | None) -> bool:
    """Whether `guard` adds a loss term (a subclass overriding `penalty`)."""
    return guard is not None and type(guard).penalty is not Guard.penalty
