"""The SFT loss from one forward that keeps the logits, for a guard whose penalty reads them (the KL anchor).

    loss, outputs = sft_loss_with_logits(trainer, model, inputs, num_items_in_batch)   # None: use TRL's path

Why our own: TRL's SFTTrainer computes its loss through a fused LM head that builds no logits. Asked for its
outputs (`return_outputs=True`, deprecated for TRL 2.0) it runs a second forward without gradient, and a
penalty that needs logits with gradient ran a third, with its own backward: measured 0.39x the tokens/s of a
plain SFT stage on SmolLM2, 0.80x with this path (docs/performance.md). Here the policy runs once, with full
logits; the loss is TRL's "nll" loss from them (the sum over the labelled next tokens, divided by
`num_items_in_batch`, as SFTTrainer.compute_loss does), and the metrics TRL logs beside it (entropy,
mean_token_accuracy, num_tokens) come from the same logits, into the trainer's metrics as TRL keeps them
(`_metrics`, skipped if a release renames it).
A stage this path does not cover (another loss type, label smoothing, a custom loss function, MoE router
loss, pre-shifted labels under sequence parallelism) gets None and keeps TRL's own path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # TRL's and transformers' label for a position that is not trained on


def forward_inputs(inputs: dict) -> dict:
    """The batch as the policy's loss forward sees it, without labels: packed (padding-free) rows keep their
    sequence boundaries (`cu_seq_lens_*`, `seq_idx`), so a reference model run on it attends as the policy does."""
    return {**{k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}, "use_cache": False}


def covers(trainer, inputs) -> bool:
    """Whether `trainer` is an SFTTrainer whose loss this module computes exactly as TRL would."""
    from trl import SFTTrainer

    return (
        isinstance(trainer, SFTTrainer)
        and getattr(trainer.args, "loss_type", "nll") == "nll"
        and trainer.label_smoother is None
        and trainer.compute_loss_func is None
        and not getattr(trainer, "aux_loss_enabled", False)
        and "labels" in inputs
        and "shift_labels" not in inputs
    )


def sft_loss_with_logits(trainer, model, inputs, num_items_in_batch):
    """(loss, outputs with logits that carry gradient) from one forward, or None where `covers` says no."""
    if not covers(trainer, inputs):
        return None
    outputs = model(**forward_inputs(inputs))
    labels = inputs["labels"][:, 1:]
    trained = labels != IGNORE_INDEX
    # One log-softmax over the labelled positions serves the loss and TRL's metrics
    log_probs = F.log_softmax(outputs.logits[:, :-1][trained].float(), dim=-1)
    picked = log_probs.gather(-1, labels[trained].unsqueeze(-1)).squeeze(-1)
    tokens = trained.sum() if num_items_in_batch is None else num_items_in_batch
    loss = -picked.sum() / torch.as_tensor(tokens, device=picked.device).clamp(min=1)
    _record_metrics(trainer, inputs, log_probs.detach(), labels[trained])
    if trainer.args.average_tokens_across_devices and num_items_in_batch is not None:
        # As SFTTrainer: `num_items_in_batch` counts every rank's tokens, and DDP averages the gradients back
        loss = loss * (trainer.accelerator.num_processes // trainer.get_tp_size())
    return loss, outputs


@torch.no_grad()
def _record_metrics(trainer, inputs, log_probs: torch.Tensor, targets: torch.Tensor) -> None:
    """TRL's per-batch SFT metrics, from the log-probabilities at the labelled positions and their targets, as
    SFTTrainer.compute_loss records them."""
    metrics = getattr(trainer, "_metrics", None)
    if metrics is None or not hasattr(trainer, "_total_train_tokens"):
        return
    gather = trainer.accelerator.gather_for_metrics
    valid = gather(torch.tensor(len(targets), device=targets.device)).sum()
    entropy = gather(-(log_probs.exp() * log_probs).sum()).sum()
    correct = gather((log_probs.argmax(-1) == targets).sum()).sum()
    mode = "train" if trainer.model.training else "eval"
    metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
    metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
    if mode == "train":  # packed (padding-free) rows carry position_ids and no attention mask
        attention_mask = inputs.get("attention_mask")
        local_tokens = (attention_mask.sum() if attention_mask is not None
                        else torch.tensor(inputs["position_ids"].size(1), device=targets.device))
        trainer._total_train_tokens += gather(local_tokens).sum().item() // trainer.get_tp_size()
    metrics[mode]["num_tokens"] = [trainer._total_train_tokens]
