"""The report's tables, formatted once for both the HTML and the Markdown page.

Accuracies are in percent and differences in points, one decimal, "n/a" where a value is missing
(eval.metrics' own formatting); a missing cell of the accuracy matrix is "-", as in the heatmap.

    summary_table(data); matrix_table(data); average_table(data); forgetting_table(data); general_table(data)
"""

from __future__ import annotations

from eval.matrix import CHANCE_LABEL
from eval.metrics import BASE_LABEL, format_percent, format_points
from eval.report.blocks import Table
from eval.report.data import ReportData
from eval.report.plots import task_label

OWN_STAGE_MARK = "*"


def summary_table(data: ReportData) -> Table:
    """Final average accuracy, BWT and FWT, each with what it means."""
    m = data.metrics
    rows = [
        ["final average accuracy", format_percent(m.get("final_average_accuracy")), "mean over the trained tasks"],
        ["BWT (backward transfer)", format_points(m.get("bwt")), "final minus right after own stage; < 0: forgetting"],
        ["FWT (forward transfer)", format_points(m.get("fwt")), "right before own stage minus base"],
    ]
    return Table(["metric", "value", "meaning"], rows, caption="Accuracy in %, differences in points.")


def matrix_table(data: ReportData) -> Table:
    """The accuracy matrix: one row per checkpoint; a task's score right after its own stage is starred."""
    labels, tasks, grid = data.labels(), data.tasks(), data.scores()
    own_stage, general = data.task_stage(), set(data.general)
    rows = []
    for label, scores in zip(labels, grid):
        cells = [_matrix_cell(score, own_stage.get(task) == label) for task, score in zip(tasks, scores)]
        rows.append([label, *cells])
    chance = data.chance()
    if chance:  # what answering every row with the task's most frequent answer scores
        rows.append([CHANCE_LABEL, *[_matrix_cell(chance.get(task), False) for task in tasks]])
    headers = ["checkpoint", *[task_label(t, general, newline=False) for t in tasks]]
    caption = f"Accuracy in %; {OWN_STAGE_MARK} right after the task's own stage; - no score."
    if chance:
        caption += f" Last row, {CHANCE_LABEL}: the score of always giving the task's most frequent answer."
    return Table(headers, rows, caption=caption)


def average_table(data: ReportData) -> Table:
    """Average accuracy over the tasks trained so far, after each checkpoint."""
    average = data.metrics.get("average_accuracy") or {}
    labels = data.labels() + [label for label in average if label not in data.labels()]
    rows = [[label, format_percent(average.get(label))] for label in labels]
    caption = "Mean accuracy over the tasks trained up to and including each checkpoint (n/a before any)."
    return Table(["checkpoint", "average accuracy"], rows, caption=caption)


def forgetting_table(data: ReportData) -> Table | None:
    """Per trained task: its stage, score after it, final score, forgetting and the never-learned flag."""
    m = data.metrics
    forgetting = m.get("forgetting") or {}
    if not forgetting:
        return None
    after, never, own_stage = m.get("score_after_stage") or {}, set(m.get("never_learned") or []), data.task_stage()
    final, flagged, chance = _final_scores(data), never & set(forgetting), data.chance()
    rows = []
    for task, value in _by_stage(data, forgetting).items():
        row = [task, own_stage.get(task, "n/a"), format_percent(after.get(task)), format_percent(final.get(task))]
        if chance:  # the chance column only when some level is known
            row.append(format_percent(chance.get(task)))
        row.append(format_points(value, sign=False))
        if flagged:  # the note column only when some task has a note
            row.append(f"never learned ({format_percent(after.get(task))} after its stage)" if task in never else "")
        rows.append(row)
    headers = ["task", "trained in", "after own stage", "final", *(["chance"] if chance else [])]
    headers += ["forgetting (points)", *(["note"] if flagged else [])]
    caption = "Forgetting = best score at or after the task's own stage minus its final score"
    caption += ", counted above chance: max(best, chance) - max(final, chance)." if chance else "."
    if flagged:
        caption += " A never-learned task had nothing to forget: its forgetting says the stage failed, not the guard."
        if chance:
            caption += " Never learned = below chance + threshold x (100% - chance) right after its own stage."
    return Table(headers, rows, caption=caption)


def general_table(data: ReportData) -> Table | None:
    """Per general task: base score, final score and the change in points."""
    change = data.metrics.get("general_change") or {}
    tasks = list(dict.fromkeys(list(change) + list(data.general)))
    if not tasks:
        return None
    labels = data.labels()
    base = _row_scores(data, 0) if labels and labels[0] == BASE_LABEL else {}
    final = _final_scores(data)
    rows = [
        [task, format_percent(base.get(task)), format_percent(final.get(task)), format_points(change.get(task))]
        for task in tasks
    ]
    caption = "Change = final minus base score (negative: old knowledge lost)."
    return Table(["task", "base", "final", "change (points)"], rows, caption=caption)


def _by_stage(data: ReportData, per_task: dict) -> dict:
    """`per_task` ordered by the row of each task's stage, then by the matrix's task order."""
    labels, tasks, own_stage = data.labels(), data.tasks(), data.task_stage()

    def key(task: str) -> tuple[int, int]:
        stage = own_stage.get(task)
        return (labels.index(stage) if stage in labels else len(labels), tasks.index(task) if task in tasks else 0)

    return {task: per_task[task] for task in sorted(per_task, key=key)}


def _matrix_cell(score: float | None, own_stage: bool) -> str:
    if score is None:
        return "-"
    return f"{100 * score:.1f}" + (OWN_STAGE_MARK if own_stage else "")


def _row_scores(data: ReportData, index: int) -> dict[str, float | None]:
    grid = data.scores()
    return dict(zip(data.tasks(), grid[index])) if grid else {}


def _final_scores(data: ReportData) -> dict[str, float | None]:
    return _row_scores(data, -1)
