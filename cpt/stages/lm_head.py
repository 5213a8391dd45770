"""TRL's fused LM head without Triton (on a CPU): the same per-token outputs from the whole logits, faster.

Every TRL 1.16 trainer we wrap (SFT, DPO, GRPO) patches its model with a "fused LM head"
(`trl.trainer.utils.add_fused_lm_head`) that turns hidden states into per-token log-probabilities in
[tokens x vocabulary] tiles, never holding the whole logits. On a GPU that is a Triton kernel and saves
memory. Without Triton it falls back to torch ops that recompute the LM-head projection in backward, run
its gradient matmuls in fp32 (a fifth of bf16's speed on this CPU) and make some twenty passes over each
tile: on SmolLM2-135M (49k-token vocabulary, 8 x 128 tokens) 5.1 s per SFT step against 3.6 s with the
whole logits (benchmarks/stage_throughput.py measures it per stage).

So, while a stage trains on a device without Triton, `whole_logits_lm_head()` has TRL's fused forward call
`WholeLogitsLogProbs` instead of its chunked function: one projection, one log-softmax, autograd for the
backward (what a plain transformers model does under autocast). Same arguments, same outputs, checked
against TRL's function in tests/cpt/stages/test_lm_head.py. Calls whose logits would pass
`MAX_WHOLE_LOGITS` elements (long packed rows, huge vocabularies) still go to TRL's chunked function,
and so does everything under ZeRO-3, whose partitioned LM head TRL gathers itself.

This swaps a private name of TRL's (`trl.trainer.utils._ChunkedLogProbFunction`), for the duration of
training only; if a TRL release moves it, the swap is skipped and TRL's own path runs.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from cpt.core.distributed import zero_stage

# Above this many logits per call (2^27 = 512 MB in fp32; ~2.5 GB at the peak with the softmax and the
# entropy's temporaries) TRL's chunked function's memory saving matters more than its speed.
MAX_WHOLE_LOGITS = 2**27
OPTIONAL_OUTPUTS = ("entropy", "log_sum_sq_probs", "mean_logits", "is_top1")


class WholeLogitsLogProbs:
    """A drop-in for TRL's `ChunkedLogProbFunction` (same `apply` arguments and outputs) that projects all
    tokens at once. `chunked` is TRL's function, used for calls past `MAX_WHOLE_LOGITS` or on a GPU."""

    def __init__(self, chunked, max_logits: int = MAX_WHOLE_LOGITS):
        self.chunked = chunked
        self.max_logits = max_logits

    def apply(self, hidden, weight, bias, targets, temperature, chunk_size,
              final_logit_softcapping=None, logit_scale=1.0, outputs=("log_probs", *OPTIONAL_OUTPUTS)):
        if hidden.is_cuda or hidden.shape[0] * weight.shape[0] > self.max_logits:
            return self.chunked.apply(hidden, weight, bias, targets, temperature, chunk_size,
                                      final_logit_softcapping, logit_scale, outputs)
        logits = _scaled_logits(F.linear(hidden, weight, bias), temperature, final_logit_softcapping, logit_scale)
        log_z = torch.logsumexp(logits, dim=-1)
        log_probs = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - log_z
        entropy = None
        if "entropy" in outputs:  # differentiable: GRPO can put it in the loss
            entropy = log_z - (torch.exp(logits - log_z.unsqueeze(-1)) * logits).sum(-1)
        with torch.no_grad():
            log_sum_sq_probs = torch.logsumexp(2 * logits, -1) - 2 * log_z if "log_sum_sq_probs" in outputs else None
            mean_logits = logits.mean(-1) if "mean_logits" in outputs else None
            is_top1 = logits.argmax(-1) == targets if "is_top1" in outputs else None  # first maximum, like TRL's
        return log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1


def _scaled_logits(logits, temperature: float, softcap: float | None, logit_scale: float):
    """TRL's transform of the raw projection, in fp32: scale, optional tanh soft-capping, temperature."""
    scaled = logits.float() * logit_scale
    if softcap is not None:
        scaled = softcap * torch.tanh(scaled / softcap)
    return scaled / temperature


@contextlib.contextmanager
def whole_logits_lm_head(device: torch.device | str):
    """While inside, TRL's fused LM head computes from the whole logits when `device` has no Triton path."""
    module = _trl_utils_with_chunked_function()
    if module is None or _triton_runs_on(device) or _zero3():
        yield
        return
    chunked = module._ChunkedLogProbFunction
    module._ChunkedLogProbFunction = WholeLogitsLogProbs(chunked)
    try:
        yield
    finally:
        module._ChunkedLogProbFunction = chunked


def _trl_utils_with_chunked_function():
    import trl.trainer.utils as trl_utils

    return trl_utils if hasattr(trl_utils, "_ChunkedLogProbFunction") else None


def _triton_runs_on(device) -> bool:
    from trl.kernels import chunked_logprob

    use_triton = getattr(chunked_logprob, "_use_triton", None)
    return use_triton is None or use_triton(torch.device(device))


def _zero3() -> bool:
    return zero_stage() == 3
