"""The held-out evaluator on a tiny random Llama: its mean loss is the model's own loss, DoReMi's
excess is clipped token by token against per-token reference losses (not the mean), and a subset
of domains is scored alone."""

from __future__ import annotations

import pytest
import torch

from data_mixing.held_out import HeldOutEvaluator
from tests.data_mixing.fakes import two_domains


@pytest.fixture(scope="module")
def model_and_domains():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    model = LlamaForCausalLM(config).eval()
    domains = two_domains(16, held_out=3)
    for d in domains:
        d.held_out = d.held_out % 64  # fit the tiny vocabulary
    return model, domains


def test_held_out_evaluator_matches_the_models_own_loss(model_and_domains):
    model, domains = model_and_domains
    losses = HeldOutEvaluator(domains, batch_size=2)(model)
    for d in domains:
        with torch.no_grad():
            expected = model(input_ids=d.held_out, labels=d.held_out).loss.item()
        assert losses[d.name] == pytest.approx(expected, rel=1e-5)
    assert model.training is False and list(losses) == ["a", "b"]


def test_excess_is_clipped_per_token_before_averaging(model_and_domains):
    model, domains = model_and_domains
    evaluate = HeldOutEvaluator(domains, batch_size=2)
    tokens = evaluate.token_losses(model)
    assert tokens.shape == (len(evaluate.sequences), 15)
    # The reference is 0.5 above the model on even targets and 0.5 below on odd ones: 7 of 15 targets
    # per sequence have excess 0.5, so the mean clipped excess is 0.5 x 7/15, while the mean excess
    # (-0.5 x 1/15) clipped would be 0.
    offset = torch.tensor([0.5 if j % 2 == 0 else -0.5 for j in range(15)], dtype=torch.float64)
    losses, excess = evaluate.score(model, reference=tokens + offset)
    assert excess == pytest.approx({"a": 0.5 * 7 / 15, "b": 0.5 * 7 / 15}, rel=1e-9)
    assert losses == pytest.approx(evaluate(model), rel=1e-12)
    assert evaluate.score(model)[1] is None


def test_a_subset_of_domains_is_scored_alone(model_and_domains):
    model, domains = model_and_domains
    evaluate = HeldOutEvaluator(domains, batch_size=2)
    everything = evaluate(model)
    # The same sequences, batched differently: equal up to float32 summation order (AVX2 kernels: 3e-9 relative)
    assert evaluate(model, domains=["b"]) == pytest.approx({"b": everything["b"]}, rel=1e-6)
