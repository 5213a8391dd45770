"""Run a recipe end to end: preflight, then each stage in lineage order, evaluating after each.

    cpt run recipes/quickstart.yaml [key.path=value ...]
    accelerate launch -m cpt run recipes/quickstart.yaml

Every process runs this loop; only the main process writes the manifest, evaluations and logs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from cpt.models import base_identity, resolve_base_model
from cpt.recipe.schema import Recipe
from cpt.runner.atomic import atomic_write_json, atomic_write_text
from cpt.runner.distributed import is_main_process, wait_for_everyone
from cpt.runner.evaluation import evaluate_cached, load_eval_rows
from cpt.runner.lineage import run_stage
from cpt.runner.manifest import Manifest, config_hash
from cpt.runner.preflight import preflight
from eval.matrix import format_matrix
from eval.metrics import compute_metrics, format_metrics, metrics_to_json


@dataclass
class RunSummary:
    run_dir: Path
    stage_actions: dict[str, str] = field(default_factory=dict)
    matrix: list[tuple[str, dict[str, float]]] = field(default_factory=list)


def run_dir_of(recipe: Recipe) -> Path:
    return Path(recipe.run.output_dir) / recipe.run.name


def run_recipe(recipe: Recipe, recipe_text: str) -> RunSummary:
    """Bring every stage of `recipe` to done; return what was done and the accuracy matrix."""
    preflight(recipe)
    run_dir = run_dir_of(recipe)
    base = resolve_base_model(recipe.model)
    base_hash = config_hash(base_identity(recipe.model, base))
    manifest = _open_manifest(run_dir, recipe, recipe_text, base, base_hash)
    summary = RunSummary(run_dir)
    evaluate = _evaluator(recipe, summary)
    if recipe.eval and recipe.eval.base:
        evaluate("base", Path(base), run_dir / "base", base_hash, tokenizer=recipe.model.tokenizer)

    parent, parent_hash = Path(base), base_hash
    for index, spec in enumerate(recipe.stages):
        started = time.time()
        _say(f"\n== stage {index + 1}/{len(recipe.stages)}: {spec.name} ({spec.kind}) from {parent}")
        outcome = run_stage(spec, index, parent, parent_hash, manifest, run_dir, recipe)
        summary.stage_actions[spec.name] = outcome.action
        _say(f"== {spec.name}: {outcome.action} in {time.time() - started:.0f}s -> {outcome.model_dir}")
        if spec.eval:
            evaluate(spec.name, outcome.model_dir, outcome.model_dir.parent, outcome.config_hash)
        parent, parent_hash = outcome.model_dir, outcome.config_hash

    _finish(summary, recipe, manifest)
    return summary


def _open_manifest(run_dir: Path, recipe: Recipe, recipe_text: str, base: str, base_hash: str) -> Manifest:
    manifest = Manifest.load(run_dir) or Manifest(run_name=recipe.run.name)
    manifest.base_model, manifest.base_hash = base, base_hash
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "recipe.yaml", recipe_text)
        manifest.save(run_dir)
    wait_for_everyone()
    return manifest


def _evaluator(recipe: Recipe, summary: RunSummary):
    """A function that evaluates one checkpoint (cached) and adds its row to the matrix."""
    if recipe.eval is None:
        return lambda *args: None
    rows = load_eval_rows(recipe.eval)

    def evaluate(label: str, model_dir: Path, out_dir: Path, model_hash: str, tokenizer=None) -> None:
        trust = recipe.model.trust_remote_code
        scores = evaluate_cached(model_dir, out_dir, model_hash, recipe.eval, rows, trust, tokenizer)
        summary.matrix.append((label, scores))
        _say(f"   eval {label}: " + ", ".join(f"{t} {100 * s:.0f}%" for t, s in scores.items()))

    return evaluate


def _finish(summary: RunSummary, recipe: Recipe, manifest: Manifest) -> None:
    lines = ["", f"run {recipe.run.name}: {summary.run_dir}"]
    for name, action in summary.stage_actions.items():
        rec = manifest.stages[name]
        loss = rec.metrics.get("train_loss")
        loss_text = f"  train_loss {loss:.4f}" if isinstance(loss, float) else ""
        lines.append(f"  {name:<16} {rec.kind:<5} {action:<8} steps {rec.global_step}{loss_text}")
    if summary.matrix:
        lines += _report_matrix(summary, recipe)
    _say("\n".join(lines))


def _report_matrix(summary: RunSummary, recipe: Recipe) -> list[str]:
    """Write eval/matrix.json, matrix.txt and metrics.json; return the lines to print."""
    tasks = [t.name for t in recipe.eval.tasks]
    table = format_matrix(summary.matrix, tasks)
    matrix_json = {"tasks": tasks, "rows": [{"checkpoint": c, "scores": s} for c, s in summary.matrix]}
    evaluated = {label for label, _ in summary.matrix}
    task_stage = {t: s for t, s in recipe.task_stages().items() if s in evaluated}
    general = {t.name for t in recipe.eval.tasks if t.general}
    metrics = compute_metrics(matrix_json, task_stage, general)
    if is_main_process():
        out = summary.run_dir / "eval"
        atomic_write_json(out / "matrix.json", matrix_json)
        atomic_write_text(out / "matrix.txt", table + "\n")
        atomic_write_json(out / "metrics.json", {"task_stage": task_stage, **metrics_to_json(metrics)})
    return ["", "accuracy (%) after each stage:", table, "", format_metrics(metrics)]


def _say(text: str) -> None:
    if is_main_process():
        print(text, flush=True)

