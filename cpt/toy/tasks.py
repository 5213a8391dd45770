"""The toy task suite: names, record format, deterministic train/test splits, and answer checking.

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


def _skill_splits(task: str, seed: int) -> tuple[list[dict], list[dict]]:
    rng = random.Random(f"{seed}-task-{task}")
    records: dict[str, dict] = {}
    while len(records) < TEST_SIZE + TRAIN_SIZE:
        prompt, answer, rejected = SKILLS[task](rng)
        records.setdefault(prompt, make_record(prompt, answer, rejected))
    ordered = list(records.values())
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
