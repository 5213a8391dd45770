"""Toy task files: record format, disjoint splits, answer checking, capitals facts in the general corpus."""

import json
from pathlib import Path

import pytest

from cpt.toy import GENERAL_TASKS, TOY_DOMAINS, TOY_TASKS, check_answer
from cpt.toy.facts import NUM_COUNTRIES
from cpt.toy.tasks import CAPITALS_TEST_SIZE

FIELDS = {"prompt", "completion", "answer", "chosen", "rejected"}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_public_names():
    assert len(TOY_TASKS) >= 6 and len(set(TOY_TASKS)) == len(TOY_TASKS)
    assert "general" in TOY_DOMAINS and len(TOY_DOMAINS) >= 3
    assert GENERAL_TASKS and set(GENERAL_TASKS) <= set(TOY_TASKS)


@pytest.mark.parametrize("task", TOY_TASKS)
def test_records_are_well_formed_and_splits_disjoint(toy_dir, task):
    train = _rows(toy_dir / "tasks" / task / "train.jsonl")
    test = _rows(toy_dir / "tasks" / task / "test.jsonl")
    if task == "capitals":  # every country's capital is asked, CAPITALS_TEST_SIZE of them in the test split
        assert len(test) == CAPITALS_TEST_SIZE and len(train) == NUM_COUNTRIES - CAPITALS_TEST_SIZE > 0
    else:
        assert len(test) == 100 and len(train) >= 100
    for row in train + test:
        assert set(row) == FIELDS
        assert row["completion"] == row["chosen"] == " " + row["answer"]
        assert row["rejected"].startswith(" ") and row["rejected"] != row["chosen"]
        assert row["prompt"] == row["prompt"].strip() and "\n" not in row["prompt"] + row["completion"]
        assert check_answer(task, row["completion"], row["answer"])
        assert not check_answer(task, row["rejected"], row["answer"])
    train_prompts = {row["prompt"] for row in train}
    assert len(train_prompts) == len(train)
    assert not train_prompts & {row["prompt"] for row in test}


def test_check_answer_strips_and_takes_first_line():
    assert check_answer("addition", " 82\nadd 1+1 = 2", "82")
    assert check_answer("addition", "82 ", " 82")
    assert not check_answer("addition", " 8 2", "82")
    assert not check_answer("addition", "", "82")


def test_every_capital_is_stated_in_the_general_corpus(toy_dir):
    corpus = "\n".join(row["text"] for row in _rows(toy_dir / "domains" / "general" / "train.jsonl"))
    for split in ("train", "test"):
        for row in _rows(toy_dir / "tasks" / "capitals" / f"{split}.jsonl"):
            assert f"{row['prompt']} {row['answer']}\n" in corpus + "\n"  # the atlas form, as the task asks
            assert corpus.count(row["answer"]) >= 12  # and in prose, several times


def test_skill_prompts_are_not_in_the_general_corpus(toy_dir):
    corpus = (toy_dir / "domains" / "general" / "train.jsonl").read_text()
    for task in set(TOY_TASKS) - set(GENERAL_TASKS):
        assert _rows(toy_dir / "tasks" / task / "test.jsonl")[0]["prompt"] not in corpus


@pytest.mark.parametrize("task", TOY_TASKS)
def test_validation_rows_are_in_neither_split_and_leave_the_splits_as_built(toy_dir, task):
    from cpt.toy.tasks import VALIDATION_SIZE, task_splits, task_validation

    train, test = task_splits(task, 0)
    assert train == _rows(toy_dir / "tasks" / task / "train.jsonl")  # the build's files are unchanged
    assert test == _rows(toy_dir / "tasks" / task / "test.jsonl")
    validation = task_validation(task, 0)
    assert validation == task_validation(task, 0) and all(set(row) == FIELDS for row in validation)
    prompts = {row["prompt"] for row in validation}
    assert not prompts & {row["prompt"] for row in test}
    if task == "capitals":  # no facts to spare: the ones outside the test split
        assert validation == train
    else:
        assert len(prompts) == len(validation) == VALIDATION_SIZE
        assert not prompts & {row["prompt"] for row in train}
