"""Sum loss statistics over all processes, so every rank feeds its learner the same numbers.

    sums = all_reduce_sum(torch.tensor([loss_sum_a, loss_sum_b, tokens_a, tokens_b], dtype=torch.float64))

Works unlaunched (returns its input) and under torch.distributed with gloo (CPU) or NCCL (the
tensor visits the current GPU). All-reduce hands every rank the identical result, so the
learners, fed identical losses with float64 arithmetic, hold identical weights on every rank.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of `values` over all processes, on the CPU."""
    if rank_and_world()[1] == 1:
        return values
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    summed = values.to(device)
    dist.all_reduce(summed, op=dist.ReduceOp.SUM)
    return summed.cpu()
