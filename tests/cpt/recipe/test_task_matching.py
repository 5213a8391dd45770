"""Which stage trains each eval task when the recipe has no `trained_in:`, and what the summary says otherwise."""

from __future__ import annotations

from pathlib import Path

import yaml

from cpt.recipe.schema import Recipe
from cpt.recipe.task_matching import match_tasks, unmatched_lines

REPO = Path(__file__).resolve().parents[3]
USER_TASKS = ["maxof", "sortnums", "dedup", "palin"]


def _recipe(stages: list[tuple[str, str]], tasks: list) -> Recipe:
    """stages: (name, data path) of sft stages; tasks: eval entries."""
    return Recipe.model_validate({
        "run": {"name": "r"},
        "stages": [{"name": n, "kind": "sft", "data": {"path": p}} for n, p in stages],
        "eval": {"tasks": tasks},
    })


def _user_layout(stage_names: list[str]) -> Recipe:
    """A new user's four tasks: tasks/<name>/train.jsonl per stage, tasks/<name>/test.jsonl in eval."""
    return _recipe(
        [(s, f"tasks/{t}/train.jsonl") for s, t in zip(stage_names, USER_TASKS)],
        [{"name": t, "path": f"tasks/{t}/test.jsonl"} for t in USER_TASKS],
    )


def test_user_layout_matches_each_task_to_the_stage_beside_it():
    recipe = _user_layout(["first", "second", "third", "fourth"])  # stage names say nothing
    matching = recipe.task_matching()
    assert matching.task_stage == dict(zip(USER_TASKS, ["first", "second", "third", "fourth"]))
    assert matching.unmatched == {}
    assert unmatched_lines(matching, recipe.stages, recipe.eval.tasks) == []


def test_flat_layout_matches_by_file_stem_then_by_stage_name():
    recipe = _recipe(
        [("s1", "data/maxof.jsonl"), ("sft_sortnums", "data/sortnums_train.jsonl")],
        [{"name": "maxof", "path": "data/maxof_test.jsonl"}, {"name": "sortnums", "path": "data/sortnums_test.jsonl"}],
    )
    # maxof: file data/maxof.jsonl is named like it; sortnums: no file is, the stage name contains it. Both
    # data files sit in data/ beside both tests: the folder alone would be ambiguous, but names decide first.
    assert recipe.task_stages() == {"maxof": "s1", "sortnums": "sft_sortnums"}


def test_same_folder_when_nothing_is_named_like_the_task():
    recipe = _recipe([("a", "mine/train.jsonl"), ("b", "other/train.jsonl")], [{"name": "q", "path": "mine/dev.jsonl"}])
    assert recipe.task_stages() == {"q": "a"}


def test_stages_on_the_same_file_count_once_as_the_first():
    recipe = _recipe(
        [("sft_maxof", "tasks/maxof/train.jsonl"), ("grpo_maxof", "tasks/maxof/train.jsonl")],
        [{"name": "maxof", "path": "tasks/maxof/test.jsonl"}],
    )
    assert recipe.task_stages() == {"maxof": "sft_maxof"}


def test_ambiguous_match_is_unmatched_and_the_summary_names_the_candidates():
    recipe = _recipe(
        [("sft_maxof", "tasks/maxof/train.jsonl"), ("sft_maxof_more", "tasks/maxof/extra.jsonl")],
        [{"name": "maxof", "path": "tasks/maxof/test.jsonl"}],
    )
    matching = recipe.task_matching()
    assert matching.task_stage == {}
    assert matching.unmatched == {"maxof": ["sft_maxof", "sft_maxof_more"]}
    text = "\n".join(unmatched_lines(matching, recipe.stages, recipe.eval.tasks))
    assert "not matched to the stage that trains them" in text and "BWT" in text
    assert "maxof: stages sft_maxof, sft_maxof_more match it equally well" in text
    assert "- {name: maxof, path: tasks/maxof/test.jsonl, trained_in: sft_maxof}" in text


def test_unmatched_task_gets_the_stage_no_task_claimed():
    recipe = _recipe(
        [("s1", "d1/maxof.jsonl"), ("s2", "d2/rows.jsonl")],
        [{"name": "maxof", "path": "t/maxof.jsonl"}, {"name": "held", "path": "t/held.jsonl"}],
    )
    matching = recipe.task_matching()
    assert matching.task_stage == {"maxof": "s1"} and matching.unmatched == {"held": []}
    text = "\n".join(unmatched_lines(matching, recipe.stages, recipe.eval.tasks))
    assert "held: no stage's data file is named or placed like it" in text
    assert "- {name: held, path: t/held.jsonl, trained_in: s2}" in text  # s2 is the one stage left
    # With no stage left to offer, the line says <stage> and lists the stages.
    recipe = _recipe([("s1", "d1/maxof.jsonl")], [{"name": "maxof", "path": "t/maxof.jsonl"},
                                                  {"name": "held", "path": "t/held.jsonl"}])
    text = "\n".join(unmatched_lines(recipe.task_matching(), recipe.stages, recipe.eval.tasks))
    assert "(stages: s1)" in text and "- {name: held, path: t/held.jsonl, trained_in: <stage>}" in text


def test_trained_in_wins_over_any_match():
    stages = [(s, f"tasks/{t}/train.jsonl") for s, t in zip(["first", "second", "third"], USER_TASKS)]
    recipe = _recipe(stages, [{"name": "maxof", "path": "tasks/maxof/test.jsonl", "trained_in": "third"}])
    assert recipe.task_stages() == {"maxof": "third"}  # not "first", whose data sits beside it


def test_toy_and_general_tasks_keep_the_exact_rule_and_are_never_reported():
    quickstart = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    for stage in quickstart["stages"]:
        stage.pop("train")  # checking trainer settings imports TRL: seconds this test does not need
    recipe = Recipe.model_validate(quickstart)
    matching = match_tasks(recipe.stages, recipe.eval.tasks)
    # addition, reversal and counting are held out: no stage trains them, and that is no mistake to report.
    assert matching.task_stage == {"date_format": "sft_date_format", "sorting": "sft_sorting", "capitals": "pretrain"}
    assert matching.unmatched == {}
    # A general task is old knowledge: a stage named like it does not make it trained there.
    general = _recipe([("sft_world", "w/world.jsonl")], [{"name": "world", "path": "w/test.jsonl", "general": True}])
    assert general.task_matching().task_stage == {} and general.task_matching().unmatched == {}
