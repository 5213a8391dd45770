"""`python -m benchmarks` (benchmarks/__main__.py and report.py): every selected script runs as its own
process with the mode, its table reaches the summary JSON and docs/benchmarks.md, a failing one is
reported (exit 1) without stopping the others, and one not run keeps its earlier result (from the committed
copy where the full one is not there, as in a fresh clone).
Run: pytest tests/benchmarks/test_entry_point.py"""

from __future__ import annotations

import json
import textwrap

from common import row

from benchmarks.__main__ import main
from benchmarks.report import format_value

WRITES_A_TABLE = """
    import argparse, json, pathlib, sys
    sys.path.insert(0, {common!r})
    from common import row
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode"); parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    print("training the fast one")
    table = [row("tokens/s of x", 200.0, 100.0, "plain", "tokens/s"), row("seconds of y", 5.0, 10.0, "plain", "s",
             lower_is_better=True)]
    result = {{"benchmark": "fast", "machine": "test box", "mode": args.mode, "table": table, "notes": ["vLLM: none"]}}
    (args.out / "fast.json").write_text(json.dumps(result))
"""
FAILS = """
    import sys
    print("out of memory, say", file=sys.stderr)
    sys.exit(3)
"""


def _script(folder, name, body, **fields):
    (folder / f"{name}.py").write_text(textwrap.dedent(body.format(**fields)))


def test_rows_ratio_is_ours_relative_to_the_reference():
    assert row("rate", 200.0, 100.0)["ratio"] == 2.0
    assert row("time", 5.0, 10.0, lower_is_better=True)["ratio"] == 2.0
    assert row("plain measurement", 5.0)["ratio"] is None
    assert [format_value(v, "s") for v in (1234.4, 12.345, 0.01234, None)] == ["1234 s", "12.3 s", "0.0123 s", "n/a"]


def test_runs_each_benchmark_and_writes_the_summary(tmp_path, monkeypatch):
    from tests.benchmarks.conftest import BENCHMARKS

    # the notes print paths relative to the working folder when inside it: work from a folder beside tmp_path's
    # files, so they print in full whichever folder pytest was started from
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")

    scripts, out, doc = tmp_path / "scripts", tmp_path / "results", tmp_path / "docs" / "benchmarks.md"
    scripts.mkdir()
    out.mkdir()
    _script(scripts, "fast", WRITES_A_TABLE, common=str(BENCHMARKS))
    _script(scripts, "broken", FAILS)
    earlier = {"machine": "old box", "mode": "full", "table": [row("earlier figure", 3.0, 1.0, "ref", "x")]}
    (out / "old.json").write_text(json.dumps(earlier))
    registry = {"fast": ("the fast one", "fast.json"), "broken": ("the broken one", "broken.json"),
                "old": ("an earlier run", "old.json")}

    status = main(["--mode", "full", "--out", str(out), "--doc", str(doc), "--skip", "old"], registry, scripts)

    assert status == 1  # one benchmark failed
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]
    assert [summary[n]["status"] for n in ("fast", "broken", "old")] == ["ok", "failed", "earlier result"]
    assert summary["fast"]["mode"] == "full" and summary["fast"]["table"][1]["ratio"] == 2.0
    assert "out of memory, say" in (out / "logs" / "broken.log").read_text()
    assert "training the fast one" in (out / "logs" / "fast.log").read_text()
    markdown = doc.read_text()
    assert "| fast | tokens/s of x | 200 tokens/s | 100 tokens/s (plain) | 2.00x | test box |" in markdown
    assert "| fast | seconds of y | 5 s | 10 s (plain) | 2.00x | test box |" in markdown
    assert "| broken | failed: see below |" in markdown and "logs/broken.log" in markdown
    assert "| old | earlier figure | 3 x | 1 x (ref) | 3.00x | old box |" in markdown
    assert "  - vLLM: none" in markdown
    # the doc cites a small copy beside it (committed), not the ignored full result
    copy = json.loads((doc.parent / "results" / "fast.json").read_text())
    assert copy["table"] == summary["fast"]["table"] and copy["full_result"] == "fast.json"
    assert str(doc.parent / "results" / "fast.json") in markdown and str(out / "fast.json") not in markdown
    assert not (doc.parent / "results" / "broken.json").exists()


def test_report_only_runs_nothing(tmp_path):
    out, doc = tmp_path / "results", tmp_path / "benchmarks.md"
    status = main(["--report-only", "--out", str(out), "--doc", str(doc)], {"x": ("never run", "x.json")},
                  tmp_path / "no-scripts-here")
    assert status == 0 and "| x | not run: see below |" in doc.read_text()
    assert not (out / "logs").exists()


def test_a_fresh_clone_keeps_the_committed_rows(tmp_path):
    """benchmarks/results/ is ignored by git: on a fresh clone only docs/results/NAME.json is there, and running one
    benchmark (or --report-only) must not drop the others' published rows from docs/benchmarks.md."""
    out, doc = tmp_path / "results", tmp_path / "docs" / "benchmarks.md"
    committed = {"description": "an earlier run", "machine": "old box", "mode": "full", "benchmark": "old",
                 "generated": "2026-01-01 00:00 UTC", "full_result": "old.json", "notes": ["kept"],
                 "table": [row("earlier figure", 3.0, 1.0, "ref", "x")]}
    (doc.parent / "results").mkdir(parents=True)
    copy = doc.parent / "results" / "old.json"
    copy.write_text(json.dumps(committed, indent=1) + "\n")
    written = copy.read_text()

    status = main(["--report-only", "--out", str(out), "--doc", str(doc)], {"old": ("an earlier run", "old.json")},
                  tmp_path / "no-scripts-here")

    assert status == 0
    summary = json.loads((out / "summary.json").read_text())["benchmarks"]["old"]
    assert summary["status"] == "earlier result" and summary["table"] == committed["table"]
    assert "| old | earlier figure | 3 x | 1 x (ref) | 3.00x | old box |" in doc.read_text()
    assert copy.read_text() == written  # the committed copy is left exactly as it was


def test_accuracies_compare_by_difference():
    from benchmarks.report import _table_line

    gained = row("average accuracy", 25.0, 1.0, "naive", "%", difference=True)
    assert gained["ratio"] is None and gained["difference"] == 24.0
    forgot_less = row("forgetting", 13.0, 43.5, "naive", "points", lower_is_better=True, difference=True)
    assert forgot_less["difference"] == 30.5
    assert _table_line("forgetting", forgot_less, "box") == "| forgetting | forgetting | 13 points | 43.5 points (naive) | +30.5 points | box |"
