"""`cpt report RUN_DIR`: gather a run's matrix, metrics and training logs; write RUN_DIR/report/.

    cpt report runs/quickstart      # -> runs/quickstart/report/index.html, report.md and PNGs

Reads what the runner wrote: manifest.json, recipe.json, eval/matrix.json, eval/metrics.json, each
stage's train_log.json (Trainer log history: loss, eval_loss, and reward and kl for GRPO) and, for
mixing stages, mixture_weights.json ([{"step": N, "weights": {domain: w}}, ...]).
"""

from __future__ import annotations

import time
from pathlib import Path

from cpt.core.layout import MANIFEST_FILE, RunLayout, StageLayout
from cpt.core.manifest import Manifest
from cpt.errors import UserError
from eval.files import read_json
from eval.report import ReportData, StageCurves, write_report

LOGGED_SERIES = ("loss", "eval_loss", "reward", "kl")


def write_run_report(run_dir: Path) -> Path:
    """Write the report of the run in `run_dir`; return the path of its index.html."""
    manifest = load_manifest(run_dir)
    run = RunLayout(run_dir)
    matrix = _read_eval_file(run.matrix, run_dir)
    metrics = _read_eval_file(run.metrics, run_dir)
    stages = sorted(manifest.stages.values(), key=lambda rec: rec.index)
    data = ReportData(
        title=manifest.run_name,
        matrix=matrix,
        metrics=metrics,
        general=_general_tasks(run_dir),
        stages=[StageCurves(rec.name, rec.kind, _stage_series(run.stage(rec.name))) for rec in stages],
        notes=[
            f"base model: {manifest.base_model}",
            "stages: " + ", ".join(f"{rec.name} ({rec.kind}, {rec.status}, {rec.global_step} steps)" for rec in stages),
            f"written {time.strftime('%Y-%m-%d %H:%M')} from {run_dir}",
        ],
        merges={rec.name: rec.merge for rec in stages if rec.merge},
    )
    return write_report(run.report, data)


def load_manifest(run_dir: Path) -> Manifest:
    """The run's manifest, or a UserError saying `run_dir` is not a run directory."""
    manifest = Manifest.load(run_dir) if run_dir.is_dir() else None
    if manifest is None:
        raise UserError(f"{run_dir}: not a run directory (no {MANIFEST_FILE}); give the folder `cpt run` wrote")
    return manifest


def _read_eval_file(path: Path, run_dir: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} not found: the run has no evaluation yet; run `cpt eval {run_dir}` first")
    return read_json(path)


def _general_tasks(run_dir: Path) -> list[str]:
    path = RunLayout(run_dir).recipe
    recipe = read_json(path) if path.is_file() else {}
    return [t["name"] for t in (recipe.get("eval") or {}).get("tasks", []) if t.get("general")]


def _stage_series(stage: StageLayout) -> dict[str, list[tuple[float, float]]]:
    """Metric -> [(step, value)] from the stage's training log and mixture-weight log."""
    series: dict[str, list[tuple[float, float]]] = {}
    log = stage.train_log
    for entry in read_json(log) if log.is_file() else []:
        for key in LOGGED_SERIES:
            if isinstance(entry.get(key), (int, float)) and "step" in entry:
                series.setdefault(key, []).append((entry["step"], float(entry[key])))
    mixture = stage.mixture_log
    for entry in read_json(mixture) if mixture.is_file() else []:
        for domain, weight in entry["weights"].items():
            series.setdefault(f"weight/{domain}", []).append((entry["step"], float(weight)))
    return series
