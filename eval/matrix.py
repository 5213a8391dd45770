"""The accuracy matrix R[checkpoint][task] as a plain-text table.

Rows are checkpoints in lineage order (the base model first), columns are tasks; below them, when any is
known, each task's chance level (eval/chance.py).

    print(format_matrix([("base", {"parity": 0.5}), ("sft", {"parity": 0.52})], ["parity"], {"parity": 0.5}))
"""

from __future__ import annotations

CHANCE_LABEL = "chance"


def format_matrix(
    rows: list[tuple[str, dict[str, float]]], tasks: list[str], chance: dict[str, float | None] | None = None
) -> str:
    """A fixed-width table of accuracies in percent; '-' where a checkpoint lacks a task or a chance level."""
    footer = [(CHANCE_LABEL, chance)] if chance and any(v is not None for v in chance.values()) else []
    label_width = max([len("checkpoint")] + [len(label) for label, _ in rows + footer])
    widths = [max(6, len(task)) for task in tasks]
    header = "checkpoint".ljust(label_width) + "  " + "  ".join(t.rjust(w) for t, w in zip(tasks, widths))
    lines = [header, "-" * len(header)]
    for label, scores in rows:
        cells = [_cell(scores.get(task), w) for task, w in zip(tasks, widths)]
        lines.append(label.ljust(label_width) + "  " + "  ".join(cells))
    for label, scores in footer:
        lines.append("-" * len(header))
        lines.append(label.ljust(label_width) + "  " + "  ".join(_cell(scores.get(t), w) for t, w in zip(tasks, widths)))
    return "\n".join(lines)


def score_line(label: str, scores: dict[str, float | None]) -> str:
    """One checkpoint's scores on a line, as `cpt run` and `cpt eval` say them: "eval b: parity 52.0%, ..." """
    return f"eval {label}: " + ", ".join(f"{task} {'-' if s is None else f'{100 * s:.1f}%'}" for task, s in scores.items())


def _cell(score: float | None, width: int) -> str:
    return ("-" if score is None else f"{100 * score:.1f}").rjust(width)
