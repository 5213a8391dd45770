"""Run a recipe end to end: preflight, then each stage in lineage order, evaluating after each.

    cpt run recipes/quickstart.yaml [key.path=value ...]
    accelerate launch --config_file recipes/launch/zero2.yaml -m cpt run recipes/quickstart.yaml
    cpt run recipes/quickstart.yaml --until sft_sorting --no-eval   # one launch per stage (cpt slurm)

Every process runs this loop; only the main process writes the manifest, evaluations and logs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from cpt.core.distributed import is_main_process, launch_description, main_process_first, wait_for_everyone
from cpt.core.layout import RunLayout
from cpt.core.manifest import Manifest, config_hash
from cpt.core.precision import choose_precision, count_parameters
from cpt.core.preemption import check_stop
from cpt.errors import UserError
from cpt.guards.merge_search import describe as describe_merge
from cpt.models import base_identity, resolve_base_model
from cpt.recipe.schema import Recipe
from cpt.report import write_run_report
from cpt.runner.evaluation import CheckpointEvaluator
from cpt.runner.lineage import run_stage
from cpt.runner.preflight import preflight
from cpt.runner.results import write_matrix
from eval.files import atomic_write_json, atomic_write_text
from eval.matrix import score_line
from eval.metrics import BASE_LABEL

logger = logging.getLogger(__name__)


@dataclass
class RunSummary:
    run_dir: Path
    stage_actions: dict[str, str] = field(default_factory=dict)
    matrix: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    train_seconds: dict[str, float] = field(default_factory=dict)  # stage -> wall time, skipped stages included
    eval_seconds: dict[str, float] = field(default_factory=dict)  # checkpoint -> wall time of its evaluation
    chance: dict[str, float | None] = field(default_factory=dict)  # eval task -> chance level (None: unknown)
    lines: list[str] = field(default_factory=list)  # the closing summary (stages, matrix, report) the CLI prints


def run_dir_of(recipe: Recipe) -> Path:
    return RunLayout.of(recipe.run.output_dir, recipe.run.name).dir


def run_recipe(recipe: Recipe, recipe_text: str, until: str | None = None, with_eval: bool = True,
               preflighted: bool = False) -> RunSummary:
    """Bring every stage of `recipe` (or those up to `until`) to done, evaluating each unless
    `with_eval` is False; return what was done and the accuracy matrix. `preflighted`: the caller
    already ran `preflight(recipe)` (it reads every local data file, so once is enough).
    Raises Preempted when a stop is asked for (core/preemption.py)."""
    if not preflighted:
        preflight(recipe)
    last = _last_stage_index(recipe, until)
    run_dir = run_dir_of(recipe)
    with main_process_first():
        base = resolve_base_model(recipe.model)
    base_hash = config_hash(base_identity(recipe.model, base))
    manifest = _open_manifest(run_dir, recipe, recipe_text, base, base_hash)
    summary = RunSummary(run_dir)
    evaluate = _evaluator(recipe, summary) if with_eval else (lambda *args: None)
    _say(f"launch: {launch_description()}")
    base_params = count_parameters(base)
    default_precision = choose_precision({}, base_params).describe()
    _say(f"precision: {default_precision}")
    if recipe.eval and recipe.eval.base:
        evaluate(BASE_LABEL, Path(base), RunLayout(run_dir).results(BASE_LABEL))

    parent, parent_hash = Path(base), base_hash
    for index, spec in enumerate(recipe.stages[: last + 1]):
        check_stop(f"stage {spec.name}")
        started = time.time()
        _say(f"\n== stage {index + 1}/{len(recipe.stages)}: {spec.name} ({spec.kind}) from {parent}")
        stage_precision = choose_precision(spec.train, base_params).describe()
        if stage_precision != default_precision:  # said once for the run; a stage only where its own differs
            _say(f"   precision: {stage_precision}")
        outcome = run_stage(spec, index, parent, parent_hash, manifest, run_dir, recipe)
        summary.stage_actions[spec.name] = outcome.action
        _say(f"== {spec.name}: {outcome.action} in {time.time() - started:.0f}s -> {outcome.model_dir}")
        if manifest.stages[spec.name].merge:
            _say(f"   merge: {describe_merge(manifest.stages[spec.name].merge)}")
        summary.train_seconds[spec.name] = time.time() - started
        if spec.eval:
            evaluate(spec.name, outcome.model_dir, RunLayout(run_dir).results(spec.name))
        parent, parent_hash = outcome.model_dir, outcome.config_hash

    _finish(summary, recipe, manifest)
    return summary


def _last_stage_index(recipe: Recipe, until: str | None) -> int:
    names = [spec.name for spec in recipe.stages]
    if until is None:
        return len(names) - 1
    if until not in names:
        raise UserError(f"--until {until}: no such stage in the recipe (stages: {', '.join(names)})")
    return names.index(until)


def _open_manifest(run_dir: Path, recipe: Recipe, recipe_text: str, base: str, base_hash: str) -> Manifest:
    manifest = Manifest.load(run_dir) or Manifest(run_name=recipe.run.name)
    manifest.base_model, manifest.base_hash = base, base_hash
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(RunLayout(run_dir).recipe_text, recipe_text)
        atomic_write_json(RunLayout(run_dir).recipe, recipe.model_dump(mode="json"))  # overrides applied
        manifest.save(run_dir)
    wait_for_everyone()
    return manifest


def _evaluator(recipe: Recipe, summary: RunSummary):
    """A function that evaluates one checkpoint (cached) and adds its row to the matrix."""
    if recipe.eval is None:
        return lambda *args: None
    score = CheckpointEvaluator(recipe.eval, recipe.model, summary.run_dir)
    summary.chance = score.chance_levels()

    def evaluate(label: str, model_dir: Path, results_dir: Path) -> None:
        check_stop(f"evaluating {label}")
        started = time.time()
        scores = score(model_dir, results_dir)
        summary.matrix.append((label, scores))
        summary.eval_seconds[label] = time.time() - started
        _say("   " + score_line(label, scores))

    return evaluate


def _finish(summary: RunSummary, recipe: Recipe, manifest: Manifest) -> None:
    lines = ["", f"run {recipe.run.name}: {summary.run_dir}"]
    for name, action in summary.stage_actions.items():
        rec = manifest.stages[name]
        loss = rec.metrics.get("train_loss")
        loss_text = f"  train_loss {loss:.4f}" if isinstance(loss, float) else ""
        merge_text = f"  merge alpha {rec.merge['alpha']:g}" if rec.merge else ""
        lines.append(f"  {name:<16} {rec.kind:<5} {action:<8} steps {rec.global_step}{loss_text}{merge_text}")
    if summary.matrix:
        tasks = [t.name for t in recipe.eval.tasks]
        lines += write_matrix(summary.run_dir, recipe, summary.matrix, tasks, summary.chance)
    if is_main_process():
        timings = {"train_seconds": summary.train_seconds, "eval_seconds": summary.eval_seconds}
        atomic_write_json(RunLayout(summary.run_dir).timings, timings)
        if summary.matrix:
            lines += ["", f"report: {write_run_report(summary.run_dir)}"]
    summary.lines = lines


def _say(text: str) -> None:
    """Progress, on the main process only (the others would repeat it): `cpt run` shows it on stderr."""
    if is_main_process():
        logger.info(text)

