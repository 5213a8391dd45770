"""The merge guard as a runner step: after a stage with `merge:` trains, replace its output model by
start + alpha * (trained - start), alpha the largest within the recipe's forgetting budget.

    record = merge_stage_output(recipe, index, start=parent_dir, stage_dir=RunLayout(run_dir).stage(name).dir)
    # -> the manifest's merge record: alpha, budget, groups, every alpha tried with its held-out scores

cpt/runner/lineage.py calls it between the stage's training and `mark_done`, for a stage of any kind.
The held-out tasks are written to STAGE/merge/tasks (held_out.py); the model is loaded once (as the eval
loads it: eval/checkpoint.py), its weights set to each alpha in place (cpt/guards/merge.py) and scored by
lm-eval on the held-out rows with the recipe's eval settings (eval/in_memory.py); the alpha comes from
cpt/guards/merge_search.py. Alpha 1 leaves the folder untouched; any other alpha writes the merged folder
(every file of the trained one, weights interpolated) atomically over it. Only the main process works;
the others wait. An interrupted merge reruns from the stage's last checkpoint, which gives the same result.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from cpt.core.atomic import commit_folder
from cpt.core.distributed import is_main_process, wait_for_everyone
from cpt.core.layout import StageLayout
from cpt.errors import UserError
from cpt.guards.merge import Interpolation, write_merged
from cpt.guards.merge_search import MergeChoice, choose_alpha, describe
from cpt.runner.held_out import write_held_out_tasks
from eval.backends import resolve_device
from eval.checkpoint import load_for_eval
from eval.harness import EvalSettings
from eval.in_memory import RepeatedScorer

logger = logging.getLogger(__name__)

MERGE_DIR = "merge"


def merge_stage_output(recipe, index: int, start: Path, stage_dir: Path) -> dict:
    """Merge stage `index`'s output (STAGE/model) towards `start`; return the record (empty on other ranks)."""
    record: dict = {}
    if is_main_process():
        started = time.time()
        record = _merge(recipe, index, Path(start), stage_dir)
        record["seconds"] = round(time.time() - started, 1)
        logger.info("stage %s: merge %s", recipe.stages[index].name, describe(record))
    wait_for_everyone()
    return record


def _merge(recipe, index: int, start: Path, stage_dir: Path) -> dict:
    spec = recipe.stages[index].merge
    output = StageLayout(stage_dir).model
    tasks = write_held_out_tasks(recipe, index, stage_dir / MERGE_DIR / "tasks")
    if not tasks.names:
        choice = choose_alpha(lambda alpha: {}, {}, spec.budget, spec.steps)
    else:
        choice = _search(recipe, index, start, output, tasks)
    if choice.alpha < 1.0:  # written file by file, after the search's copies of the model are freed
        tmp = stage_dir / ".model.merged.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        write_merged(start, output, choice.alpha, tmp)
        commit_folder(tmp, output)
    return {**choice.to_record(), "rows": tasks.rows, "held_out": tasks.sources}


def _search(recipe, index: int, start: Path, output: Path, tasks) -> MergeChoice:
    """Score the held-out tasks at the alphas the search asks for; return its choice."""
    spec = recipe.stages[index].merge
    model, scorer = held_out_scorer(recipe, output, tasks)
    try:
        weights = Interpolation(start, output)
    except ValueError as exc:
        raise UserError(f"stage {recipe.stages[index].name}: merge: {exc}") from None

    def score_at(alpha: float) -> dict[str, float]:
        weights.apply(model, alpha)
        scores = scorer()
        missing = [task for task, score in scores.items() if score is None]
        if missing:
            raise RuntimeError(f"merge: lm-eval gave no score for held-out task(s) {', '.join(missing)}")
        return {task: 100.0 * score for task, score in scores.items()}

    return choose_alpha(score_at, tasks.groups, spec.budget, spec.steps)


def held_out_scorer(recipe, model_dir: Path, tasks):
    """The model of `model_dir` loaded as the eval loads it, and a scorer of it on the held-out `tasks`
    (write_held_out_tasks): `scorer()` gives each task's score (0-1) for the weights the model holds now."""
    spec = recipe.eval
    settings = EvalSettings(batch_size=spec.batch_size, max_gen_toks=spec.max_new_tokens,
                            num_fewshot=spec.num_fewshot, apply_chat_template=spec.apply_chat_template,
                            dtype=spec.dtype, tokenizer=recipe.model.tokenizer,
                            trust_remote_code=recipe.model.trust_remote_code)
    model, tokenizer = load_for_eval(model_dir, settings.tokenizer, settings.trust_remote_code,
                                     resolve_device("auto"), settings.dtype)
    return model, RepeatedScorer(model, tokenizer, tasks.folder, tasks.names, settings, tasks.metrics)
