"""The mixture stream: packing, determinism, weights, and exact resume from a saved state."""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice

import numpy as np
import pytest

from data_mixing.stream import MixtureStream
from tests.data_mixing.fakes import EOS, domain_of, two_domains

L = 16


def _stream(seed=0, weights=None, domains=None):
    return MixtureStream(domains or two_domains(L), weights or {"a": 0.5, "b": 0.5}, max_length=L, seed=seed)


def _take(stream, n):
    return [s["input_ids"].tolist() for s in islice(iter(stream), n)]


def _domain(row):
    return domain_of(next(t for t in row if t != EOS))


def test_sequences_are_full_packed_rows_from_one_domain():
    sample = next(iter(_stream()))
    assert set(sample) == {"input_ids", "labels", "attention_mask"}
    assert sample["input_ids"].shape == (L,) and sample["labels"].tolist() == sample["input_ids"].tolist()
    for row in _take(_stream(), 200):
        assert len({domain_of(t) for t in row if t != EOS}) == 1


def test_a_domain_epoch_packs_every_training_token_once_in_order():
    domains = two_domains(L)
    stream = _stream(weights={"a": 1.0, "b": 0.0}, domains=domains)
    a = domains[0]
    total = sum(len(a.doc(i)) for i in range(len(a)))
    tokens = np.concatenate(_take(stream, -(-total // L)))[:total]
    order = np.random.default_rng([0, 0, 0]).permutation(len(a))  # epoch 0 of domain 0, seed 0
    assert tokens.tolist() == np.concatenate([a.doc(i) for i in order]).tolist()


def test_held_out_rows_are_never_trained_on():
    domains = two_domains(L, held_out=3)
    held = {int(t) for d in domains for t in d.held_out.flatten().tolist() if t != EOS}
    assert len(held) > 0 and all(d.held_out.shape == (3, L) for d in domains)
    trained = {t for row in _take(_stream(domains=domains), 600) for t in row}
    # token ids encode (domain, row, position): a held-out row's tokens never appear in training
    assert not held & trained


def test_same_seed_same_stream_other_seed_other_stream():
    assert _take(_stream(seed=3), 50) == _take(_stream(seed=3), 50)
    assert _take(_stream(seed=3), 50) != _take(_stream(seed=4), 50)


def test_domains_follow_the_weights_and_their_changes():
    stream = _stream(weights={"a": 0.8, "b": 0.2})
    first = Counter(_domain(row) for row in _take(stream, 1000))
    stream.set_weights({"a": 0.1, "b": 0.9})
    second = Counter(_domain(row) for row in _take(stream, 1000))
    assert abs(first["a"] / 1000 - 0.8) < 0.05 and abs(second["a"] / 1000 - 0.1) < 0.05
    assert stream.consumed_per_domain(1000) == {"a": first["a"], "b": first["b"]}


def test_restored_stream_yields_exactly_what_followed_the_saved_point():
    original = _stream(weights={"a": 0.7, "b": 0.3})
    it = iter(original)
    seen = [next(it)["input_ids"].tolist() for _ in range(40)]
    original.set_weights({"a": 0.2, "b": 0.8})  # a learner's update after 40 sequences read ...
    seen += [next(it)["input_ids"].tolist() for _ in range(25)]  # ... of which the trainer consumed 32
    state = json.loads(json.dumps(original.state_dict(consumed=32)))  # what goes into mixture_state.json
    original.set_weights({"a": 0.5, "b": 0.5})  # pending: takes effect from sequence 65
    state_with_pending = json.loads(json.dumps(original.state_dict(consumed=32)))
    seen += [next(it)["input_ids"].tolist() for _ in range(100)]

    restored = _stream()
    restored.load_state_dict(state_with_pending)
    assert _take(restored, 165 - 32) == seen[32:]
    # the state without the later change matches up to where that change took effect
    restored = _stream()
    restored.load_state_dict(state)
    assert _take(restored, 65 - 32) == seen[32:65]
    assert state_with_pending["changes"][0][0] == 40 and state_with_pending["changes"][1][0] == 65


def test_state_past_the_kept_history_or_for_another_stream_is_refused():
    stream = _stream()
    stream.keep_history(10)
    _take(stream, 30)
    with pytest.raises(RuntimeError, match="no state kept for sequence 5"):
        stream.state_dict(consumed=5)
    with pytest.raises(ValueError, match="does not fit this stream"):
        _stream(seed=9).load_state_dict(stream.state_dict())
