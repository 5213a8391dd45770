"""Score one in-memory model on a fixed set of lm-eval tasks, again and again, while its weights change.

    scorer = RepeatedScorer(model, tokenizer, Path("held_out_tasks"), ["date_format", "capitals"], settings)
    scorer()                        # {"date_format": 0.75, "capitals": 0.5}: each task's primary metric
    change_weights_in_place(model)
    scorer()                        # the same tasks, scored on the new weights

The scoring is lm-eval's, as in eval/harness.py (same task YAMLs, filters, metrics and settings), but the
tasks are built once and the model is wrapped once: building them costs more than scoring 32 rows on a
small model (measured on the toy: 1.9 s per `simple_evaluate` call, 0.4 s per `evaluate` call on the
built tasks). Nothing is cached to disk. Used by the merge guard's alpha search (cpt/runner/merge_step.py).
"""

from __future__ import annotations

from pathlib import Path

from eval.harness import EvalSettings, _quiet_generation_warnings
from eval.scores import primary_score


class RepeatedScorer:
    """lm-eval's score of `model` on `tasks` (YAMLs under `include_path`), each call on its current weights;
    `metrics` picks a task's metric by name (default: the first the task declares), as in eval/harness.py."""

    def __init__(self, model, tokenizer, include_path: Path, tasks: list[str], settings: EvalSettings,
                 metrics: dict[str, str] | None = None):
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager

        self.tasks, self.settings, self.metrics = list(tasks), settings, metrics or {}
        with _quiet_generation_warnings():
            self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size)
        manager = TaskManager(include_path=str(include_path), include_defaults=False)
        self.loaded = manager.load(self.tasks)
        for task in self.loaded["tasks"].values():
            _apply_settings(task, settings)

    def __call__(self) -> dict[str, float | None]:
        from lm_eval.evaluator import evaluate

        with _quiet_generation_warnings():
            output = evaluate(
                lm=self.lm,
                task_dict=self.loaded,
                bootstrap_iters=0,  # no stderr: only the mean is used
                log_samples=False,
                apply_chat_template=self.settings.apply_chat_template,
                fewshot_as_multiturn=True,  # simple_evaluate's default, which eval/harness.py keeps
            )
        return {task: primary_score(output, task, self.metrics.get(task))[1] for task in self.tasks}


def _apply_settings(task, settings: EvalSettings) -> None:
    """What lm-eval's simple_evaluate does to each task for these settings (generation length, shots)."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED

    if settings.max_gen_toks and task.get_config("output_type") == "generate_until":
        task.set_config(key="generation_kwargs", value={"max_gen_toks": settings.max_gen_toks}, update=True)
    if settings.num_fewshot is not None and task.get_config("num_fewshot") != 0:
        task.set_config(key="num_fewshot", value=settings.num_fewshot)
    elif task.get_config("num_fewshot") is None:
        task.set_config(key="num_fewshot", value=0)
    task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)  # simple_evaluate's default fewshot_random_seed
