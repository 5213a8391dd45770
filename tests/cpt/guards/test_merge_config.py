"""The `merge:` stage key: which eval tasks it guards, and the recipe refusing a merge it cannot score."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cpt.guards.merge_config import guarded_tasks
from cpt.recipe.schema import Recipe

STAGES = [{"name": "a", "kind": "sft", "data": {"toy": "date_format"}},
          {"name": "b", "kind": "dpo", "data": {"toy": "sorting"}},
          {"name": "c", "kind": "sft", "data": {"toy": "addition"}}]


def _recipe(tasks, merge_stage: int = 2, merge=None, **eval_settings) -> Recipe:
    stages = [dict(s) for s in STAGES]
    stages[merge_stage]["merge"] = merge or {"budget": 2}
    return Recipe.model_validate({"run": {"name": "t"}, "stages": stages, "eval": {"tasks": tasks, **eval_settings}})


def test_earlier_tasks_are_those_trained_before_the_stage_and_general_ones_are_always_guarded():
    tasks = ["date_format", "sorting", "addition", "counting", {"name": "capitals", "general": True},
             {"name": "mine", "path": "x.jsonl", "trained_in": "a"}]
    recipe = _recipe(tasks, merge={"budget": 2, "held_out": {"mine": "h.jsonl"}})
    earlier, general = guarded_tasks(recipe, 2)
    assert [t.name for t in earlier] == ["date_format", "sorting", "mine"]  # not addition (this stage), counting
    assert [t.name for t in general] == ["capitals"]
    assert [t.name for t in guarded_tasks(recipe, 0)[0]] == []


def test_a_merge_spec_has_defaults_for_all_but_the_budget():
    merge = _recipe(["date_format"]).stages[2].merge
    assert (merge.budget, merge.rows, merge.steps, merge.held_out) == (2.0, 32, 3, {})
    with pytest.raises(ValidationError, match="budget"):
        _recipe(["date_format"], merge={"rows": 8})


@pytest.mark.parametrize("task", [{"name": "mine", "path": "x.jsonl", "trained_in": "a"},
                                  {"name": "hellaswag", "general": True}])
def test_a_guarded_task_without_held_out_rows_is_refused(task):
    with pytest.raises(ValidationError, match=rf"stages\[2\] \(c\).merge: eval task '{task['name']}' .*no held-out rows"):
        _recipe([task])
    _recipe([task], merge={"budget": 2, "held_out": {task["name"]: "held.jsonl"}})  # with a file it is fine


def test_a_task_trained_later_or_unguarded_needs_no_held_out_rows():
    _recipe([{"name": "mine", "path": "x.jsonl", "trained_in": "c"}], merge_stage=1)
    _recipe([{"name": "mine", "path": "x.jsonl"}])  # trained nowhere the recipe knows: not guarded


def test_world_tasks_need_rows_left_after_the_evaluated_ones():
    _recipe([{"name": "world_capitals", "general": True}], max_examples=100)
    with pytest.raises(ValidationError, match="'world_capitals' .*eval.max_examples: null"):
        _recipe([{"name": "world_capitals", "general": True}], max_examples=None)
