"""A task's chance level: the score of always giving the same answer, its most frequent one.

A task with few distinct answers (yes/no, even/odd, a choice of 4) scores well above 0 without learning
anything, so eval/metrics.py measures "learned" and "forgotten" above this level. It is the share of the
scored rows whose answer is the most frequent one: what a model earns by answering that one constant.

    majority_share(["even", "odd", "even"])              # 2/3
    majority_share([["DC", "Washington"], ["Paris"]])    # rows accepting several answers: 1/2
    task_chance(config, limit=100)   # an lm-eval task config whose test split is a local file -> share or None

`task_chance` knows the tasks whose rows are on disk and whose target is a column: the embedded toy tasks,
the tasks made from `path:` files (eval/task_files.py) and the general-knowledge tasks. For others (data
from the hub, a target computed by a function) it returns None; a recipe can declare the level instead.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

_COLUMN = re.compile(r"\s*(?:\{\{\s*)?([A-Za-z_][A-Za-z0-9_]*)(?:\s*\}\})?\s*")  # "answer" or "{{answer}}"


def majority_share(answers: list) -> float | None:
    """Share of rows the most frequent answer is right on; a row may accept a list of answers. None if no rows."""
    if not answers:
        return None
    counts = Counter()
    for answer in answers:
        accepted = answer if isinstance(answer, (list, tuple)) else [answer]
        counts.update({str(a).strip() for a in accepted})  # a row counts once per distinct accepted answer
    return max(counts.values(), default=0) / len(answers)


def task_chance(config: dict, limit: int | None = None) -> float | None:
    """The chance level of the lm-eval task `config` over its first `limit` test rows (lm-eval's `limit`
    scores the first rows), or None when its rows or target column cannot be read from a local file."""
    column = _target_column(config)
    data_file = _test_file(config)
    if column is None or data_file is None or config.get("process_docs"):  # processed docs are other rows
        return None
    answers = _read_column(data_file, column)
    if answers is None:
        return None
    return majority_share(answers[:limit] if limit else answers)


def _target_column(config: dict) -> str | None:
    target = config.get("doc_to_target")
    match = _COLUMN.fullmatch(target) if isinstance(target, str) else None
    return match.group(1) if match else None


def _test_file(config: dict) -> Path | None:
    """The local file of the task's test split (the one split lm-eval scores here), if there is one."""
    files = (config.get("dataset_kwargs") or {}).get("data_files")
    if isinstance(files, dict):
        files = files.get(config.get("test_split") or "test")
    if isinstance(files, list):
        files = files[0] if len(files) == 1 else None
    return Path(files) if isinstance(files, str) and Path(files).is_file() else None


def _read_column(path: Path, column: str) -> list | None:
    """The values of `column` in a Parquet or JSON Lines file, in row order; None for another format or
    a file without that column (a row lacking it is a row no constant answer gets right)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        return table.column(column).to_pylist() if column in table.column_names else None
    if path.suffix == ".jsonl":
        try:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except ValueError:  # not JSON Lines after all: no chance level rather than a failed summary
            return None
        values = [row.get(column) if isinstance(row, dict) else None for row in rows]
        return None if all(v is None for v in values) else [[] if v is None else v for v in values]
    return None
