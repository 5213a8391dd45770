"""benchmarks/forgetting.py's table: seeds aggregate into mean ± std, and a run without naive fine-tuning
(a selection run over a few variants) still writes its table, with the time column 'n/a'; the RL methods'
second phases are measured from their warm-ups and compared at GRPO's gain.
Run: pytest tests/benchmarks/test_forgetting_report.py"""

from __future__ import annotations

import argparse
import json

import pytest
from forgetting import SETTINGS, markdown
from forgetting_summary import aggregate, general_change, phase, rl_against_sft, summarise_from_warmups

from cpt.core.layout import RunLayout


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


def _row(checkpoint, scores):
    return {"checkpoint": checkpoint, "scores": scores}


def test_rl_second_phase_is_measured_from_its_warm_up_and_sft_is_scaled_to_its_gain():
    tasks = ["a", "b"]
    warmups = [_row("w0_a", {"a": 0.5, "b": 0.0, "g": 0.3}), _row("w1_b", {"a": 0.8, "b": 0.4, "g": 0.3})]
    grpo = [_row("t0_a", {"a": 0.7, "b": 0.0, "g": 0.3}), _row("t1_b", {"a": 0.7, "b": 0.6, "g": 0.2})]
    sft = [_row("t0_a", {"a": 0.9, "b": 0.0, "g": 0.2}), _row("t1_b", {"a": 0.4, "b": 0.8, "g": 0.1})]
    rl_phase, sft_phase = phase(warmups, grpo, tasks, ["g"]), phase(warmups, sft, tasks, ["g"])
    assert rl_phase["gain"] == pytest.approx(20.0) and rl_phase["loss"] == pytest.approx(10.0)
    assert rl_phase["general_loss"] == pytest.approx(5.0)
    assert sft_phase["gain"] == pytest.approx(40.0) and sft_phase["loss"] == pytest.approx(40.0)
    results = {m: {f"phase_two_{k}": v for k, v in second.items()} for m, second in (("rl", rl_phase), ("rl_sft", sft_phase))}
    warmup_phase = phase([_row("base", {"a": 0.0, "b": 0.0, "g": 0.3}), grpo[0]], warmups, tasks, ["g"])
    results["rl"].update({f"phase_one_{k}": v for k, v in warmup_phase.items()})
    text = "\n".join(rl_against_sft(results))
    # SFT gained twice GRPO's 20 points: at 20 its line from the warm-up loses half its 40 points, against GRPO's 10.
    assert "loses 20.0 points of the earlier tasks and 7.5 of general knowledge (GRPO: 10.0 and 5.0)" in text
    # RL's warm-ups start from the base and from GRPO's first stage: they gain 50 (a) and 40 (b), and a rises
    # 70 -> 80 during b's warm-up (a loss of -10, -0.22 per point gained).
    assert "| SFT warm-ups (rl) | 45.0 | -10.0 | 0.0 | -0.22 |" in text
    assert "| GRPO after them (rl) | 20.0 | 10.0 | 5.0 | 0.50 |" in text and "| SFT after the warm-ups (rl_sft) | 40.0 | 40.0" in text
    alone = "\n".join(rl_against_sft({"rl": results["rl"]}))  # without rl_sft: RL's own two phases, no scaled line
    assert "GRPO after them" in alone and "rl_sft" not in alone and "At GRPO's gain" not in alone
    assert rl_against_sft({"naive": results["rl"]}) == []


def _run(folder, rows, seconds):
    """A finished run as the summaries read it: its accuracy matrix and its manifest's train_runtime."""
    layout = RunLayout(folder)
    layout.matrix.parent.mkdir(parents=True)
    layout.matrix.write_text(json.dumps({"rows": rows}))
    layout.manifest.write_text(json.dumps({"stages": {r["checkpoint"]: {"metrics": {"train_runtime": seconds}}
                                                      for r in rows}}))
    return folder


def test_rl_sft_rows_are_sft_from_each_of_rl_own_warm_ups(tmp_path):
    tasks, base = ["a", "b"], {"a": 0.0, "b": 0.0, "g": 0.3}
    rl = _run(tmp_path / "rl", [_row("base", base), _row("w0_a", {"a": 0.5, "b": 0.0, "g": 0.3}),
                                _row("t0_a", {"a": 0.7, "b": 0.0, "g": 0.3}),
                                _row("w1_b", {"a": 0.8, "b": 0.4, "g": 0.3}), _row("t1_b", {"a": 0.7, "b": 0.6, "g": 0.2})], 10.0)
    sft = [_run(tmp_path / "sft0", [_row("t0_a", {"a": 0.9, "b": 0.0, "g": 0.2})], 3.0),
           _run(tmp_path / "sft1", [_row("t1_b", {"a": 0.4, "b": 0.8, "g": 0.1})], 4.0)]
    summary = summarise_from_warmups(rl, sft, tasks, ["g"], base)
    # from w0_a: a 50 -> 90; from w1_b: b 40 -> 80 while a falls 80 -> 40 and g 30 -> 10
    assert summary["phase_two_gain"] == pytest.approx(40.0) and summary["phase_two_loss"] == pytest.approx(40.0)
    assert summary["phase_two_general_loss"] == pytest.approx(15.0)
    assert summary["matrix"] == [[90.0, 0.0], [40.0, 80.0]] and summary["final_average"] == pytest.approx(60.0)
    assert summary["general_change"] == pytest.approx(-20.0) and summary["train_seconds"] == pytest.approx(7.0)
    assert "bwt" not in summary  # the rows are not a sequence


def test_two_general_tasks_report_their_mean_and_each_change():
    base = {"caps": 0.40, "regions": 0.80}
    summary = general_change(base, {"caps": 0.34, "regions": 0.78}, ["caps", "regions"])
    assert summary["general_change"] == pytest.approx(-4.0)
    assert summary["general_change_caps"] == pytest.approx(-6.0)
    assert summary["general_change_regions"] == pytest.approx(-2.0)
    seeds = [{**_seed(50.0, 100.0), **summary}, {**_seed(50.0, 100.0), **general_change(base, base, ["caps", "regions"])}]
    row = next(line for line in _table({"freeze": seeds}).splitlines() if line.startswith("| freeze |"))
    assert "| -2.0 ± 2.0 (caps -3.0, regions -1.0) |" in row


def test_one_general_task_has_no_per_task_keys():
    summary = general_change({"capitals": 0.5}, {"capitals": 0.25}, ["capitals"])
    assert summary == {"general_base": 50.0, "general_final": 25.0, "general_change": -25.0}
