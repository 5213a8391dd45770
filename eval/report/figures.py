"""Matplotlib figures without pyplot, saved as PNGs next to the report.

`matplotlib.figure.Figure` is used directly, never pyplot: no global figure registry, no GUI backend, and the
process-wide backend is left alone (`savefig` to PNG renders with Agg whatever the backend is).
Used by `plots` and `curves`:

    fig = new_figure(6, 4)
    ...draw on fig.add_subplot()...
    image = save_png(fig, out_dir, "heatmap.png", alt="accuracy heatmap")
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image as PILImage  # pillow is a matplotlib dependency

from eval.files import atomic_open
from eval.report.blocks import Image

DPI = 110
MISSING_COLOR = "#d0d0d0"  # grey for a missing score, in the heatmap and the tables


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure with constrained layout (labels and legends are kept inside the canvas)."""
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def save_png(fig: Figure, out_dir: Path, file: str, alt: str) -> Image:
    """Save `fig` as out_dir/file (atomically, over any old one) and release it."""
    try:
        with atomic_open(out_dir / file, "wb") as handle:
            fig.savefig(handle, format="png", dpi=DPI, facecolor="white")
    finally:
        fig.clear()
    with PILImage.open(out_dir / file) as png:
        width, height = png.size
    return Image(file=file, alt=alt, width=width, height=height)
