"""write_report on the hand-made run of sample_run.py: files, images, names, formatted metrics, no network.

Run: python -m pytest tests/eval/report/test_report.py -q
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.report import ReportData, StageCurves, write_report
from eval.report.curves import group_series
from tests.eval.report.sample_run import make_report_data


class _Images(HTMLParser):
    """Collects the attributes of every <img> of a page."""

    def __init__(self):
        super().__init__()
        self.images: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


def _img_attrs(html: str) -> list[dict[str, str]]:
    parser = _Images()
    parser.feed(html)
    return parser.images


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, str, str]:
    """The report of sample_run's run, written once for the read-only tests of this module."""
    index = write_report(tmp_path_factory.mktemp("report"), make_report_data())
    return index, index.read_text(encoding="utf-8"), (index.parent / "report.md").read_text(encoding="utf-8")


def test_writes_index_markdown_and_the_images_they_show(written):
    index, html, md = written
    assert index.name == "index.html" and index.is_file()
    images = _img_attrs(html)
    # heatmap, tasks, and one per stage with a log (dpo_nolog has none)
    assert sorted(i["src"] for i in images) == sorted(
        ["heatmap.png", "tasks.png", "stage_mix_cpt.png", "stage_stage_a.png", "stage_stage_b.png"]
    )
    for attrs in images:
        assert attrs.get("alt"), attrs
        with Image.open(index.parent / attrs["src"]) as png:
            assert png.format == "PNG"
            assert png.width > 300 and png.height > 200, (attrs["src"], png.size)
            assert (int(attrs["width"]), int(attrs["height"])) == png.size
    assert sorted(re.findall(r"!\[[^\]]+\]\(([^)]+)\)", md)) == sorted(i["src"] for i in images)


def test_every_stage_and_task_is_named_in_both_pages(written):
    _, html, md = written
    for name in [s.name for s in make_report_data().stages] + ["a", "b", "g"]:
        assert name in html and name in md, name
    assert "g (general)" in html and "g (general)" in md


@pytest.mark.parametrize(
    "text",
    [
        "72.5%",  # final average accuracy
        "-30.0",  # BWT in points
        "30.0",  # forgetting of a
        "-15.0",  # general change of g
        "80.0%",  # g at base
        "never learned (85.0% after its stage)",  # b, below the 0.9 threshold
    ],
)
def test_metrics_appear_formatted(written, text):
    _, html, md = written
    assert text in html and text in md


def test_missing_values_read_n_a_and_dash(written):
    _, html, md = written
    fwt_row = next(line for line in md.splitlines() if line.startswith("| FWT"))
    assert "| n/a |" in fwt_row  # b's score before its stage is missing
    stage_a_row = next(line for line in md.splitlines() if line.startswith("| stage_a |"))
    assert stage_a_row == "| stage_a | 90.0\\* | - | 70.0 |"
    assert "<td>-</td>" in html


def test_stage_without_log_says_so_instead_of_an_image(written):
    index, html, md = written
    assert not (index.parent / "stage_dpo_nolog.png").exists()
    assert "No training log for this stage." in html and "No training log for this stage." in md


def test_html_is_offline_and_script_free(written):
    _, html, _ = written
    lowered = html.lower()
    for forbidden in ("http://", "https://", "<script", "@import", "url(", "<link"):
        assert forbidden not in lowered, forbidden


def test_heatmap_is_not_one_flat_colour(written):
    index, _, _ = written
    with Image.open(index.parent / "heatmap.png") as png:
        pixels = np.asarray(png.convert("RGB")).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    assert len(colours) > 50
    assert counts.max() / counts.sum() < 0.9


def test_text_is_escaped(tmp_path):
    report_data = make_report_data()
    report_data.title = "<b>run & co</b>"
    report_data.stages.append(StageCurves("<img src=x>", "sft", {}))
    html = write_report(tmp_path, report_data).read_text(encoding="utf-8")
    assert "&lt;b&gt;run &amp; co&lt;/b&gt;" in html and "<b>run" not in html
    assert "&lt;img src=x&gt;" in html and len(_img_attrs(html)) == 5


def test_rewrite_replaces_files_and_drops_stale_stage_images(tmp_path):
    report_data = make_report_data()
    write_report(tmp_path, report_data)
    assert (tmp_path / "stage_mix_cpt.png").exists()
    report_data.stages = [StageCurves("only/stage", "sft", {"loss": [(1, 1.0), (2, 0.5)]})]
    report_data.title = "second"
    html = write_report(tmp_path, report_data).read_text(encoding="utf-8")
    assert "<h1>second</h1>" in html
    assert sorted(p.name for p in tmp_path.glob("stage_*.png")) == ["stage_only_stage.png"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_empty_run_still_renders(tmp_path):
    data = ReportData(title="empty", matrix={"tasks": [], "rows": []}, metrics={}, general=[], stages=[])
    index = write_report(tmp_path / "out", data)
    html = index.read_text(encoding="utf-8")
    assert "No evaluation scores in this run." in html and "No stages." in html
    assert _img_attrs(html) == [] and not list(index.parent.glob("*.png"))


def test_series_are_grouped_onto_shared_axes():
    series = {
        "kl": [(1, 0.1)],
        "loss": [(1, 2.0)],
        "eval_loss": [(1, 2.5)],
        "weight/web": [(1, 0.6)],
        "weight/code": [(1, 0.4)],
        "reward": [(1, 0.5)],
        "grad_norm": [(1, 1.0)],
        "empty": [],
    }
    groups = [(title, list(members)) for title, _, members in group_series(series)]
    assert groups == [
        ("loss", ["loss", "eval_loss"]),
        ("reward", ["reward"]),
        ("KL", ["kl"]),
        ("mixture weights", ["code", "web"]),
        ("grad_norm", ["grad_norm"]),
    ]


def test_note_column_only_when_a_task_was_never_learned(tmp_path):
    data = make_report_data()
    data.metrics["never_learned"] = []
    md = (write_report(tmp_path, data).parent / "report.md").read_text(encoding="utf-8")
    header = next(line for line in md.splitlines() if line.startswith("| task | trained in"))
    assert header == "| task | trained in | after own stage | final | forgetting (points) |"
    assert "never learned" not in md


def test_chance_levels_and_unmatched_tasks_are_shown(tmp_path):
    from eval.metrics import compute_metrics, metrics_to_json
    from tests.eval.report.sample_run import MATRIX, TASK_STAGE

    matrix = {**MATRIX, "chance": {"a": 0.7, "b": None, "g": 0.25}}
    metrics = metrics_to_json(compute_metrics(matrix, TASK_STAGE, general={"g"}, chance=matrix["chance"]))
    metrics.update(task_stage=TASK_STAGE, unmatched_tasks={"mine": []})
    data = ReportData("chance_run", matrix, metrics, ["g"], [])
    md = (write_report(tmp_path, data).parent / "report.md").read_text(encoding="utf-8")
    lines = md.splitlines()
    # The matrix ends with the chance row; b's level is unknown.
    assert "| chance | 70.0 | - | 25.0 |" in lines
    # Forgetting table: a chance column; a went 90 -> 60 with chance 70: it lost the 20 points it had above
    # chance (the 10 below chance count for nothing).
    assert "| task | trained in | after own stage | final | chance | forgetting (points) |" in lines
    assert "| a | stage_a | 90.0% | 60.0% | 70.0% | 20.0 |" in lines
    assert "max(best, chance) - max(final, chance)" in md
    assert "left out: mine" in md and "trained_in: STAGE" in md
