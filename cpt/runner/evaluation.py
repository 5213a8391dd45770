"""Evaluate a checkpoint on the recipe's tasks after a stage, cached next to the checkpoint.

The cache key covers the eval settings, the task list and the checkpoint's identity (its stage
config hash), so a rerun of a finished run does no forward passes.
"""

from __future__ import annotations

from pathlib import Path

from cpt.data.rows import EVAL_SHAPES, load_rows
from cpt.recipe.schema import EvalSpec
from cpt.runner.atomic import atomic_write_json, read_json
from cpt.runner.distributed import is_main_process, wait_for_everyone
from cpt.runner.manifest import config_hash, file_digest
from cpt.runner.preflight import eval_source

EVAL_FILE = "eval.json"


def load_eval_rows(spec: EvalSpec) -> dict[str, list[dict]]:
    """Task name -> its first `max_examples` test rows ({prompt, answer})."""
    tasks = {}
    for task in spec.tasks:
        dataset = load_rows(eval_source(task), EVAL_SHAPES)
        tasks[task.name] = dataset.select(range(min(spec.max_examples, len(dataset)))).to_list()
    return tasks


def evaluate_cached(
    model_dir: Path, out_dir: Path, model_hash: str, spec: EvalSpec, rows, trust_remote_code, tokenizer=None
) -> dict:
    """Scores of `model_dir` on every task; computed on the main process once, then read back."""
    key = config_hash(_scoring_payload(spec), model_hash)
    path = out_dir / EVAL_FILE
    if is_main_process() and not _cached(path, key):
        from eval.generation import evaluate_checkpoint

        scores = evaluate_checkpoint(
            model_dir, rows, spec.batch_size, spec.max_new_tokens, trust_remote_code, tokenizer_dir=tokenizer
        )
        atomic_write_json(path, {"key": key, "model": str(model_dir), "scores": scores})
    wait_for_everyone()
    return read_json(path)["scores"]


def _scoring_payload(spec: EvalSpec) -> dict:
    """What the scores depend on: tasks, their files' content, generation settings. Labels such as
    `general` or `trained_in` only feed the metrics, so changing them reuses the cached scores."""
    payload = spec.model_dump(mode="json", exclude={"base": True, "tasks": {"__all__": {"general", "trained_in"}}})
    payload["task_files"] = [file_digest(t.path) for t in spec.tasks if t.path]
    return payload


def _cached(path: Path, key: str) -> bool:
    try:
        return read_json(path).get("key") == key
    except (OSError, ValueError):
        return False
