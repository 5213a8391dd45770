"""benchmarks/forgetting.py's table: seeds aggregate into mean ± std, and a run without naive fine-tuning
(a selection run over a few variants) still writes its table, with the time column 'n/a'.
Run: pytest tests/benchmarks/test_forgetting_report.py"""

from __future__ import annotations

import argparse

from forgetting import SETTINGS, aggregate, markdown


def _seed(final_average, seconds):
    return {"matrix": [[80.0, 0.0], [40.0, 90.0]], "final_average": final_average, "learned": 85.0, "bwt": -40.0,
            "forgetting": 40.0, "general_change": -2.0, "general_final": 22.0, "train_seconds": seconds}


def _table(methods: dict[str, list[dict]]) -> str:
    naive = methods.get("naive")
    naive_seconds = sum(s["train_seconds"] for s in naive) / len(naive) if naive else 0
    results = {m: {**aggregate(runs, naive_seconds), "per_seed": runs} for m, runs in methods.items()}
    args = argparse.Namespace(mode="full", seeds=[0, 1], steps=50, order="a", methods=list(methods), label="")
    return markdown("smollm2", SETTINGS["smollm2"], results, args)


def test_seeds_aggregate_and_time_is_relative_to_naive():
    text = _table({"naive": [_seed(20.0, 100.0), _seed(30.0, 100.0)], "replay": [_seed(50.0, 150.0), _seed(60.0, 150.0)]})
    replay_row = next(line for line in text.splitlines() if line.startswith("| replay |"))
    assert "| 55.0 ± 5.0 |" in replay_row and "| 1.50x |" in replay_row


def test_a_run_without_naive_writes_its_table():
    text = _table({"osf_grow": [_seed(0.0, 700.0)], "osf_updates": [_seed(0.5, 800.0)]})
    rows = [line for line in text.splitlines() if line.startswith("| osf_")]
    assert len(rows) == 2 and all("| n/a |" in row for row in rows)
