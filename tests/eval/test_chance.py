"""Chance levels: the share of a task's most frequent answer, read from the task's own test rows."""

from __future__ import annotations

import json

import pytest

from eval.chance import majority_share, task_chance
from eval.task_files import write_prompt_answer_task
from eval.tasks import TaskCatalog

# 7 of 10 rows answer "even": always answering "even" scores 70%.
PARITY_ROWS = [{"prompt": f"{n} is", "answer": "even" if n % 10 < 7 else "odd"} for n in range(10)]


def test_majority_share():
    assert majority_share(["even", "odd", "even"]) == pytest.approx(2 / 3)
    assert majority_share(["a", "b", "c", "d"]) == pytest.approx(0.25)
    # A row accepting several answers counts for each once: "DC" is right on 2 of 3 rows.
    assert majority_share([["DC", "Washington"], ["DC", "dc"], ["Paris"]]) == pytest.approx(2 / 3)
    assert majority_share([3, 3, 1, 0]) == pytest.approx(0.5)  # choice labels
    assert majority_share([]) is None


def test_chance_of_a_task_file_is_its_most_frequent_answer(tmp_path):
    write_prompt_answer_task("parity", PARITY_ROWS, tmp_path / "parity")
    catalog = TaskCatalog([tmp_path])
    assert catalog.chance("parity") == pytest.approx(0.7)
    # lm-eval's `limit` scores the first rows: over the first 4 (all "even") a constant answer gets 100%.
    assert catalog.chance("parity", limit=4) == pytest.approx(1.0)


def test_chance_from_a_json_lines_test_file(tmp_path):
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in PARITY_ROWS[3:]))  # 4 even, 3 odd
    config = {"dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test", "doc_to_target": "answer"}
    assert task_chance(config) == pytest.approx(4 / 7)


@pytest.mark.parametrize(
    "change",
    [
        {"doc_to_target": "{{answer.upper()}}"},  # a computed target: not a column
        {"doc_to_target": "missing_column"},
        {"dataset_kwargs": {"data_files": {"test": "/no/such/file.parquet"}}},
        {"dataset_kwargs": None, "dataset_path": "hellaswag"},  # rows on the hub
        {"process_docs": "!function utils.process"},  # lm-eval scores other rows than the file's
    ],
)
def test_unknown_where_the_rows_or_target_are_not_local(tmp_path, change):
    yaml_path = write_prompt_answer_task("parity", PARITY_ROWS, tmp_path / "parity")
    config = {
        "dataset_kwargs": {"data_files": {"test": str(yaml_path.parent / "test.parquet")}},
        "test_split": "test",
        "doc_to_target": "{{answer}}",
    }
    assert task_chance(config) == pytest.approx(0.7)  # the unchanged config is readable
    assert task_chance({**config, **change}) is None
