"""The quickstart as a new user runs it: it finishes, and its matrix shows real forgetting."""

from __future__ import annotations

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.serial]


def test_quickstart_learns_then_forgets(quickstart_run):
    run_dir, result = quickstart_run  # `cpt run recipes/quickstart.yaml`, run once per session (conftest.py)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "accuracy (%) after each stage:" in result.stdout
    matrix = json.loads((run_dir / "eval" / "matrix.json").read_text())
    scores = {row["checkpoint"]: row["scores"] for row in matrix["rows"]}
    assert list(scores) == ["base", "pretrain", "sft_date_format", "sft_sorting"]
    assert scores["pretrain"]["capitals"] >= 0.5, scores  # facts absorbed from the general corpus
    assert scores["sft_date_format"]["date_format"] >= 0.5, scores  # task A learned
    assert scores["sft_sorting"]["sorting"] >= 0.3, scores  # task B learned
    # Forgetting: task A falls after task B; general knowledge falls after fine-tuning.
    assert scores["sft_sorting"]["date_format"] <= scores["sft_date_format"]["date_format"] - 0.3, scores
    assert scores["sft_sorting"]["capitals"] < scores["pretrain"]["capitals"], scores
    metrics = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert metrics["task_stage"] == {"date_format": "sft_date_format", "sorting": "sft_sorting", "capitals": "pretrain"}
    assert metrics["forgetting"]["date_format"] >= 0.3 and metrics["bwt"] < 0, metrics
    assert "BWT -" in result.stdout and "forgetting (best at or after own stage minus final, counted above chance):" in result.stdout
    report = run_dir / "report"
    html, markdown = (report / "index.html").read_text(), (report / "report.md").read_text()
    for name in [*scores, *matrix["tasks"]]:
        assert name in html and name in markdown, name
    for stage in ("pretrain", "sft_date_format", "sft_sorting"):
        assert (report / f"stage_{stage}.png").stat().st_size > 1000
    assert (report / "heatmap.png").stat().st_size > 1000 and f"report: {report / 'index.html'}" in result.stdout
