"""Static mixing: domains appear at their weights, reproducibly from the seed."""

from __future__ import annotations

from collections import Counter

from datasets import Dataset

from data_mixing.static import static_mixture


def _domains():
    return {
        "general": Dataset.from_list([{"text": f"g{i}"} for i in range(4000)]),
        "code": Dataset.from_list([{"text": f"c{i}"} for i in range(4000)]),
    }


def test_shares_follow_weights():
    mixed = static_mixture(_domains(), {"general": 0.8, "code": 0.2}, seed=0)
    counts = Counter(text[0] for text in mixed["text"])
    share = counts["c"] / (counts["c"] + counts["g"])
    assert abs(share - 0.2) < 0.03, counts


def test_same_seed_same_stream_other_seed_other_stream():
    weights = {"general": 0.5, "code": 0.5}
    first = static_mixture(_domains(), weights, seed=1)["text"]
    assert static_mixture(_domains(), weights, seed=1)["text"] == first
    assert static_mixture(_domains(), weights, seed=2)["text"] != first


def test_zero_weight_domain_is_left_out():
    mixed = static_mixture(_domains(), {"general": 1.0, "code": 0.0}, seed=0)
    assert all(text.startswith("g") for text in mixed["text"]) and len(mixed) == 4000
