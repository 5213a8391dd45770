"""Continual-learning metrics from the accuracy matrix R[checkpoint][task] (`runs/NAME/eval/matrix.json`).

Row 0 of R is the base model (labelled "base"), rows 1..T the checkpoints after each stage in order; R[k][i]
is the score of task i at row k, in [0, 1]. `stage_i` is the row of the stage that trained task i. The formulas
(details and sources in docs/metrics.md):

    average accuracy at row k  = mean over tasks i with stage_i <= k of R[k][i]
    BWT (GEM)                  = mean over trained tasks but the last  of R[T][i] - R[stage_i][i]
    FWT (GEM, base as b_i)     = mean over trained tasks but the first of R[stage_i - 1][i] - R[0][i]
    forgetting of task i       = max(best_i, c_i) - max(R[T][i], c_i), best_i = max over k in stage_i..T of R[k][i]
    never learned              = R[stage_i][i] < c_i + learned_threshold * (1 - c_i)
    general change of task g   = R[T][g] - R[0][g]

c_i is task i's chance level (eval/chance.py: the score of always giving its most frequent answer, or the
level the recipe declares; 0 when unknown), so forgetting counts only the points above chance (a task
falling from 100% to 50% with c = 0.5 forgets 50 points, and so does one falling to 40%) and a task stuck
near its chance level is never learned. With c_i = 0 both are the plain formulas. Averages, BWT and FWT stay
raw scores, as GEM defines them.

A missing score (absent or null) is left out of every mean; a value that needs it is None.

Use:

    import json
    from eval.metrics import compute_metrics, format_metrics, metrics_to_json

    matrix = json.load(open("runs/quickstart/eval/matrix.json"))
    metrics = compute_metrics(matrix, task_stage={"date_format": "sft_date_format", "sorting": "sft_sorting"},
                              general={"capitals"}, chance=matrix.get("chance"))
    print(format_metrics(metrics))          # the end-of-run summary block
    json.dump(metrics_to_json(metrics), open("runs/quickstart/eval/metrics.json", "w"), indent=2)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

BASE_LABEL = "base"  # the pipeline's label for row 0; without such a row, FWT and general change are None


@dataclass
class ContinualMetrics:
    """Continual-learning metrics of one run; scores and differences are fractions (0.45 = 45 points)."""

    average_accuracy: dict[str, float | None]  # checkpoint -> mean over tasks trained by then; None before any
    final_average_accuracy: float | None  # average accuracy at the last checkpoint
    bwt: float | None  # backward transfer; None with fewer than two training stages
    fwt: float | None  # forward transfer; None with fewer than two training stages or no base row
    forgetting: dict[str, float | None]  # trained task -> points above chance lost from its best to the end
    general_change: dict[str, float | None]  # general task -> final score minus base score
    never_learned: list[str]  # trained tasks below chance + threshold * (1 - chance) right after their stage
    score_after_stage: dict[str, float | None] = field(default_factory=dict)  # trained task -> R[stage_i][i]
    chance: dict[str, float | None] = field(default_factory=dict)  # task -> chance level (None: unknown, 0 used)


def compute_metrics(
    matrix: dict,
    task_stage: dict[str, str],
    general: set[str] = frozenset(),
    learned_threshold: float = 0.2,
    chance: dict[str, float | None] | None = None,
) -> ContinualMetrics:
    """Compute the metrics of the module docstring from `matrix` (the matrix.json layout).

    `task_stage` maps a task to the checkpoint label of the stage that trained it (tasks absent from it were
    not trained in this run); `general` names the old-knowledge tasks; `chance` maps a task to its chance
    level (absent or None: 0). Raises ValueError for an empty matrix or a stage label that is no row of it.
    """
    labels, rows = _read_rows(matrix)
    last = len(rows) - 1
    base = 0 if labels[0] == BASE_LABEL else None
    stage = _stage_rows(task_stage, labels, base)
    first_stage, last_stage = min(stage.values(), default=None), max(stage.values(), default=None)
    after = {t: rows[k].get(t) for t, k in stage.items()}
    level = {t: (chance or {}).get(t) or 0.0 for t in stage}
    final = {t: rows[last].get(t) for t in stage}
    average = {labels[j]: _mean([rows[j].get(t) for t, k in stage.items() if k <= j]) for j in range(len(rows))}
    bwt = _mean([_diff(final[t], after[t]) for t, k in stage.items() if k != last_stage])
    fwt = None
    if base is not None:
        fwt = _mean([_diff(rows[k - 1].get(t), rows[base].get(t)) for t, k in stage.items() if k != first_stage])
    return ContinualMetrics(
        average_accuracy=average,
        final_average_accuracy=average[labels[last]],
        bwt=bwt,
        fwt=fwt,
        forgetting={t: _forgetting([r.get(t) for r in rows[k:]], level[t]) for t, k in stage.items()},
        general_change={
            g: _diff(rows[last].get(g), rows[base].get(g) if base is not None else None)
            for g in _ordered(general, matrix.get("tasks", []))
        },
        never_learned=[
            t for t, s in after.items() if s is not None and s < level[t] + learned_threshold * (1 - level[t])
        ],
        score_after_stage=after,
        chance={t: (chance or {}).get(t) for t in _ordered(set(chance or {}), matrix.get("tasks", []))},
    )


def format_metrics(metrics: ContinualMetrics) -> str:
    """A plain-text block for the end-of-run summary: accuracies in percent, differences in points."""
    pts = format_points
    lines = [
        "continual-learning metrics (accuracy in %, differences in points):",
        f"  final average accuracy {format_percent(metrics.final_average_accuracy)}",
        f"  BWT {pts(metrics.bwt)}  (final minus right after own stage; mean over trained tasks but the last)",
        f"  FWT {pts(metrics.fwt)}  (right before own stage minus base; mean over trained tasks but the first)",
    ]
    if metrics.forgetting:
        lines.append("  forgetting (best at or after own stage minus final, counted above chance):")
    for task, value in metrics.forgetting.items():
        notes = []
        if task in metrics.never_learned:
            notes.append(f"never learned: score after its stage {format_percent(metrics.score_after_stage.get(task))}")
        if metrics.chance.get(task):
            notes.append(f"chance {format_percent(metrics.chance[task])}")
        flag = f"  ({', '.join(notes)})" if notes else ""
        lines.append(f"    {task} {format_points(value, sign=False)}{flag}")
    if metrics.general_change:
        lines.append("  general knowledge change (final minus base):")
    lines += [f"    {task} {format_points(value)}" for task, value in metrics.general_change.items()]
    return "\n".join(lines)


def metrics_to_json(metrics: ContinualMetrics) -> dict:
    """The metrics as a JSON-able dict (floats and None, fractions not percent)."""
    return asdict(metrics)


def _read_rows(matrix: dict) -> tuple[list[str], list[dict[str, float]]]:
    """Checkpoint labels and score dicts, with null or non-numeric scores dropped (= missing)."""
    rows = matrix.get("rows") or []
    if not rows:
        raise ValueError("the accuracy matrix has no rows")
    labels = [str(row.get("checkpoint")) for row in rows]
    scores = [
        {
            t: float(s)
            for t, s in (row.get("scores") or {}).items()
            if isinstance(s, (int, float)) and not isinstance(s, bool)
        }
        for row in rows
    ]
    return labels, scores


def _stage_rows(task_stage: dict[str, str], labels: list[str], base: int | None) -> dict[str, int]:
    """Trained task -> row index of its stage, ordered by stage (ties keep the order of `task_stage`)."""
    index = {label: k for k, label in reversed(list(enumerate(labels)))}  # first row wins on a repeated label
    stage = {}
    for task, label in task_stage.items():
        if label not in index:
            raise ValueError(f"task {task!r}: stage {label!r} is no row of the matrix (rows: {', '.join(labels)})")
        if index[label] == base:
            raise ValueError(f"task {task!r}: the base row {label!r} trains no task")
        stage[task] = index[label]
    return dict(sorted(stage.items(), key=lambda item: item[1]))


def _ordered(tasks: set[str], order: list[str]) -> list[str]:
    return [t for t in order if t in tasks] + sorted(set(tasks) - set(order))


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _forgetting(scores_from_stage: list[float | None], chance: float) -> float | None:
    """Points above `chance` lost from the best score at or after the task's stage to the final one:
    max(best, chance) - max(final, chance); None if either score is missing."""
    present = [s for s in scores_from_stage if s is not None]
    final = scores_from_stage[-1]
    return None if final is None or not present else max(max(present), chance) - max(final, chance)


def format_percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal ("45.0%"); "n/a" for None."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_points(value: float | None, sign: bool = True) -> str:
    """A difference of fractions in points with one decimal, signed by default ("-12.5"); "n/a" for None."""
    return "n/a" if value is None else f"{100 * value:{'+' if sign else ''}.1f}"
