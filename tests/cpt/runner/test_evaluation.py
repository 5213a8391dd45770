"""Chance levels of a recipe's eval tasks, as the runner records them: declared, else from the task's rows."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cpt.recipe.schema import EvalSpec, ModelSpec
from cpt.runner.evaluation import CheckpointEvaluator


def _rows(path, answers: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"prompt": f"q{i}", "answer": a}) + "\n" for i, a in enumerate(answers)))
    return str(path)


def test_chance_levels_declared_or_from_the_most_frequent_answer(tmp_path):
    parity = _rows(tmp_path / "tasks/parity/test.jsonl", ["even"] * 6 + ["odd"] * 4)
    choice = _rows(tmp_path / "tasks/choice/test.jsonl", ["A", "B", "C", "D", "A", "A", "B", "C"])
    spec = EvalSpec(tasks=[
        {"name": "parity", "path": parity},                 # computed: 6 of 10 answer "even"
        {"name": "choice", "path": choice, "chance": 0.25},  # declared (a uniform guess over 4): wins over 3/8
    ], max_examples=None)
    evaluator = CheckpointEvaluator(spec, ModelSpec(), tmp_path / "run")
    assert evaluator.chance_levels() == pytest.approx({"parity": 0.6, "choice": 0.25})
    # max_examples: lm-eval scores the first rows only, and so does the chance level (first 5: 5 "even").
    evaluator.settings = dataclasses.replace(evaluator.settings, limit=5)
    assert evaluator.chance_levels()["parity"] == pytest.approx(1.0)
