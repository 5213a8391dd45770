"""The MFU arithmetic of benchmarks/hardware.py: FLOPs per token as counted in a real forward + backward,
and a matmul peak that is a real measurement. Run: pytest tests/benchmarks/test_hardware.py"""

from __future__ import annotations

import torch
from hardware import forward_flops_per_token, matmul_peak, mfu, training_flops_per_token
from transformers import LlamaConfig, LlamaForCausalLM


def _counted_training_flops_per_token(config: LlamaConfig, batch: int, seq_len: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = LlamaForCausalLM(config)
    ids = torch.randint(0, config.vocab_size, (batch, seq_len))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    return counter.get_total_flops() / (batch * seq_len)


def test_flops_per_token_match_torch_flop_counter():
    # eager attention: its two matmuls are what the formula's attention term counts (SDPA on CPU goes uncounted);
    # grouped-query attention and an untied LM head, so each part of the formula is exercised
    config = LlamaConfig(vocab_size=500, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                         attn_implementation="eager")
    for seq_len in (16, 48):
        assert training_flops_per_token(config, seq_len) == _counted_training_flops_per_token(config, 2, seq_len)
    assert forward_flops_per_token(config, 16) * 3 == training_flops_per_token(config, 16)


def test_matmul_peak_is_measured_and_mfu_is_a_fraction_of_it():
    peak = matmul_peak(size=256, repeats=2)
    # no floor on the speed: emulated bf16 on a loaded AVX2 machine measured 4.8e7 FLOP/s here
    assert peak["bf16_flops_per_s"] > 0 and peak["fp32_flops_per_s"] > 0
    assert peak["matmul_size"] == 256 and peak["device"]
    assert mfu(0.25 * peak["bf16_flops_per_s"], peak["bf16_flops_per_s"]) == 0.25


def test_matmul_peak_is_the_best_timed_call_after_the_warm_up(monkeypatch):
    """The peak is 2 size^3 over the fastest call, the warm-up call left out (it may be the fastest by chance)."""
    import hardware

    times = iter([0.5, 2.0, 1.0, 4.0, 0.25, 8.0, 2.0, 16.0])  # per dtype: warm-up, then 3 timed calls
    monkeypatch.setattr(hardware, "_timed_matmul", lambda a, b: next(times))
    peak = matmul_peak(size=8, repeats=3, budget_s=60.0)
    assert peak["bf16_flops_per_s"] == 2 * 8**3 / 1.0 and peak["fp32_flops_per_s"] == 2 * 8**3 / 2.0
