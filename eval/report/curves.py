"""One figure of training curves per stage: out_dir/stage_<name>.png.

    images = draw_stage_curves(out_dir, data.stages)   # one Image, or None for a stage without a log

Series are grouped onto shared axes: the loss group ("loss", "eval_loss", anything ending in "loss"),
reward ("reward", "reward_std", "rewards/..."), KL ("kl..."), and the mixture weights ("weight/<domain>",
labelled by domain); every other metric gets axes of its own. Empty series are left out.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from eval.report.blocks import Image
from eval.report.data import StageCurves
from eval.report.figures import new_figure, save_png

STAGE_FILE_PREFIX = "stage_"
GROUPS = [  # (title, y label, does this metric belong here)
    ("loss", "loss", lambda name: name.endswith("loss")),
    ("reward", "reward", lambda name: name.startswith("reward")),
    ("KL", "KL", lambda name: name.startswith("kl")),
    ("mixture weights", "weight", lambda name: name.startswith("weight/")),
]
WEIGHTS = "mixture weights"


def draw_stage_curves(out_dir: Path, stages: list[StageCurves]) -> list[Image | None]:
    """Draw every stage with a non-empty series; file names are made safe and unique."""
    used: set[str] = set()
    images = []
    for stage in stages:
        file = _unique(_safe_file_name(stage.name), used)
        images.append(_draw_stage(out_dir, stage, file))
    return images


def group_series(series: dict[str, list[tuple[float, float]]]) -> list[tuple[str, str, dict[str, list]]]:
    """(title, y label, {legend label: points}) per axes, in GROUPS order and then the other metrics by name."""
    present = {name: points for name, points in series.items() if points}
    groups = []
    for title, ylabel, belongs in GROUPS:
        members = {name: present.pop(name) for name in sorted(present, key=_primary_first) if belongs(name)}
        if members:
            groups.append((title, ylabel, {name.removeprefix("weight/"): pts for name, pts in members.items()}))
    groups += [(name, name, {name: present[name]}) for name in sorted(present)]
    return groups


def _primary_first(name: str) -> tuple[bool, str]:
    """Sort key: the group's main series ("loss", "reward", "kl") first, so it keeps the first colour."""
    return name not in ("loss", "reward", "kl"), name


def _draw_stage(out_dir: Path, stage: StageCurves, file: str) -> Image | None:
    groups = group_series(stage.series)
    if not groups:
        return None
    ncols = 2 if len(groups) == 4 else min(len(groups), 3)
    nrows = math.ceil(len(groups) / ncols)
    fig = new_figure(0.6 + 4.4 * ncols, 0.5 + 3.1 * nrows)
    for index, (title, ylabel, members) in enumerate(groups):
        ax = fig.add_subplot(nrows, ncols, index + 1)
        curves = {label: _xy(points) for label, points in members.items()}
        if not (title == WEIGHTS and _stack_weights(ax, curves)):
            for label, (steps, values) in curves.items():
                ax.plot(steps, values, marker="o" if len(steps) <= 20 else None, markersize=3, label=label)
        ax.set(title=title, xlabel="step", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if len(members) > 1:
            handles, labels = ax.get_legend_handles_labels()
            if ax.collections:  # stacked areas: list them top to bottom, as they are drawn
                handles, labels = handles[::-1], labels[::-1]
            ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    fig.suptitle(f"{stage.name} ({stage.kind})")
    names = ", ".join(name for _, _, members in groups for name in members)
    return save_png(fig, out_dir, file, alt=f"Training curves of stage {stage.name} ({stage.kind}): {names}")


def _stack_weights(ax, curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> bool:
    """Mixture weights as stacked areas (equal weights would hide each other as lines); False when the series
    do not share their steps or have gaps, and lines are drawn instead."""
    (steps, _), *rest = curves.values()
    values = [v for _, v in curves.values()]
    if any(len(s) != len(steps) or not np.array_equal(s, steps) for s, _ in rest) or np.isnan(values).any():
        return False
    ax.stackplot(steps, values, labels=list(curves), alpha=0.85)
    ax.set_ylim(0, max(1.0, float(np.sum(values, axis=0).max())))
    if len(steps) > 1:
        ax.set_xlim(steps[0], steps[-1])
    return True


def _xy(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values in step order; a missing value (None) becomes NaN, a gap in the line."""
    ordered = sorted((float(step), np.nan if value is None else float(value)) for step, value in points)
    return np.array([s for s, _ in ordered]), np.array([v for _, v in ordered])


def _safe_file_name(stage_name: str) -> str:
    return STAGE_FILE_PREFIX + (re.sub(r"[^A-Za-z0-9_.-]+", "_", stage_name).strip("._") or "stage") + ".png"


def _unique(file: str, used: set[str]) -> str:
    stem, n, candidate = file.removesuffix(".png"), 2, file
    while candidate in used:
        candidate, n = f"{stem}_{n}.png", n + 1
    used.add(candidate)
    return candidate
