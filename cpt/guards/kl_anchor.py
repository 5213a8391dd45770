"""KL anchor for sft and cpt stages: a term that keeps the model near where the stage started.

- `kl`: KL(pi || pi_start) per trained token (labels != -100), averaged, with pi_start the stage's
  starting model run on the same batch without gradients (one extra forward per step; an sft stage
  computes its loss from the same logits, guards/logits_loss.py);
- `l2`: the squared distance of the trainable weights to their start values (no extra forward).
- `kl` with `text: FILE`: the same KL, on passages of general text instead of the stage's rows ("Learning without
  Forgetting", Li and Hoiem 2016, on text the model already handles): each line of the file continued by the
  starting model (`continue_tokens` greedy tokens, once, at the stage's start), a batch of them per step, KL at every
  position. The stage's own rows then learn unanchored; what is kept is the model's output on other text.

    guard: {method: kl_anchor, weight: 1, text: general.txt}   # one passage per line

DPO and GRPO carry their own reference term (beta), so the recipe schema keeps this guard off them.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from cpt.guards.base import Guard, passage_lines
from cpt.guards.config import KLAnchorSpec
from cpt.guards.logits_loss import forward_inputs

log = logging.getLogger(__name__)


class KLAnchorGuard(Guard):
    name = "kl_anchor"

    def __init__(self, spec: KLAnchorSpec, load_reference):
        self.spec = spec
        self.needs_outputs = spec.distance == "kl" and spec.text is None
        self.load_reference = load_reference  # () -> the starting model, loaded only for `kl`
        self.reference = None
        self.start: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
        self.passages: list[torch.Tensor] = []  # `text`: token ids of each passage with its continuation
        self.batch_size, self.pad_id = 1, 0
        self.trainer, self.calls = None, None  # `text`: where the stage stands, so a resume goes on where it stopped

    def attach(self, trainer) -> None:
        # Before train(): the model still holds the stage's starting weights (a resumed run loads its
        # checkpoint inside train()), so the anchor is the start, not the checkpoint.
        if self.spec.distance == "kl":
            self.reference = self.load_reference().to(trainer.args.device).eval()
            self.reference.requires_grad_(False)
            if self.spec.text is not None:
                self.passages = self.continued_passages(trainer.processing_class, trainer.args.device)
                self.batch_size = trainer.args.per_device_train_batch_size
                self.trainer = trainer
        else:
            self.start = [(p, p.detach().clone()) for p in trainer.model.parameters() if p.requires_grad]

    def penalty(self, model, inputs, outputs) -> torch.Tensor:
        if self.spec.distance == "l2":
            return self.spec.weight * sum(((p - p0) ** 2).sum() for p, p0 in self.start)
        if self.passages:
            return self.spec.weight * self.text_kl(model)
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
        return mean_kl(logits[:, :-1], reference[:, :-1], mask)

    def text_kl(self, model) -> torch.Tensor:
        """KL(pi || pi_start) at every position of the next `batch_size` passages (next_passages)."""
        rows = self.next_passages()
        device = next(model.parameters()).device
        ids = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True, padding_value=self.pad_id).to(device)
        mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(row) for row in rows], batch_first=True).to(device)
        logits = model(input_ids=ids, attention_mask=mask).logits
        with torch.no_grad():
            reference = self.reference(input_ids=ids, attention_mask=mask).logits
        return mean_kl(logits, reference, mask.bool())

    def next_passages(self) -> list[torch.Tensor]:
        """This process's next `batch_size` passages, cycling through them. The stage's step decides which, so a
        resumed stage reads the passages it would have read uninterrupted (a cursor kept in memory restarted at the
        first), and each process of a multi-process run reads its own block (rank r of w the r-th of every w)."""
        args = self.trainer.args
        if self.calls is None:  # the first call: train() has loaded a resumed checkpoint's step by now
            self.calls = self.trainer.state.global_step * args.gradient_accumulation_steps
        first = (self.calls * args.world_size + args.process_index) * self.batch_size
        self.calls += 1
        return [self.passages[(first + i) % len(self.passages)] for i in range(self.batch_size)]

    def continued_passages(self, tokenizer, device) -> list[torch.Tensor]:
        """Each non-empty line of `text`, tokenized, with the starting model's greedy continuation appended: the
        same ids on every run and resume (greedy, from the stage's start)."""
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        passages = []
        with torch.no_grad():
            for line in passage_lines(self.spec.text):
                ids = torch.tensor([tokenizer(line)["input_ids"]], device=device)
                if self.spec.continue_tokens:
                    ids = self.reference.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                  max_new_tokens=self.spec.continue_tokens, pad_token_id=self.pad_id)
                passages.append(ids[0].cpu())
        log.info("guard kl_anchor: %d passages of %s, %.0f tokens each on average, anchored at every position",
                 len(passages), self.spec.text, sum(len(row) for row in passages) / max(len(passages), 1))
        return passages


def mean_kl(logits: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the positions in `mask` of KL(softmax(logits) || softmax(reference)) over the vocabulary."""
    log_p = F.log_softmax(logits.float(), dim=-1)
    log_q = F.log_softmax(reference.float(), dim=-1)
    per_token = (log_p.exp() * (log_p - log_q)).sum(-1)
    return (per_token * mask).sum() / mask.sum().clamp(min=1)
