"""The report's table of merge-guard choices: per merged stage, the alpha kept and the held-out scores behind it.

    merge_table(data)   # None when no stage of the run has `merge:`

`data.merges` holds each stage's merge record as the runner stores it in the manifest
(cpt/guards/merge_search.py MergeChoice.to_record): alpha, budget, groups, reason, and the trials, each
{alpha, scores: {task: points}, means: {group: points}, within}.
"""

from __future__ import annotations

from eval.report.blocks import Table
from eval.report.data import ReportData

GROUPS = ("earlier", "general")


def merge_table(data: ReportData) -> Table | None:
    """One row per merged stage: budget, alpha, and per group its held-out mean at start, trained, merged."""
    if not data.merges:
        return None
    rows = [_row(stage, record) for stage, record in data.merges.items()]
    headers = ["stage", "budget (points)", "alpha", *[f"{g} tasks: start / trained / merged" for g in GROUPS],
               "alphas tried"]
    caption = ("Held-out accuracy in %, mean over each group's tasks, on rows that are not evaluation rows; "
               "alpha: the share of the stage's update kept (1: the trained model, 0: the stage's start).")
    return Table(headers, rows, caption=caption)


def _row(stage: str, record: dict) -> list[str]:
    trials = {float(t["alpha"]): t for t in record.get("trials") or []}
    alpha = float(record.get("alpha", 1.0))
    cells = [stage, f"{float(record.get('budget', 0)):g}", f"{alpha:g}"]
    for group in GROUPS:
        if group not in (record.get("groups") or {}) or 0.0 not in trials:
            cells.append("-")
            continue
        start, full = trials[0.0]["means"][group], trials.get(1.0, trials[0.0])["means"][group]
        chosen = trials.get(alpha, trials[0.0])["means"][group]
        cells.append(f"{start:.1f} / {full:.1f} / {chosen:.1f}")
    tried = ", ".join(f"{a:g}{'' if t['within'] else ' (over)'}" for a, t in sorted(trials.items()))
    cells.append(tried or record.get("reason", ""))
    return cells
