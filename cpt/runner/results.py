"""The run's accuracy matrix and continual-learning metrics, written to RUN_DIR/eval/.

    lines = write_matrix(run_dir, recipe, [("base", {...}), ("sft_a", {...})], tasks)

matrix.json ({tasks, rows: [{checkpoint, scores}]}), matrix.txt and metrics.json (with the task -> stage
map the metrics used) are what `cpt report` reads.
"""

from __future__ import annotations

from pathlib import Path

from cpt.recipe.schema import Recipe
from cpt.runner.atomic import atomic_write_json, atomic_write_text
from cpt.runner.distributed import is_main_process
from eval.matrix import format_matrix
from eval.metrics import compute_metrics, format_metrics, metrics_to_json

EVAL_DIR = "eval"


def write_matrix(run_dir: Path, recipe: Recipe, matrix: list[tuple[str, dict]], tasks: list[str]) -> list[str]:
    """Write the matrix and its metrics under RUN_DIR/eval/ (main process); return the lines to print."""
    table = format_matrix(matrix, tasks)
    matrix_json = {"tasks": tasks, "rows": [{"checkpoint": c, "scores": s} for c, s in matrix]}
    evaluated = {label for label, _ in matrix}
    task_stage = {t: s for t, s in recipe.task_stages().items() if s in evaluated and t in tasks}
    general = {t.name for t in recipe.eval.tasks if t.general} if recipe.eval else set()
    metrics = compute_metrics(matrix_json, task_stage, general & set(tasks))
    if is_main_process():
        out = run_dir / EVAL_DIR
        atomic_write_json(out / "matrix.json", matrix_json)
        atomic_write_text(out / "matrix.txt", table + "\n")
        atomic_write_json(out / "metrics.json", {"task_stage": task_stage, **metrics_to_json(metrics)})
    return ["", "accuracy (%) after each stage:", table, "", format_metrics(metrics)]
