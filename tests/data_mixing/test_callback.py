"""The mixing callback without a trainer: weights follow held-out losses every `update_every` steps,
only the domains the learner asks for are scored, DoReMi's per-token reference losses are taken once
and saved, the trajectory file is the report's format, and the state saved at a checkpoint restores
exactly. (The held-out evaluator itself: test_held_out.py.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from data_mixing.callback import MIXTURE_STATE, MixingCallback, decode_table, encode_table, read_mixture_state
from data_mixing.learners import make_learner
from data_mixing.stream import MixtureStream
from tests.data_mixing.fakes import two_domains

PER_STEP = 4


class FakeHeldOut:
    """Held-out losses as a test dictates: "b" gets worse at every call, "a" better. Token losses are
    one sequence per domain of equal tokens, so clipping per token equals clipping the mean here."""

    names = ("a", "b")

    def __init__(self):
        self.calls, self.models, self.asked = 0, [], []

    def __bool__(self):
        return True

    def _levels(self, model) -> dict[str, float]:
        self.models.append(model)
        self.calls += 1
        return {"a": 2.0 - 0.1 * self.calls, "b": 2.0 + 0.1 * self.calls}

    def token_losses(self, model):
        levels = self._levels(model)
        return torch.tensor([[levels["a"]] * 3, [levels["b"]] * 3], dtype=torch.float64)

    def score(self, model, domains=None, reference=None):
        levels = self._levels(model)
        self.asked.append(domains)
        losses = {n: levels[n] for n in domains}
        if reference is None:
            return losses, None
        return losses, {n: max(v - float(reference[self.names.index(n)].mean()), 0.0) for n, v in losses.items()}


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
    assert trajectory[-1]["held_out_excess"] == pytest.approx({"a": 0.0, "b": 0.4}, abs=1e-6)  # 2.5 - 2.1
    assert list(trajectory[-1]["average_weights"].values()) == pytest.approx(callback.learner.average.tolist())
    assert callback.stream.weights == pytest.approx(trajectory[-1]["weights"])


def test_odm_scores_only_the_domain_it_drew(tmp_path):
    callback = _train(_callback(tmp_path, "odm"), tmp_path, 20)
    assert all(len(asked) == 1 for asked in callback.evaluate.asked) and len(callback.evaluate.asked) == 4
    updates = json.loads((tmp_path / "mixture_weights.json").read_text())[1:]
    assert [list(e["held_out_loss"]) for e in updates] == callback.evaluate.asked
    assert callback.learner.updates == 4 and callback.learner.weights.tolist() != [0.5, 0.5]


@pytest.mark.parametrize("learner", ["odm", "doremi"])
def test_checkpoint_state_restores_stream_learner_and_trajectory(tmp_path, learner):
    _train(_callback(tmp_path / "straight", learner), tmp_path / "straight", 20)
    resumed_dir = tmp_path / "resumed"
    first = _train(_callback(resumed_dir, learner), resumed_dir, 10)
    state = read_mixture_state(resumed_dir / "checkpoint-10")
    assert state["consumed_sequences"] == 10 * PER_STEP and state["global_step"] == 10
    assert sum(state["consumed_per_domain"].values()) == 40
    assert (state["reference_token_losses"] is not None) == (learner == "doremi")
    second = _callback(resumed_dir, learner)
    second.evaluate.calls = first.evaluate.calls  # the held-out losses continue, as the model would
    second.load_state_dict(state)
    _train(second, resumed_dir, 10, start=10)
    assert second.evaluate.calls == first.evaluate.calls + 2  # two updates; the reference was not retaken
    assert read_mixture_state(resumed_dir / "checkpoint-20") == read_mixture_state(tmp_path / "straight" / "checkpoint-20")


def test_reference_table_round_trips_exactly():
    table = torch.tensor([[1.9, 2.25, 0.1], [3.0, 1e-7, 7.5]], dtype=torch.float64).float().double()
    assert torch.equal(decode_table(json.loads(json.dumps(encode_table(table)))), table)
    assert encode_table(None) is None and decode_table(None) is None


def test_doremi_reference_losses_come_from_the_start_or_the_given_reference(tmp_path):
    default = _callback(tmp_path / "a")
    default.on_train_begin(None, SimpleNamespace(global_step=0), None, model="the training model")
    assert default.evaluate.models == ["the training model"]
    assert default.reference_tokens.flatten().tolist() == pytest.approx([1.9] * 3 + [2.1] * 3)  # float32 values
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
