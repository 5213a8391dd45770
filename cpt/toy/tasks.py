"""The toy task suite: names, record format, deterministic train/test splits, and answer checking.

`task_validation(task, seed)` gives held-out rows that are never test rows (the merge guard scores them,
cpt/runner/held_out.py); the build does not write them, so the toy's files are unchanged.

Every record is `{"prompt", "completion", "answer", "chosen", "rejected"}` with
completion == chosen == " " + answer (the space starts the completion: a prompt ending in a space
breaks TRL's prefix check) and rejected == " " + a plausible wrong answer.
See it built with `python -m cpt.toy DIR`.
"""

import random

from cpt.toy.facts import Country, make_countries
from cpt.toy.skills import SKILLS

GENERAL_TASKS: tuple[str, ...] = ("capitals",)
TOY_TASKS: tuple[str, ...] = (*SKILLS, *GENERAL_TASKS)
TRAIN_SIZE = 2000
TEST_SIZE = 100
VALIDATION_SIZE = 200
CAPITALS_TEST_SIZE = 40  # of NUM_COUNTRIES: the rest are the capitals task's train split


def make_record(prompt: str, answer: str, rejected: str) -> dict[str, str]:
    """Build one task record; the key order is fixed so that files are byte-identical across builds."""
    completion = " " + answer
    return {
        "prompt": prompt,
        "completion": completion,
        "answer": answer,
        "chosen": completion,
        "rejected": " " + rejected,
    }


def check_answer(task: str, prediction: str, answer: str) -> bool:
    """True when the first line of `prediction` equals `answer`, surrounding whitespace ignored.

    No task needs its own normalisation (answers are clean), so `task` is accepted for any name.
    """
    lines = prediction.strip().splitlines()
    return bool(lines) and lines[0].strip() == answer.strip()


def _skill_records(task: str, seed: int, count: int) -> list[dict]:
    """The first `count` distinct records of one random stream: any `count` gives the same leading records."""
    rng = random.Random(f"{seed}-task-{task}")
    records: dict[str, dict] = {}
    while len(records) < count:
        prompt, answer, rejected = SKILLS[task](rng)
        records.setdefault(prompt, make_record(prompt, answer, rejected))
    return list(records.values())


def _skill_splits(task: str, seed: int) -> tuple[list[dict], list[dict]]:
    ordered = _skill_records(task, seed, TEST_SIZE + TRAIN_SIZE)
    return ordered[TEST_SIZE:], ordered[:TEST_SIZE]


def _capital_record(rng: random.Random, country: Country, countries: tuple[Country, ...]) -> dict:
    wrong = rng.choice([c.capital for c in countries if c is not country])
    return make_record(f"capital of {country.name} =", country.capital, wrong)


def _capitals_splits(seed: int) -> tuple[list[dict], list[dict]]:
    # The split is over which facts are asked; all facts are stated in the general corpus.
    countries = make_countries(seed)
    rng = random.Random(f"{seed}-task-capitals")
    order = list(countries)
    rng.shuffle(order)
    records = [_capital_record(rng, country, countries) for country in order]
    return records[CAPITALS_TEST_SIZE:], records[:CAPITALS_TEST_SIZE]


def task_splits(task: str, seed: int) -> tuple[list[dict], list[dict]]:
    """Return (train, test) records of `task`; no prompt is in both."""
    if task == "capitals":
        return _capitals_splits(seed)
    if task in SKILLS:
        return _skill_splits(task, seed)
    raise ValueError(f"unknown toy task {task!r}; expected one of {', '.join(TOY_TASKS)}")


def task_validation(task: str, seed: int) -> list[dict]:
    """Held-out records of `task`: never in its test split, and for a skill not in its train split either.

    A skill's are the next VALIDATION_SIZE distinct records of the stream its splits come from, so
    the splits stay as they were. `capitals` has no facts to spare (every country is asked): its
    validation rows are its train split, the facts outside the test split, which no stage trains on as a
    task unless a recipe names `{toy: capitals}` as stage data (the general corpus states them all).
    """
    if task == "capitals":
        return _capitals_splits(seed)[0]
    if task in SKILLS:
        return _skill_records(task, seed, TEST_SIZE + TRAIN_SIZE + VALIDATION_SIZE)[TEST_SIZE + TRAIN_SIZE :]
    raise ValueError(f"unknown toy task {task!r}; expected one of {', '.join(TOY_TASKS)}")
