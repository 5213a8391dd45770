"""`cpt eval RUN_DIR [--stage S ...] [--tasks T ...]`: evaluate a run's checkpoints as a job of its own.

    cpt eval runs/quickstart                            # the base and every finished stage, the recipe's tasks
    cpt eval runs/quickstart --stage sft_sorting        # one checkpoint, e.g. one job of a cluster array
    cpt eval runs/quickstart --tasks capitals hellaswag # a subset of the recipe's tasks, or other tasks

Results are cached per checkpoint (runner/evaluation.py), so a second call computes nothing. Then the
matrix and metrics of every evaluated checkpoint are rewritten under RUN_DIR/eval/.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from cpt.core.atomic import is_complete
from cpt.core.layout import RunLayout
from cpt.core.manifest import DONE, Manifest
from cpt.errors import UserError
from cpt.recipe.schema import EvalSpec, EvalTaskSpec, Recipe
from cpt.report import load_manifest
from cpt.runner.evaluation import CheckpointEvaluator, check_eval_spec
from cpt.runner.results import write_matrix
from eval.files import read_json
from eval.matrix import score_line
from eval.metrics import BASE_LABEL


def evaluate_run(run_dir: Path, stages: list[str] | None = None, tasks: list[str] | None = None) -> list[str]:
    """Evaluate the chosen checkpoints of the run in `run_dir`; return the lines to print."""
    manifest = load_manifest(run_dir)
    recipe = _resolved_recipe(run_dir)
    spec = _eval_spec(recipe, tasks)
    checkpoints = _checkpoints(run_dir, recipe, manifest, spec)
    chosen = _choose(checkpoints, stages, recipe)
    # After the quick checks of --stage (this one loads lm-eval's task index); every chosen checkpoint is
    # checked before the first is evaluated.
    check_eval_spec(spec, [d for _, d in chosen])
    evaluator = CheckpointEvaluator(spec, recipe.model, run_dir)
    lines = []
    for label, model_dir in chosen:
        scores = evaluator(model_dir, RunLayout(run_dir).results(label))
        lines.append(score_line(label, scores))
    matrix = [(label, evaluator(d, RunLayout(run_dir).results(label), compute=False)) for label, d in checkpoints]
    recipe = recipe.model_copy(update={"eval": spec})
    return lines + write_matrix(run_dir, recipe, matrix, [t.name for t in spec.tasks], evaluator.chance_levels())


def _resolved_recipe(run_dir: Path) -> Recipe:
    path = RunLayout(run_dir).recipe
    if not path.is_file():
        raise UserError(f"{path} not found: rerun `cpt run` on this recipe once to record it")
    rerun = "rerun `cpt run` on the recipe to rewrite it"
    try:
        return Recipe.model_validate(read_json(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "recipe"
        raise UserError(f"{path}: not a valid recipe ({where}: {first['msg']}); {rerun}") from None
    except ValueError as exc:  # not JSON, not UTF-8
        raise UserError(f"{path}: unreadable ({exc}); {rerun}") from None


def _eval_spec(recipe: Recipe, names: list[str] | None) -> EvalSpec:
    """The recipe's eval section, narrowed to `names` (which may also name tasks the recipe lacks)."""
    if recipe.eval is None and not names:
        raise UserError("the run's recipe has no eval: section; name the tasks with --tasks")
    known = {t.name: t for t in recipe.eval.tasks} if recipe.eval else {}
    if not names:
        return recipe.eval
    tasks = [known.get(name) or _task_spec(name) for name in dict.fromkeys(names)]
    base = recipe.eval or EvalSpec(tasks=tasks)
    return base.model_copy(update={"tasks": tasks})


def _task_spec(name: str) -> EvalTaskSpec:
    try:
        return EvalTaskSpec(name=name)
    except ValidationError as exc:
        raise UserError(f"--tasks {name}: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None


def _checkpoints(run_dir: Path, recipe: Recipe, manifest: Manifest, spec: EvalSpec) -> list[tuple[str, Path]]:
    """(label, model folder) of the base (if evaluated) and every finished stage, in lineage order."""
    found = [(BASE_LABEL, Path(manifest.base_model))] if spec.base else []
    for stage in recipe.stages:
        rec = manifest.stages.get(stage.name)
        if rec is None or rec.status != DONE:
            continue
        model_dir = run_dir / rec.output
        if not is_complete(model_dir):
            raise UserError(f"{model_dir} is missing or half-written: rerun `cpt run` to rebuild stage {stage.name}")
        found.append((stage.name, model_dir))
    return found


def _choose(checkpoints: list[tuple[str, Path]], stages: list[str] | None, recipe: Recipe) -> list[tuple[str, Path]]:
    if not stages:
        return checkpoints
    finished = dict(checkpoints)
    names = [BASE_LABEL] + [s.name for s in recipe.stages]
    for name in stages:
        if name not in names:
            raise UserError(f"--stage {name}: no such stage (stages: {', '.join(names[1:])})")
        if name not in finished:
            raise UserError(f"--stage {name}: the stage has no finished checkpoint yet; run `cpt run` first")
    return [(label, d) for label, d in checkpoints if label in stages]
