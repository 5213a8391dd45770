"""Run lm-eval on one checkpoint for a list of tasks, caching each task's result with the checkpoint.

    catalog = TaskCatalog([toy_root / "tasks"])
    results = evaluate_checkpoint(Path("runs/x/stages/sft/model"), ["date_format", "sorting"], catalog,
                                  EvalSettings(batch_size=64, limit=100), results_dir=Path("runs/x/stages/sft/eval"))
    results["date_format"].score     # 0.93

Each task's result is `results_dir/<task>.json` in lm-eval's own results format (results, configs,
versions, n-shot, higher_is_better, n-samples, config, ...) plus a `cpt_cache` entry holding the key it
was computed under: the checkpoint's content digest, the task's fingerprint (config, data, lm-eval
version) and the settings. Tasks whose stored key matches are read back without loading the model;
the rest run in one lm-eval call, the model loaded once. Per-sample outputs go to `<task>.samples.jsonl`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from eval.backends import make_lm
from eval.checkpoint import check_checkpoint
from eval.digest import folder_digest
from eval.files import atomic_write_json, atomic_write_text, read_json
from eval.scores import primary_score, split_by_task
from eval.tasks import TaskCatalog

DIGEST_MEMO = ".checkpoint_digest.json"


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate; every field but `device` and `trust_remote_code` is part of the cache key."""

    backend: str = "hf"  # "hf" (transformers) or "vllm" (lm-eval's vLLM model; needs the vllm extra)
    batch_size: int = 64
    limit: int | None = 100  # examples per task; None = all
    max_gen_toks: int | None = None  # overrides the tasks' own generation length
    num_fewshot: int | None = None
    apply_chat_template: bool = False
    dtype: str = "auto"  # hf: bfloat16 on a GPU, float32 on a CPU; vllm: the checkpoint's own (eval/vllm_args.py)
    tokenizer: str | None = None  # default: the checkpoint's own
    device: str = "auto"
    trust_remote_code: bool = False

    def cache_payload(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("device", "trust_remote_code")}


@dataclass
class TaskResult:
    task: str
    score: float | None  # the primary metric, a fraction
    metric: str  # the lm-eval results key it came from, e.g. "exact_match,strip"
    cached: bool  # read back, not computed now
    path: Path


def evaluate_checkpoint(
    checkpoint: Path,
    tasks: list[str],
    catalog: TaskCatalog,
    settings: EvalSettings,
    results_dir: Path,
    metrics: dict[str, str] | None = None,
    compute: bool = True,
) -> dict[str, TaskResult]:
    """Task -> result of `checkpoint` on each of `tasks`, computing only what is not cached in `results_dir`.

    `metrics` picks a task's primary metric by name (e.g. {"hellaswag": "acc_norm"}); the default is the
    first metric of the task's metric_list. With compute=False nothing is run and uncached tasks score
    None. Raises EvalInputError for a missing or half-written checkpoint or an unknown task.
    """
    check_checkpoint(checkpoint)
    catalog.check(tasks)
    digest = folder_digest(checkpoint, memo=results_dir / DIGEST_MEMO)
    keys = {t: _cache_key(digest, catalog.fingerprint(t), settings) for t in tasks}
    todo = [t for t in tasks if _stored_key(results_dir / f"{t}.json") != keys[t]]
    if todo and compute:
        _run_and_store(checkpoint, todo, catalog, settings, results_dir, keys, digest)
    results = {}
    for task in tasks:
        path = results_dir / f"{task}.json"
        if task in todo and not compute:
            results[task] = TaskResult(task, None, "", cached=False, path=path)
        else:
            results[task] = _read_result(path, task, (metrics or {}).get(task), cached=task not in todo)
    return results


def _run_and_store(checkpoint, todo, catalog, settings, results_dir, keys, digest) -> None:
    from lm_eval import simple_evaluate

    with _quiet_generation_warnings():
        lm = make_lm(checkpoint, settings)
        output = simple_evaluate(
            model=lm,
            tasks=todo,
            task_manager=catalog.manager(todo),
            limit=settings.limit,
            num_fewshot=settings.num_fewshot,
            gen_kwargs={"max_gen_toks": settings.max_gen_toks} if settings.max_gen_toks else None,
            apply_chat_template=settings.apply_chat_template,
            bootstrap_iters=1000,  # mean metrics get their closed-form stderr; this bounds the others' cost
            log_samples=True,
        )
    for task in todo:
        part, samples = split_by_task(output, task)
        part["cpt_cache"] = {
            "key": keys[task],
            "checkpoint": str(checkpoint),
            "checkpoint_digest": digest,
            "task_fingerprint": catalog.fingerprint(task),
            "settings": settings.cache_payload(),
        }
        lines = "".join(json.dumps(s, default=_jsonable) + "\n" for s in samples)
        atomic_write_text(results_dir / f"{task}.samples.jsonl", lines)
        atomic_write_json(results_dir / f"{task}.json", part, default=_jsonable)


def _read_result(path: Path, task: str, metric: str | None, cached: bool) -> TaskResult:
    stored = read_json(path)
    key, score = primary_score(stored, task, metric)
    return TaskResult(task=task, score=score, metric=key, cached=cached, path=path)


def _cache_key(checkpoint_digest: str, task_fingerprint: str, settings: EvalSettings) -> str:
    payload = [checkpoint_digest, task_fingerprint, settings.cache_payload()]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _stored_key(path: Path) -> str | None:
    try:
        return read_json(path).get("cpt_cache", {}).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def _jsonable(value):
    from lm_eval.utils import handle_non_serializable

    return handle_non_serializable(value)


class _quiet_generation_warnings:
    """lm-eval passes both max_length and max_new_tokens to generate, and transformers warns on every batch;
    lm-eval warns that an in-memory model ignores its model arguments (we pass none). Errors still show."""

    def __enter__(self):
        from transformers.utils import logging as transformers_logging

        self._levels = (transformers_logging.get_verbosity(), logging.getLogger("lm_eval").level)
        transformers_logging.set_verbosity_error()
        logging.getLogger("lm_eval").setLevel(logging.ERROR)

    def __exit__(self, *exc):
        from transformers.utils import logging as transformers_logging

        transformers_logging.set_verbosity(self._levels[0])
        logging.getLogger("lm_eval").setLevel(self._levels[1])
