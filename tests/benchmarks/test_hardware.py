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
    assert peak["bf16_flops_per_s"] > 1e8 and peak["fp32_flops_per_s"] > 1e8
    assert peak["matmul_size"] == 256 and peak["device"]
    assert mfu(0.25 * peak["bf16_flops_per_s"], peak["bf16_flops_per_s"]) == 0.25
