"""The summary of every benchmark: one JSON and the markdown table of docs/benchmarks.md.

    from benchmarks.report import summarise, render_markdown
    summary = summarise(outcomes, mode)      # outcomes: {name: Outcome(...)}; reads each result JSON's "table"
    Path("docs/benchmarks.md").write_text(render_markdown(summary))

Each benchmark script writes a JSON whose "table" rows (benchmarks/common.py `row`) say what was measured,
ours, the reference and the ratio (ours relative to the reference, above 1 better for us); "notes" say
what could not be measured here and why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


@dataclass
class Outcome:
    """How one benchmark's run went: its result JSON (None if it wrote none), exit status and log."""

    description: str
    result_path: Path | None
    returncode: int | None  # None: not run this time (its earlier JSON is reported, if any: "earlier result")
    log_path: Path | None = None
    seconds: float | None = None


def summarise(outcomes: dict[str, Outcome], mode: str) -> dict:
    """One dict for every benchmark: status, its table and notes, where its JSON and log are."""
    benchmarks = {}
    for name, outcome in outcomes.items():
        result = _read(outcome.result_path)
        status = _status(outcome.returncode, result)
        benchmarks[name] = {
            "description": outcome.description, "status": status, "returncode": outcome.returncode,
            "seconds": outcome.seconds, "machine": (result or {}).get("machine"), "mode": (result or {}).get("mode"),
            "table": (result or {}).get("table", []), "notes": (result or {}).get("notes", []),
            "result": str(outcome.result_path) if result is not None else None,
            "log": str(outcome.log_path) if outcome.log_path else None,
        }
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return {"mode": mode, "generated": generated, "benchmarks": benchmarks}


def compact_copy(folder: Path, name: str) -> Path:
    """Where benchmark `name`'s compact copy lies in `folder` (docs/results/)."""
    return folder / f"{name}.json"


def keep_compact_copies(summary: dict, folder: Path) -> None:
    """Write each benchmark's compact result (its table and notes, not its curves) to FOLDER/NAME.json and
    point the summary at it. The full results in benchmarks/results/ are ignored by git; these small
    copies are what docs/benchmarks.md cites, to be committed with it, so every quoted number has its file."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, bench in summary["benchmarks"].items():
        copy = compact_copy(folder, name)
        if bench["result"] is None or Path(bench["result"]).resolve() == copy.resolve():
            continue  # nothing to copy, or the earlier result is this copy already (kept as it was written)
        compact = {key: bench[key] for key in ("description", "machine", "mode", "table", "notes")}
        compact |= {"benchmark": name, "generated": summary["generated"], "full_result": Path(bench["result"]).name}
        copy.write_text(json.dumps(compact, indent=1) + "\n")
        bench["result"] = str(copy)


def _status(returncode: int | None, result: dict | None) -> str:
    if returncode is None:  # not run this time
        return "not run" if result is None else "earlier result"
    return "ok" if returncode == 0 and result is not None else "failed"  # exit 0 without a result: failed


def _read(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def render_markdown(summary: dict, command: str = "python -m benchmarks") -> str:
    """docs/benchmarks.md: one table of every measurement, then each benchmark's notes and status."""
    lines = [
        "# Benchmarks", "",
        f"Written by `{command}` ({summary['mode']} mode) on {summary['generated']}. Each row: what was measured,",
        "ours, the reference it is compared with, and the ratio, always ours relative to the reference so that",
        "**above 1 is better for us** (ours/reference for rates, reference/ours for times and memory); accuracies",
        "are compared by their difference instead, **above 0 better for us**.", "",
        "| benchmark | measured | ours | reference | ratio | machine |",
        "|---|---|---|---|---|---|",
    ]
    for name, bench in summary["benchmarks"].items():
        if not bench["table"]:
            lines.append(f"| {name} | {bench['status']}: see below | | | | |")
        for entry in bench["table"]:
            lines.append(_table_line(name, entry, bench["machine"]))
    lines += ["", "## Notes", ""]
    for name, bench in summary["benchmarks"].items():
        lines += _notes(name, bench)
    return "\n".join(lines) + "\n"


def _table_line(name: str, entry: dict, machine: str | None) -> str:
    ours = format_value(entry["ours"], entry["unit"])
    reference = format_value(entry["reference"], entry["unit"]) if entry["reference"] is not None else ""
    if reference and entry["reference_name"]:
        reference = f"{reference} ({entry['reference_name']})"
    ratio = f"{entry['ratio']:.2f}x" if entry["ratio"] is not None else ""
    if entry.get("difference") is not None:
        ratio = f"{entry['difference']:+.1f} {'points' if entry['unit'] in ('%', 'points') else entry['unit']}"
    measured = entry["measure"] + (f"; {entry['note']}" if entry.get("note") else "")
    return f"| {name} | {measured} | {ours} | {reference} | {ratio} | {machine or ''} |"


def format_value(value: float | None, unit: str = "") -> str:
    """A number as a table shows it: 3 significant digits below 100, whole above; n/a for None."""
    if value is None:
        return "n/a"
    text = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return f"{text} {unit}".strip()


def _relative(path: str) -> str:
    """A path as the repository's reader sees it: relative to the working folder when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _notes(name: str, bench: dict) -> list[str]:
    took = f", {bench['seconds']:.0f} s" if bench["seconds"] is not None else ""
    where = f"; result `{_relative(bench['result'])}`" if bench["result"] else ""
    log = f"; log `{_relative(bench['log'])}`" if bench["log"] and bench["status"] != "ok" else ""
    mode = f", {bench['mode']} mode" if bench["mode"] else ""
    lines = [f"- **{name}** ({bench['status']}{took}{mode}): {bench['description']}{where}{log}"]
    lines += [f"  - {note}" for note in bench["notes"]]
    return lines
