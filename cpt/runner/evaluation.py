"""Evaluate a run's checkpoints on the recipe's tasks with lm-eval (eval/harness.py), cached per checkpoint.

Each checkpoint's results live beside it, one lm-eval results file per task:
RUN_DIR/base/eval/<task>.json and RUN_DIR/stages/<stage>/eval/<task>.json. `cpt run` evaluates after
each stage; `cpt eval RUN_DIR` (eval_run.py) does the same as a job of its own. Only the main process
evaluates; the others wait.
"""

from __future__ import annotations

from pathlib import Path

from cpt.core.distributed import is_main_process, wait_for_everyone
from cpt.core.layout import RunLayout
from cpt.core.recipe_base import DataSource
from cpt.data.rows import EVAL_SHAPES, load_rows
from cpt.errors import UserError, as_user_error
from cpt.recipe.schema import EvalSpec, ModelSpec
from cpt.toy import ensure_toy
from eval.backends import require_vllm
from eval.general_tasks import GENERAL_TASKS, ensure_general_tasks
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.task_files import write_prompt_answer_task
from eval.tasks import TaskCatalog
from eval.vllm_args import check_vllm_servable


def task_catalog(spec: EvalSpec, run_dir: Path) -> TaskCatalog:
    """The lm-eval tasks `spec` can name: embedded ones, generated ones, the user's include_path."""
    paths = [Path(p) for p in spec.include_path]
    if any(t.toy for t in spec.tasks):
        paths.insert(0, ensure_toy() / "tasks")
    if any(t.path for t in spec.tasks):
        paths.insert(0, RunLayout(run_dir).eval_tasks)
    if _names_general_task(spec):
        paths.append(as_user_error(ensure_general_tasks))
    return TaskCatalog(paths)


def check_eval_spec(spec: EvalSpec, checkpoints: list[Path] = ()) -> None:
    """Preflight: the backend can serve the `checkpoints` known so far and is installed, and lm-eval knows
    every task not made from a local file."""
    if spec.backend == "vllm":
        for folder in checkpoints:  # an OSF adapter is refused whether or not vLLM is installed here
            as_user_error(check_vllm_servable, Path(folder))
        as_user_error(require_vllm)
    for folder in spec.include_path:
        if not Path(folder).is_dir():
            raise UserError(f"eval.include_path: folder {folder} not found")
    names = [t.lm_eval_task for t in spec.tasks if not t.path]
    if names:
        catalog = TaskCatalog([Path(p) for p in spec.include_path])
        if any(t.toy for t in spec.tasks):
            catalog = TaskCatalog([ensure_toy() / "tasks", *catalog.include_paths])
        if _names_general_task(spec):
            catalog = TaskCatalog([*catalog.include_paths, as_user_error(ensure_general_tasks)])
        as_user_error(catalog.check, names)


class CheckpointEvaluator:
    """Scores checkpoints of one run on one EvalSpec: `evaluator(model_dir, results_dir) -> {task: score}`."""

    def __init__(self, spec: EvalSpec, model: ModelSpec, run_dir: Path):
        self.spec = spec
        self.catalog = task_catalog(spec, run_dir)
        self.settings = EvalSettings(
            backend=spec.backend,
            batch_size=spec.batch_size,
            limit=spec.max_examples,
            max_gen_toks=spec.max_new_tokens,
            num_fewshot=spec.num_fewshot,
            apply_chat_template=spec.apply_chat_template,
            dtype=spec.dtype,
            tokenizer=model.tokenizer,
            trust_remote_code=model.trust_remote_code,
        )
        if is_main_process():
            _write_path_tasks(spec, RunLayout(run_dir).eval_tasks)
        wait_for_everyone()

    def __call__(self, model_dir: Path, results_dir: Path, compute: bool = True) -> dict[str, float | None]:
        """Column name -> score of `model_dir` (None where not evaluated); empty on non-main processes.

        With compute=False nothing runs: only results already cached for this exact checkpoint count.
        """
        scores: dict[str, float | None] = {}
        if is_main_process():
            scores = as_user_error(self._scores, model_dir, results_dir, compute)
        wait_for_everyone()
        return scores

    def chance_levels(self) -> dict[str, float | None]:
        """Column name -> chance level: the recipe's `chance:`, else the share of the most frequent answer in
        the rows lm-eval scores (eval/chance.py), else None (unknown). Empty on non-main processes."""
        if not is_main_process():
            return {}
        return {
            t.name: t.chance if t.chance is not None else self.catalog.chance(t.lm_eval_task, self.settings.limit)
            for t in self.spec.tasks
        }

    def _scores(self, model_dir: Path, results_dir: Path, compute: bool) -> dict[str, float | None]:
        column = {t.lm_eval_task: t.name for t in self.spec.tasks}
        metrics = {t.lm_eval_task: t.metric for t in self.spec.tasks if t.metric}
        results = evaluate_checkpoint(
            model_dir, list(column), self.catalog, self.settings, results_dir, metrics, compute=compute
        )
        return {column[task]: result.score for task, result in results.items()}


def _write_path_tasks(spec: EvalSpec, out_dir: Path) -> None:
    for task in spec.tasks:
        if task.path:
            rows = load_rows(DataSource(path=task.path), EVAL_SHAPES).to_list()
            write_prompt_answer_task(task.name, rows, out_dir / task.name)


def _names_general_task(spec: EvalSpec) -> bool:
    """Whether a task is one of the general-knowledge tasks built from package data (eval/general_tasks.py)."""
    return any(t.lm_eval == name for t in spec.tasks for name in GENERAL_TASKS)


