"""The mixing callback without a trainer: weights follow held-out losses every `update_every` steps,
the trajectory file is the report's format, and the state saved at a checkpoint restores exactly.
Plus the held-out evaluator against the model's own loss on a tiny random Llama."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from data_mixing.callback import MIXTURE_STATE, MixingCallback, read_mixture_state
from data_mixing.held_out import HeldOutEvaluator
from data_mixing.learners import make_learner
from data_mixing.stream import MixtureStream
from tests.data_mixing.fakes import two_domains

PER_STEP = 4


class FakeHeldOut:
    """Held-out losses as a test dictates: "b" gets worse at every call, "a" better."""

    def __init__(self):
        self.calls = 0

    def __bool__(self):
        return True

    def __call__(self, model):
        self.models = [*getattr(self, "models", []), model]
        self.calls += 1
        return {"a": 2.0 - 0.1 * self.calls, "b": 2.0 + 0.1 * self.calls}


def _callback(tmp_path, learner="doremi"):
    domains = two_domains(16)
    names = [d.name for d in domains]
    stream = MixtureStream(domains, {"a": 0.5, "b": 0.5}, max_length=16, seed=0)
    return MixingCallback(stream, make_learner(learner, names, {"a": 1, "b": 1}, step_size=2.0 if learner == "doremi" else None), FakeHeldOut(),
                          update_every=5, sequences_per_step=PER_STEP, trajectory_path=tmp_path / "mixture_weights.json")


def _train(callback, tmp_path, steps, start=0):
    """Drive the callback like a Trainer: read ahead one batch, update, save every 10 steps."""
    args = SimpleNamespace(output_dir=str(tmp_path))
    control = SimpleNamespace(should_log=False)
    it = iter(callback.stream)
    if start == 0:
        callback.on_train_begin(args, SimpleNamespace(global_step=0), control, model=None)
    for step in range(start + 1, start + steps + 1):
        while callback.stream.position < (step + 1) * PER_STEP:  # the batch consumed + one read ahead
            next(it)
        state = SimpleNamespace(global_step=step)
        callback.on_step_end(args, state, control, model=None)
        if step % 10 == 0:
            (tmp_path / f"checkpoint-{step}").mkdir(exist_ok=True)
            callback.on_save(args, state, control)
    return callback


def test_weights_follow_held_out_losses_and_the_trajectory_is_written(tmp_path):
    callback = _train(_callback(tmp_path), tmp_path, 20)
    trajectory = json.loads((tmp_path / "mixture_weights.json").read_text())
    assert [e["step"] for e in trajectory] == [0, 5, 10, 15, 20]
    assert trajectory[0]["weights"] == {"a": 0.5, "b": 0.5}
    b = [e["weights"]["b"] for e in trajectory]
    assert b == sorted(b) and b[-1] > 0.85  # "b" worsens past its step-0 reference: doremi raises it
    assert trajectory[-1]["held_out_loss"]["b"] == pytest.approx(2.5)
    assert callback.stream.weights == pytest.approx(trajectory[-1]["weights"])


def test_checkpoint_state_restores_stream_learner_and_trajectory(tmp_path):
    _train(_callback(tmp_path / "straight", "odm"), tmp_path / "straight", 20)
    resumed_dir = tmp_path / "resumed"
    first = _train(_callback(resumed_dir, "odm"), resumed_dir, 10)
    state = read_mixture_state(resumed_dir / "checkpoint-10")
    assert state["consumed_sequences"] == 10 * PER_STEP and state["global_step"] == 10
    assert sum(state["consumed_per_domain"].values()) == 40
    second = _callback(resumed_dir, "odm")
    second.evaluate.calls = first.evaluate.calls  # the held-out losses continue, as the model would
    second.load_state_dict(state)
    _train(second, resumed_dir, 10, start=10)
    assert read_mixture_state(resumed_dir / "checkpoint-20") == read_mixture_state(tmp_path / "straight" / "checkpoint-20")


def test_doremi_reference_losses_come_from_the_start_or_the_given_reference(tmp_path):
    default = _callback(tmp_path / "a")
    default.on_train_begin(None, SimpleNamespace(global_step=0), None, model="the training model")
    assert default.evaluate.models == ["the training model"] and default.learner.reference.tolist() == [1.9, 2.1]
    given = _callback(tmp_path / "b")
    given.reference_model = lambda: "a reference model"
    given.on_train_begin(None, SimpleNamespace(global_step=0), None, model="the training model")
    assert given.evaluate.models == ["a reference model"]


def test_state_from_another_batch_layout_is_refused(tmp_path):
    _train(_callback(tmp_path), tmp_path, 10)
    other = _callback(tmp_path)
    other.sequences_per_step = 8
    with pytest.raises(ValueError, match="batch size, gradient accumulation or the number of processes changed"):
        other.load_state_dict(json.loads((tmp_path / "checkpoint-10" / MIXTURE_STATE).read_text()))


def test_held_out_evaluator_matches_the_models_own_loss():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32)
    model = LlamaForCausalLM(config).eval()
    domains = two_domains(16, held_out=3)
    for d in domains:
        d.held_out = d.held_out % 64  # fit the tiny vocabulary
    losses = HeldOutEvaluator(domains, batch_size=2)(model)
    for d in domains:
        with torch.no_grad():
            expected = model(input_ids=d.held_out, labels=d.held_out).loss.item()
        assert losses[d.name] == pytest.approx(expected, rel=1e-5)
    assert model.training is False and list(losses) == ["a", "b"]
