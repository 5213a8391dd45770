"""benchmarks/guard_cost.py on the toy: every side trains the same rows through the runner (a guard changes the
step, not the data, so the ratio compares like with like), and the table has one row per guard against none."""

from __future__ import annotations

import pytest
from common import named_model_folder
from guard_cost import WORKLOADS, measure_model, table

from cpt.core.precision import cpu_kind


@pytest.mark.slow
def test_every_guard_trains_the_same_tokens_and_gets_a_row(toy_dir):
    workload = {**WORKLOADS["toy"], "max_steps": 3}
    measured = measure_model(named_model_folder("toy"), workload, ["none", "freeze", "kl_anchor"], repeats=1)
    tokens = {side: median["tokens"] for side, median in measured["median"].items()}
    assert tokens["none"] > 0 and set(tokens.values()) == {tokens["none"]}
    assert all(median["wall_seconds"] > median["train_seconds"] > 0 for median in measured["median"].values())
    rows = table({"toy": measured})
    assert [r["measure"] for r in rows] == ["toy/sft with guard freeze: training tokens/s vs no guard",
                                          "toy/sft with guard kl_anchor: training tokens/s vs no guard"]
    for r in rows:
        assert r["ratio"] == pytest.approx(r["ours"] / r["reference"]) and r["note"].startswith(cpu_kind())
