"""KL anchor for sft and cpt stages: a term that keeps the model near where the stage started.

- `kl`: KL(pi || pi_start) per trained token (labels != -100), averaged, with pi_start the stage's
  starting model run on the same batch without gradients (one extra forward per step; an sft stage
  computes its loss from the same logits, guards/logits_loss.py);
- `l2`: the squared distance of the trainable weights to their start values (no extra forward).
DPO and GRPO carry their own reference term (beta), so the recipe schema keeps this guard off them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cpt.guards.base import Guard
from cpt.guards.config import KLAnchorSpec
from cpt.guards.logits_loss import forward_inputs


class KLAnchorGuard(Guard):
    name = "kl_anchor"

    def __init__(self, spec: KLAnchorSpec, load_reference):
        self.spec = spec
        self.needs_outputs = spec.distance == "kl"
        self.load_reference = load_reference  # () -> the starting model, loaded only for `kl`
        self.reference = None
        self.start: list[tuple[torch.nn.Parameter, torch.Tensor]] = []

    def attach(self, trainer) -> None:
        # Before train(): the model still holds the stage's starting weights (a resumed run loads its
        # checkpoint inside train()), so the anchor is the start, not the checkpoint.
        if self.spec.distance == "kl":
            self.reference = self.load_reference().to(trainer.args.device).eval()
            self.reference.requires_grad_(False)
        else:
            self.start = [(p, p.detach().clone()) for p in trainer.model.parameters() if p.requires_grad]

    def penalty(self, model, inputs, outputs) -> torch.Tensor:
        if self.spec.distance == "l2":
            return self.spec.weight * sum(((p - p0) ** 2).sum() for p, p0 in self.start)
        logits = getattr(outputs, "logits", None)
        if logits is None or not logits.requires_grad:
            # A loss path that builds no logits with gradient (TRL's fused LM head where logits_loss.py does
            # not cover the stage; measured: the anchor then changed nothing). One more forward gives ones that do.
            logits = model(**forward_inputs(inputs)).logits
        return self.spec.weight * self.token_kl(inputs, logits)

    def token_kl(self, inputs, logits: torch.Tensor) -> torch.Tensor:
        """Mean over trained tokens of KL(pi || pi_start) over the vocabulary."""
        with torch.no_grad():
            reference = self.reference(**forward_inputs(inputs)).logits
        labels = inputs.get("labels")
        mask = (labels[:, 1:] != -100) if labels is not None else inputs["attention_mask"][:, 1:].bool()
        log_p = F.log_softmax(logits[:, :-1].float(), dim=-1)
        log_q = F.log_softmax(reference[:, :-1].float(), dim=-1)
        per_token = (log_p.exp() * (log_p - log_q)).sum(-1)
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
