"""The whole-logits LM head (cpt/stages/lm_head.py) against TRL's chunked one: the same outputs and
gradients for every option TRL passes, the chunked one kept past the memory cap, and an SFT stage that
trains the same with either. Run: pytest tests/cpt/stages/test_lm_head.py"""

from __future__ import annotations

import pytest
import torch
from trl.kernels.chunked_logprob import ChunkedLogProbFunction

from cpt.stages.lm_head import OPTIONAL_OUTPUTS, WholeLogitsLogProbs, whole_logits_lm_head

ALL_OUTPUTS = ("log_probs", *OPTIONAL_OUTPUTS)


def _inputs(seed: int, tokens: int = 24, hidden: int = 16, vocab: int = 50, bias: bool = False):
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(tokens, hidden, generator=generator, requires_grad=True)
    w = torch.randn(vocab, hidden, generator=generator, requires_grad=True)
    b = torch.randn(vocab, generator=generator, requires_grad=True) if bias else None
    targets = torch.randint(0, vocab, (tokens,), generator=generator)
    return h, w, b, targets


def _outputs_and_grads(function, h, w, b, targets, options):
    outputs = function.apply(h, w, b, targets, options["temperature"], 16, options["softcap"],
                             options["logit_scale"], ALL_OUTPUTS)
    log_probs, entropy = outputs[0], outputs[1]
    (-(log_probs.sum()) + 0.3 * entropy.sum()).backward()  # the entropy's gradient is checked too
    grads = [t.grad.clone() for t in (h, w, b) if t is not None]
    for t in (h, w, b):
        if t is not None:
            t.grad = None
    return [o.float() for o in outputs], grads


@pytest.mark.parametrize("options", [
    {"temperature": 1.0, "softcap": None, "logit_scale": 1.0, "bias": False},
    {"temperature": 0.7, "softcap": None, "logit_scale": 1.0, "bias": True},    # GRPO's sampling temperature
    {"temperature": 1.0, "softcap": 5.0, "logit_scale": 0.5, "bias": False},   # Gemma-style soft-capping, scaling
])
def test_same_outputs_and_gradients_as_trl(options):
    h, w, b, targets = _inputs(0, bias=options["bias"])
    ours, our_grads = _outputs_and_grads(WholeLogitsLogProbs(ChunkedLogProbFunction), h, w, b, targets, options)
    theirs, their_grads = _outputs_and_grads(ChunkedLogProbFunction, h, w, b, targets, options)
    for name, a, e in zip(ALL_OUTPUTS, ours, theirs):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-4, msg=name)  # fp32 rounding
    for a, e in zip(our_grads, their_grads):
        torch.testing.assert_close(a, e, rtol=1e-4, atol=1e-5)


def test_outputs_not_asked_for_are_none():
    h, w, b, targets = _inputs(1)
    outputs = WholeLogitsLogProbs(ChunkedLogProbFunction).apply(h, w, b, targets, 1.0, 16, None, 1.0, ("log_probs",))
    assert outputs[0].shape == (24,) and all(o is None for o in outputs[1:])


class _Recording:
    """Stands in for TRL's chunked function to see which calls reach it."""

    def __init__(self):
        self.calls = 0

    def apply(self, *args):
        self.calls += 1
        return ChunkedLogProbFunction.apply(*args)


def test_calls_past_the_memory_cap_go_to_trl():
    h, w, b, targets = _inputs(2, tokens=24, vocab=50)  # 1200 logits
    chunked = _Recording()
    WholeLogitsLogProbs(chunked, max_logits=1200).apply(h, w, b, targets, 1.0, 16, None, 1.0, ALL_OUTPUTS)
    assert chunked.calls == 0
    WholeLogitsLogProbs(chunked, max_logits=1199).apply(h, w, b, targets, 1.0, 16, None, 1.0, ALL_OUTPUTS)
    assert chunked.calls == 1


def test_swapped_in_on_cpu_and_restored_after():
    import trl.trainer.utils as trl_utils

    original = trl_utils._ChunkedLogProbFunction
    with whole_logits_lm_head("cpu"):
        assert isinstance(trl_utils._ChunkedLogProbFunction, WholeLogitsLogProbs)
        assert trl_utils._ChunkedLogProbFunction.chunked is original
    assert trl_utils._ChunkedLogProbFunction is original
    with pytest.raises(RuntimeError), whole_logits_lm_head("cpu"):
        raise RuntimeError("a stage that fails")
    assert trl_utils._ChunkedLogProbFunction is original


@pytest.mark.slow
def test_sft_trains_the_same_with_either_lm_head(tmp_path, toy_dir):
    """Real SFTTrainer runs on the toy model, fp32 so that rounding cannot hide a difference: the logged
    losses and the final weights agree, and the whole-logits function really served the training."""
    import trl.trainer.utils as trl_utils

    served = []
    whole = WholeLogitsLogProbs.apply

    def counting(self, *args):
        served.append(args[0].shape[0])
        return whole(self, *args)

    losses_trl, weights_trl = _train_sft(tmp_path / "trl", toy_dir)
    WholeLogitsLogProbs.apply = counting
    try:
        with whole_logits_lm_head("cpu"):
            losses_ours, weights_ours = _train_sft(tmp_path / "ours", toy_dir)
    finally:
        WholeLogitsLogProbs.apply = whole
    assert len(served) >= 6 and not isinstance(trl_utils._ChunkedLogProbFunction, WholeLogitsLogProbs)
    assert losses_ours == pytest.approx(losses_trl, rel=1e-4)
    assert losses_ours[-1] < losses_ours[0]  # it trained
    torch.testing.assert_close(weights_ours, weights_trl, rtol=1e-3, atol=1e-5)


def _train_sft(out, toy_dir) -> tuple[list[float], torch.Tensor]:
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    data = load_dataset("json", data_files=str(toy_dir / "tasks" / "addition" / "train.jsonl"), split="train")
    args = SFTConfig(output_dir=str(out), max_steps=6, per_device_train_batch_size=8, learning_rate=1e-3,
                     logging_steps=1, bf16=False, activation_checkpointing=False, use_cpu=True, report_to="none",
                     save_strategy="no", disable_tqdm=True, seed=0)
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    trainer = SFTTrainer(model=model, args=args, train_dataset=data.select_columns(["prompt", "completion"]),
                         processing_class=AutoTokenizer.from_pretrained(toy_dir / "model"))
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return losses, model.model.layers[-1].mlp.down_proj.weight.detach().clone()
