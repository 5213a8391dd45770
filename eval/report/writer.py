"""`write_report`: the PNGs, report.md and index.html of one run, written into a folder.

    from eval.report import write_report
    index = write_report(Path("runs/quickstart/report"), data)   # returns .../index.html

Every file is written under a temporary name and renamed over the old one; index.html comes last, so a
complete index.html always shows a complete set of images. Images of an earlier report that this one
no longer has are removed.
"""

from __future__ import annotations

from pathlib import Path

from eval.files import atomic_open
from eval.report import html_page, markdown_page
from eval.report.content import Figures, build_sections, draw_figures
from eval.report.curves import STAGE_FILE_PREFIX
from eval.report.data import ReportData
from eval.report.plots import HEATMAP_FILE, TASKS_FILE

INDEX_FILE = "index.html"
MARKDOWN_FILE = "report.md"


def write_report(out_dir: Path, data: ReportData) -> Path:
    """Write out_dir/index.html, out_dir/report.md and the PNGs they show; return index.html's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(out_dir, data)
    _remove_stale_images(out_dir, figures)
    sections = build_sections(data, figures)
    _write_text(out_dir / MARKDOWN_FILE, markdown_page.render(data.title, data.notes, sections))
    _write_text(out_dir / INDEX_FILE, html_page.render(data.title, data.notes, sections))
    return out_dir / INDEX_FILE


def _remove_stale_images(out_dir: Path, figures: Figures) -> None:
    """Remove this report's kind of PNG (heatmap, tasks, stage_*) left by an earlier report and not drawn now."""
    drawn = {image.file for image in [figures.heatmap, figures.tasks, *figures.stages] if image is not None}
    ours = [out_dir / HEATMAP_FILE, out_dir / TASKS_FILE, *out_dir.glob(f"{STAGE_FILE_PREFIX}*.png")]
    for path in ours:
        if path.name not in drawn:
            path.unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)
