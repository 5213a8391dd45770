"""The accuracy matrix R[checkpoint][task] as a plain-text table.

Rows are checkpoints in lineage order (the base model first), columns are tasks.
"""

from __future__ import annotations


def format_matrix(rows: list[tuple[str, dict[str, float]]], tasks: list[str]) -> str:
    """A fixed-width table of accuracies in percent; '-' where a checkpoint lacks a task."""
    label_width = max([len("checkpoint")] + [len(label) for label, _ in rows])
    widths = [max(6, len(task)) for task in tasks]
    header = "checkpoint".ljust(label_width) + "  " + "  ".join(t.rjust(w) for t, w in zip(tasks, widths))
    lines = [header, "-" * len(header)]
    for label, scores in rows:
        cells = [_cell(scores.get(task), w) for task, w in zip(tasks, widths)]
        lines.append(label.ljust(label_width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def _cell(score: float | None, width: int) -> str:
    return ("-" if score is None else f"{100 * score:.1f}").rjust(width)
