"""Per-domain loss on the domains' held-out sequences: what the weight learners learn from.

    evaluate = HeldOutEvaluator(domains, batch_size=8)
    losses = evaluate(model)                    # {"general": 2.31, "code": 3.02}: mean token loss
    losses = evaluate(model, autocast=trainer.autocast_smart_context_manager, domains=["code"])
    reference = evaluate.token_losses(reference_model)          # [sequences, length - 1], for DoReMi
    losses, excess = evaluate.score(model, reference=reference)
    # excess: per domain, max(token loss - reference token loss, 0) averaged over the domain's tokens

With several processes each rank scores every world_size-th sequence and the (loss sum, token
count, excess sum) triples are all-reduced, so all ranks get the same numbers. Every rank runs the
same number of forward passes (short shares are padded with a zero-weight sequence), as ZeRO-3
requires. `token_losses` hands every rank the whole table (each rank fills its rows, then a sum).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from data_mixing.domains import TokenDomain
from data_mixing.sync import all_reduce_sum, rank_and_world


class HeldOutEvaluator:
    """Mean token loss (and DoReMi's clipped excess) of a model on each domain's held-out sequences."""

    def __init__(self, domains: list[TokenDomain], batch_size: int):
        self.names = [d.name for d in domains]
        self.batch_size = batch_size
        self.sequences = torch.cat([d.held_out for d in domains]) if domains else torch.zeros(0, dtype=torch.long)
        self.domain_of = torch.cat([torch.full((len(d.held_out),), i) for i, d in enumerate(domains)] or [
            torch.zeros(0, dtype=torch.long)])

    def __bool__(self) -> bool:
        return len(self.sequences) > 0

    def __call__(self, model, autocast=nullcontext, domains: list[str] | None = None) -> dict[str, float]:
        """Mean token loss per domain, of `domains` (default: all)."""
        return self.score(model, autocast, domains)[0]

    def score(self, model, autocast=nullcontext, domains: list[str] | None = None,
              reference: torch.Tensor | None = None) -> tuple[dict[str, float], dict[str, float] | None]:
        """(mean token loss, mean clipped excess over `reference` or None) per scored domain.

        `reference` is `token_losses` of the reference model on the same sequences."""
        totals = torch.zeros(3, len(self.names), dtype=torch.float64)  # loss sums, token counts, excess sums
        for index, weight, losses in self._share(model, autocast, domains):
            domain = self.domain_of[index]
            totals[0].index_add_(0, domain, losses.sum(1) * weight)
            totals[1].index_add_(0, domain, torch.full_like(weight, losses.shape[1]) * weight)
            if reference is not None:  # DoReMi clips each token's excess, then averages
                totals[2].index_add_(0, domain, (losses - reference[index]).clamp_min(0).sum(1) * weight)
        totals = all_reduce_sum(totals)
        scored = [(i, name) for i, name in enumerate(self.names) if totals[1, i] > 0]
        losses = {name: float(totals[0, i] / totals[1, i]) for i, name in scored}
        excess = {name: float(totals[2, i] / totals[1, i]) for i, name in scored} if reference is not None else None
        return losses, excess

    def token_losses(self, model, autocast=nullcontext) -> torch.Tensor:
        """Every held-out sequence's next-token losses, [sequences, length - 1] float64, on every rank."""
        table = torch.zeros(len(self.sequences), max(self.sequences.shape[1] - 1, 0), dtype=torch.float64)
        for index, weight, losses in self._share(model, autocast, None):
            real = weight > 0  # a padding sequence would be counted twice in the sum over ranks
            table[index[real]] = losses[real]
        return all_reduce_sum(table)

    def _share(self, model, autocast, domains: list[str] | None) -> Iterator[tuple[torch.Tensor, ...]]:
        """This rank's share of the chosen domains' sequences, a batch at a time: (index, weight, token losses)."""
        chosen = torch.arange(len(self.sequences))
        if domains is not None:
            wanted = torch.tensor([self.names.index(n) for n in domains], dtype=torch.long)
            chosen = chosen[torch.isin(self.domain_of, wanted)]
        rank, world = rank_and_world()
        mine = chosen[rank::world]
        per_rank = -(-len(chosen) // world)
        weight = torch.ones(per_rank, dtype=torch.float64)
        if len(mine) < per_rank:  # pad: same number of forward passes on every rank
            weight[len(mine):] = 0
            mine = torch.cat([mine, chosen[:1].repeat(per_rank - len(mine))])
        was_training = model.training
        model.eval()
        try:
            for start in range(0, per_rank, self.batch_size):
                index = mine[start : start + self.batch_size]
                losses = self._token_losses(model, self.sequences[index], autocast)
                yield index, weight[start : start + self.batch_size], losses
        finally:
            model.train(was_training)

    @staticmethod
    def _token_losses(model, input_ids: torch.Tensor, autocast) -> torch.Tensor:
        """Next-token loss of each position of each sequence, [batch, length - 1] float64 on the CPU."""
        device = next(model.parameters()).device
        input_ids = input_ids.to(device)
        with torch.no_grad(), autocast():
            logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
        losses = torch.stack([  # one sequence at a time: float32 logits of a whole batch can be large
            F.cross_entropy(logits[j, :-1].float(), input_ids[j, 1:], reduction="none") for j in range(len(input_ids))
        ])
        return losses.double().cpu()
