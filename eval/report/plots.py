"""The accuracy plots of a report: the checkpoint x task heatmap and each task's score across checkpoints.

    heatmap = draw_heatmap(out_dir, data)    # out_dir/heatmap.png, or None when the matrix is empty
    lines = draw_task_lines(out_dir, data)   # out_dir/tasks.png, or None

Scores are drawn in percent; a missing score is a grey "-" cell in the heatmap and a gap in its line.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.patches import Patch, Rectangle

from eval.report.blocks import Image
from eval.report.data import ReportData
from eval.report.figures import MISSING_COLOR, new_figure, save_png

HEATMAP_FILE = "heatmap.png"
TASKS_FILE = "tasks.png"
CMAP = matplotlib.colormaps["viridis"].with_extremes(bad=MISSING_COLOR)
OWN_STAGE_COLOR = "#e6194b"  # outline of a task's cell at its own stage: red, apart from every viridis colour


def task_label(task: str, general: set[str], newline: bool = True) -> str:
    """The task's name, marked "(general)" for an old-knowledge task."""
    return f"{task}{chr(10) if newline else ' '}(general)" if task in general else task


def draw_heatmap(out_dir: Path, data: ReportData) -> Image | None:
    """Rows = checkpoints, columns = tasks, each cell annotated; the cell of a task's own stage outlined."""
    labels, tasks, grid = data.labels(), data.tasks(), data.scores()
    if not labels or not tasks:
        return None
    percent = np.ma.masked_invalid(np.array([[np.nan if s is None else 100 * s for s in row] for row in grid]))
    rotate = len(tasks) > 6 or max(len(t) for t in tasks) > 12  # long labels go at a slant, columns can narrow
    fig = new_figure(2.6 + (0.8 if rotate else 1.1) * len(tasks), 1.9 + 0.5 * len(labels))
    ax = fig.add_subplot()
    image = ax.imshow(percent, cmap=CMAP, norm=Normalize(0, 100), aspect="auto", interpolation="nearest")
    _annotate_cells(ax, percent)
    outlined = _outline_own_stages(ax, data, labels, tasks)
    general = set(data.general)
    ax.set_xticks(range(len(tasks)), [task_label(t, general, newline=not rotate) for t in tasks])
    ax.set_yticks(range(len(labels)), labels)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False, length=0)
    if rotate:
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("left")
    ax.set_ylabel("checkpoint")
    fig.colorbar(image, ax=ax, label="accuracy (%)", fraction=0.05, pad=0.02)
    if outlined:
        patch = Patch(fill=False, edgecolor=OWN_STAGE_COLOR, linewidth=2, label="right after the task's own stage")
        fig.legend(handles=[patch], loc="outside lower center", frameon=False)
    alt = f"Heatmap of accuracy (%) for {len(tasks)} tasks (columns) at {len(labels)} checkpoints (rows)"
    return save_png(fig, out_dir, HEATMAP_FILE, alt)


def _annotate_cells(ax, percent: np.ma.MaskedArray) -> None:
    """Write each score (one decimal) in its cell, dark on light colours and light on dark; "-" if missing."""
    for i, row in enumerate(percent):
        for j, value in enumerate(row):
            if value is np.ma.masked:
                ax.text(j, i, "-", ha="center", va="center", color="#555555", fontsize=10)
                continue
            r, g, b, _ = CMAP(value / 100)
            color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", color=color, fontsize=10)


def _outline_own_stages(ax, data: ReportData, labels: list[str], tasks: list[str]) -> int:
    """Outline the cell (stage row, task column) of every trained task; return how many were outlined."""
    row_of = {label: k for k, label in reversed(list(enumerate(labels)))}  # the first row wins, as in eval.metrics
    count = 0
    for task, stage in data.task_stage().items():
        if task in tasks and stage in row_of:
            cell = (tasks.index(task) - 0.5, row_of[stage] - 0.5)
            ax.add_patch(Rectangle(cell, 1, 1, fill=False, edgecolor=OWN_STAGE_COLOR, linewidth=3, clip_on=False))
            count += 1
    return count


def draw_task_lines(out_dir: Path, data: ReportData) -> Image | None:
    """One line per task: accuracy (%) against the checkpoints in order; general tasks dashed."""
    labels, tasks, grid = data.labels(), data.tasks(), data.scores()
    if not labels or not tasks:
        return None
    general, own_stage = set(data.general), data.task_stage()
    fig = new_figure(max(6.5, 2.5 + 1.0 * len(labels)), 4.4)
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10" if len(tasks) <= 10 else "tab20"].colors
    x = np.arange(len(labels))
    for j, task in enumerate(tasks):
        y = np.array([np.nan if row[j] is None else 100 * row[j] for row in grid])
        color = colors[j % len(colors)]
        style = "--" if task in general else "-"
        ax.plot(x, y, style, marker="o", markersize=4, color=color, label=task_label(task, general, newline=False))
        if own_stage.get(task) in labels:
            k = labels.index(own_stage[task])
            ax.plot([k], [y[k]], marker="o", markersize=10, markerfacecolor="none", color=color)
    ax.set_xticks(x, labels)
    if len(labels) > 5 or max(len(label) for label in labels) > 12:
        ax.tick_params(axis="x", labelrotation=25)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    ax.set_ylim(-4, 104)
    ax.set_xlim(-0.3, len(labels) - 0.7)
    ax.set_ylabel("accuracy (%)")
    ax.set_xlabel("checkpoint")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", title="task (ring: own stage)", fontsize=9, title_fontsize=9)
    alt = f"Line chart of accuracy (%) of {len(tasks)} tasks across {len(labels)} checkpoints; general tasks dashed"
    return save_png(fig, out_dir, TASKS_FILE, alt)
