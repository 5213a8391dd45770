"""The merge guard's held-out rows: never evaluation rows, from the same task, written as lm-eval tasks."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from cpt.errors import UserError
from cpt.recipe.schema import Recipe
from cpt.runner.held_out import write_held_out_tasks


def _recipe(tmp_path, tasks: list, max_examples=20, held_out=None) -> Recipe:
    merge = {"budget": 2, "rows": 16, **({"held_out": held_out} if held_out else {})}
    return Recipe.model_validate({
        "run": {"name": "t", "output_dir": str(tmp_path)},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}},
                   {"name": "b", "kind": "sft", "data": {"toy": "sorting"}, "merge": merge}],
        "eval": {"tasks": tasks, "max_examples": max_examples},
    })


def _prompts(task_dir, name) -> list[str]:
    return pq.read_table(task_dir / name / "test.parquet").column("prompt").to_pylist()


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_toy_tasks_are_held_out_from_their_validation_split(toy_dir, tmp_path):
    recipe = _recipe(tmp_path, ["date_format", "sorting", {"name": "capitals", "general": True}])
    tasks = write_held_out_tasks(recipe, 1, tmp_path / "held")
    assert tasks.groups == {"earlier": ["date_format"], "general": ["capitals"]}  # sorting: this stage's own
    assert tasks.rows == {"date_format": 16, "capitals": 16}
    for name in ("date_format", "capitals"):
        held = set(_prompts(tmp_path / "held", name))
        test = {r["prompt"] for r in _jsonl(toy_dir / "tasks" / name / "test.jsonl")}
        assert len(held) == 16 and not held & test, name
        assert (tmp_path / "held" / name / f"{name}.yaml").is_file()
    train = {r["prompt"] for r in _jsonl(toy_dir / "tasks" / "date_format" / "train.jsonl")}
    assert not set(_prompts(tmp_path / "held", "date_format")) & train


def test_world_tasks_hold_out_the_rows_after_the_evaluated_ones(tmp_path):
    from eval.general_data import capital_rows, region_rows

    tasks = [{"name": "world_capitals", "general": True}, {"name": "world_regions", "general": True}]
    held = write_held_out_tasks(_recipe(tmp_path, tasks, max_examples=100), 1, tmp_path / "held")
    assert held.groups == {"earlier": [], "general": ["world_capitals", "world_regions"]}
    assert _prompts(tmp_path / "held", "world_capitals") == [r["prompt"] for r in capital_rows()[100:116]]
    assert _prompts(tmp_path / "held", "world_regions") == [r["prompt"] for r in region_rows()[100:116]]
    assert held.sources["world_capitals"] == "world_capitals rows 101-116 (after the evaluated ones)"
    assert "doc_to_choice" in (tmp_path / "held" / "world_regions" / "world_regions.yaml").read_text()


def test_world_task_with_every_row_evaluated_is_a_user_error(tmp_path):
    tasks = [{"name": "world_regions", "general": True}]
    with pytest.raises(UserError, match="stage b: merge: eval task 'world_regions' has .* rows and eval.max_examples"):
        write_held_out_tasks(_recipe(tmp_path, tasks, max_examples=5000), 1, tmp_path / "held")


def test_a_file_task_takes_its_held_out_file_which_must_not_hold_evaluation_rows(tmp_path):
    evaluated = tmp_path / "mine_test.jsonl"
    evaluated.write_text("".join(json.dumps({"prompt": f"q{i}", "answer": str(i)}) + "\n" for i in range(5)))
    held_file = tmp_path / "mine_held.jsonl"
    held_file.write_text("".join(json.dumps({"prompt": f"h{i}", "answer": str(i)}) + "\n" for i in range(20)))
    task = {"name": "mine", "path": str(evaluated), "trained_in": "a"}
    held = write_held_out_tasks(_recipe(tmp_path, [task], held_out={"mine": str(held_file)}), 1, tmp_path / "held")
    assert held.groups["earlier"] == ["mine"] and _prompts(tmp_path / "held", "mine") == [f"h{i}" for i in range(16)]

    held_file.write_text(held_file.read_text() + json.dumps({"prompt": "q3", "answer": "3"}) + "\n")
    recipe = _recipe(tmp_path, [task], held_out={"mine": str(held_file)})
    recipe.stages[1].merge.rows = 100
    with pytest.raises(UserError, match=r"held_out.mine .*1 of its prompts are evaluation rows .*'q3'"):
        write_held_out_tasks(recipe, 1, tmp_path / "held")
