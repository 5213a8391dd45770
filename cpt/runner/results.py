"""The run's accuracy matrix and continual-learning metrics, written to RUN_DIR/eval/.

    lines = write_matrix(run_dir, recipe, [("base", {...}), ("sft_a", {...})], tasks, chance={"parity": 0.5})

matrix.json ({tasks, chance, rows: [{checkpoint, scores}]}), matrix.txt and metrics.json (with the task ->
stage map the metrics used and the tasks no stage was matched to) are what `cpt report` reads.
"""

from __future__ import annotations

from pathlib import Path

from cpt.core.distributed import is_main_process
from cpt.core.layout import RunLayout
from cpt.recipe.schema import Recipe
from cpt.recipe.task_matching import unmatched_lines
from eval.files import atomic_write_json, atomic_write_text
from eval.matrix import format_matrix
from eval.metrics import compute_metrics, format_metrics, metrics_to_json


def write_matrix(
    run_dir: Path, recipe: Recipe, matrix: list[tuple[str, dict]], tasks: list[str],
    chance: dict[str, float | None] | None = None,
) -> list[str]:
    """Write the matrix and its metrics under RUN_DIR/eval/ (main process); return the lines to print.

    `chance` maps a task to its chance level (CheckpointEvaluator.chance_levels); absent = unknown."""
    chance = {t: (chance or {}).get(t) for t in tasks}
    table = format_matrix(matrix, tasks, chance)
    matrix_json = {"tasks": tasks, "chance": chance, "rows": [{"checkpoint": c, "scores": s} for c, s in matrix]}
    evaluated = {label for label, _ in matrix}
    matching = recipe.task_matching()
    task_stage = {t: s for t, s in matching.task_stage.items() if s in evaluated and t in tasks}
    matching.unmatched = {t: c for t, c in matching.unmatched.items() if t in tasks}
    general = {t.name for t in recipe.eval.tasks if t.general} if recipe.eval else set()
    metrics = compute_metrics(matrix_json, task_stage, general & set(tasks), chance=chance)
    if is_main_process():
        run = RunLayout(run_dir)
        atomic_write_json(run.matrix, matrix_json)
        atomic_write_text(run.matrix_text, table + "\n")
        record = {"task_stage": task_stage, "unmatched_tasks": matching.unmatched, **metrics_to_json(metrics)}
        atomic_write_json(run.metrics, record)
    eval_tasks = recipe.eval.tasks if recipe.eval else []
    advice = unmatched_lines(matching, recipe.stages, eval_tasks)
    return ["", "accuracy (%) after each stage:", table, "", format_metrics(metrics), *advice]
