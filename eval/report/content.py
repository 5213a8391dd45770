"""What the report says, in order, as sections of blocks (eval.report.blocks) shared by both renderers.

Use:

    figures = draw_figures(out_dir, data)      # writes the PNGs
    sections = build_sections(data, figures)   # then html_page.render / markdown_page.render
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval.report import tables
from eval.report.blocks import Image, Section, Text
from eval.report.curves import draw_stage_curves
from eval.report.data import ReportData
from eval.report.merge_table import merge_table
from eval.report.plots import draw_heatmap, draw_task_lines


@dataclass
class Figures:
    """The PNGs of one report; None where there was nothing to draw."""

    heatmap: Image | None
    tasks: Image | None
    stages: list[Image | None]  # aligned with ReportData.stages


def draw_figures(out_dir: Path, data: ReportData) -> Figures:
    return Figures(draw_heatmap(out_dir, data), draw_task_lines(out_dir, data), draw_stage_curves(out_dir, data.stages))


def build_sections(data: ReportData, figures: Figures) -> list[Section]:
    no_scores = Text("No evaluation scores in this run.", muted=True)
    general = tables.general_table(data)
    forgetting = tables.forgetting_table(data)
    merges = merge_table(data)
    return [
        Section("Summary", [tables.summary_table(data)]),
        Section("Accuracy matrix", [figures.heatmap or no_scores, tables.matrix_table(data)]),
        Section("Accuracy per task across checkpoints", [figures.tasks or no_scores]),
        Section("Average accuracy after each checkpoint", [tables.average_table(data)]),
        Section("Forgetting per task", _forgetting_blocks(data, forgetting)),
        Section("General knowledge change", [general or Text("No general tasks in this run.", muted=True)]),
        *([Section("Merge guard: alpha per stage", [merges])] if merges else []),
        Section("Training curves", [] if data.stages else [Text("No stages.", muted=True)]),
        *[_stage_section(stage.name, stage.kind, image) for stage, image in zip(data.stages, figures.stages)],
    ]


def _forgetting_blocks(data: ReportData, forgetting) -> list:
    """The forgetting table, and the eval tasks no stage was matched to (left out of it), if any."""
    unmatched = list(data.metrics.get("unmatched_tasks") or {})
    blocks = [forgetting] if forgetting else []
    if unmatched:
        blocks.append(Text(f"Not matched to the stage that trains them, so left out: {', '.join(unmatched)}; add "
                           "`trained_in: STAGE` to their eval entries in the recipe.", muted=True))
    return blocks or [Text("No trained tasks recorded (no task_stage).", muted=True)]


def _stage_section(name: str, kind: str, image: Image | None) -> Section:
    return Section(f"{name} ({kind})", [image or Text("No training log for this stage.", muted=True)], level=3)
