"""Per-domain loss on the domains' held-out sequences: what the weight learners learn from.

    evaluate = HeldOutEvaluator(domains, batch_size=8)
    losses = evaluate(model)                    # {"general": 2.31, "code": 3.02}: mean token loss
    losses = evaluate(model, autocast=trainer.autocast_smart_context_manager)

With several processes each rank scores every world_size-th sequence and the (loss sum, token
count) pairs are all-reduced, so all ranks get the same losses. Every rank runs the same number
of forward passes (short shares are padded with a zero-weight sequence), as ZeRO-3 requires.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F

from data_mixing.domains import TokenDomain
from data_mixing.sync import all_reduce_sum, rank_and_world


class HeldOutEvaluator:
    """Mean token loss of a model on each domain's held-out sequences, over all ranks."""

    def __init__(self, domains: list[TokenDomain], batch_size: int):
        self.names = [d.name for d in domains]
        self.batch_size = batch_size
        self.sequences = torch.cat([d.held_out for d in domains]) if domains else torch.zeros(0, dtype=torch.long)
        self.domain_of = torch.cat([torch.full((len(d.held_out),), i) for i, d in enumerate(domains)] or [
            torch.zeros(0, dtype=torch.long)])

    def __bool__(self) -> bool:
        return len(self.sequences) > 0

    def __call__(self, model, autocast=nullcontext) -> dict[str, float]:
        rank, world = rank_and_world()
        mine = torch.arange(rank, len(self.sequences), world)
        per_rank = -(-len(self.sequences) // world)
        weight = torch.ones(per_rank, dtype=torch.float64)
        if len(mine) < per_rank:  # pad: same number of forward passes on every rank
            weight[len(mine):] = 0
            mine = torch.cat([mine, torch.zeros(per_rank - len(mine), dtype=torch.long)])
        totals = torch.zeros(2, len(self.names), dtype=torch.float64)  # loss sums, token counts
        was_training = model.training
        model.eval()
        try:
            for start in range(0, per_rank, self.batch_size):
                index = mine[start : start + self.batch_size]
                sums, tokens = self._score(model, self.sequences[index], autocast)
                w = weight[start : start + self.batch_size]
                totals[0].index_add_(0, self.domain_of[index], sums * w)
                totals[1].index_add_(0, self.domain_of[index], tokens * w)
        finally:
            model.train(was_training)
        totals = all_reduce_sum(totals)
        return {name: float(totals[0, i] / totals[1, i]) for i, name in enumerate(self.names) if totals[1, i] > 0}

    @staticmethod
    def _score(model, input_ids: torch.Tensor, autocast) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed next-token loss and token count of each sequence."""
        device = next(model.parameters()).device
        input_ids = input_ids.to(device)
        with torch.no_grad(), autocast():
            logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
        sums = torch.stack([  # one sequence at a time: float32 logits of a whole batch can be large
            F.cross_entropy(logits[j, :-1].float(), input_ids[j, 1:], reduction="sum") for j in range(len(input_ids))
        ])
        tokens = torch.full((len(input_ids),), input_ids.shape[1] - 1, dtype=torch.float64)
        return sums.double().cpu(), tokens
