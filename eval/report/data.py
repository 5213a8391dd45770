"""The plain data a run report is drawn from; `eval.report.write_report` takes a `ReportData`.

The caller (which knows the run directory) fills these in; nothing here reads files or knows of training:

    data = ReportData(title="quickstart", matrix=json.load(open("eval/matrix.json")),
                      metrics=json.load(open("eval/metrics.json")), general=["capitals"],
                      stages=[StageCurves("sft_sorting", "sft", {"loss": [(25, 2.8), (50, 1.1)]})])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class StageCurves:
    """The training curves of one stage: metric name -> [(step, value), ...].

    Known names are grouped onto shared axes: "loss" with "eval_loss", "reward", "kl", and every
    "weight/<domain>" (mixture weights) together; any other metric gets axes of its own.
    """

    name: str
    kind: str  # "cpt" | "sft" | "dpo" | "grpo"
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)


@dataclass
class ReportData:
    """Everything a report shows. Scores are fractions in [0, 1]; a missing score is None or absent."""

    title: str  # the run name
    matrix: dict  # the matrix.json layout: {"tasks": [...], "chance": {...}, "rows": [{"checkpoint", "scores"}]}
    metrics: dict  # eval.metrics.metrics_to_json(...) plus "task_stage": {task: checkpoint label}
    general: list[str]  # the general (old-knowledge) tasks
    stages: list[StageCurves]
    notes: list[str] = field(default_factory=list)  # short lines shown under the title
    merges: dict[str, dict] = field(default_factory=dict)  # stage -> its merge-guard record (eval/report/merge_table.py)

    def labels(self) -> list[str]:
        """Checkpoint labels, in row order."""
        return [str(row.get("checkpoint")) for row in self.matrix.get("rows") or []]

    def tasks(self) -> list[str]:
        """Task names in the matrix's order; without a "tasks" list, in order of first appearance in the rows."""
        listed = [str(t) for t in self.matrix.get("tasks") or []]
        seen = [str(t) for row in self.matrix.get("rows") or [] for t in row.get("scores") or {}]
        return list(dict.fromkeys(listed + seen))

    def scores(self) -> list[list[float | None]]:
        """The matrix as a grid [row][task] in `labels()` x `tasks()` order; None where a score is missing."""
        tasks = self.tasks()
        return [[_score((row.get("scores") or {}).get(t)) for t in tasks] for row in self.matrix.get("rows") or []]

    def chance(self) -> dict[str, float]:
        """Task -> chance level (eval/chance.py), from the matrix or else the metrics; unknown levels left out."""
        levels = self.matrix.get("chance") or self.metrics.get("chance") or {}
        return {str(t): v for t, v in ((t, _score(v)) for t, v in levels.items()) if v is not None}

    def task_stage(self) -> dict[str, str]:
        """Trained task -> checkpoint label of the stage that trained it (empty when the metrics lack it)."""
        return {str(t): str(s) for t, s in (self.metrics.get("task_stage") or {}).items()}


def _score(value: object) -> float | None:
    """A score as a float; None for a missing, null or non-numeric value (as eval.metrics reads them)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)
