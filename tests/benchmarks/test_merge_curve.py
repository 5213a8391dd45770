"""benchmarks/merge_curve.py on a run whose second stage broke the first's task (tests/memorized_models.py): the
curve scores the stage's own task and the earlier one on their held-out rows at each alpha, the start's
score at alpha 0 and the trained model's at alpha 1, and refuses a stage with no stage before it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from merge_curve import curve_recipe, measure

from cpt.errors import UserError
from tests.memorized_models import start_and_trained

ROWS = 8
RECIPE = {"run": {"name": "r", "output_dir": "out"},
          "stages": [{"name": "a", "kind": "sft", "data": {"toy": "counting"}},
                     {"name": "b", "kind": "sft", "data": {"toy": "sorting"}}],
          "eval": {"tasks": ["counting", "sorting", {"name": "world_capitals", "general": True}],
                   "max_examples": 20, "batch_size": 8}}


@pytest.fixture(scope="module")
def run_dir(toy_dir, tmp_path_factory):
    """A run folder as the runner leaves it: the recipe, and each stage's model (b: 200 steps on sorting after a,
    which learn its rows)."""
    out = tmp_path_factory.mktemp("curve")
    start, trained = start_and_trained(toy_dir, out, "counting", "sorting", ROWS, 200, 5e-3)
    run = out / "r"
    for stage, model in (("a", start), ("b", trained)):
        shutil.copytree(model, run / "stages" / stage / "model")
    recipe = {**RECIPE, "eval": {**RECIPE["eval"], "tasks": RECIPE["eval"]["tasks"][:2]}}  # toy models: no capitals
    (run / "recipe.yaml").write_text(json.dumps(recipe))
    return run


@pytest.mark.slow  # fits two tiny models and runs lm-eval: ~20 s
def test_every_trained_task_is_scored_and_the_ends_are_the_two_models(run_dir, tmp_path):
    result = measure(run_dir, "b", [0.0, 1.0], ROWS, tmp_path)
    assert result["groups"] == {"trained": ["counting", "sorting"], "general": []}
    assert result["rows"] == {"counting": ROWS, "sorting": ROWS}
    start, full = (point["scores"] for point in result["curve"])
    assert start["counting"] >= 75.0 > full["counting"] + 10  # the stage broke the task the start knew
    assert full["sorting"] > start["sorting"] + 50, result  # and learned its own


def test_the_curve_recipe_counts_the_stage_own_task_and_keeps_the_general_one():
    raw = curve_recipe(RECIPE, "b", 16)
    assert raw["stages"][1]["merge"] == {"budget": 0, "rows": 16} and "merge" not in raw["stages"][0]
    assert raw["eval"]["tasks"] == [{"name": "counting", "trained_in": "a"}, {"name": "sorting", "trained_in": "a"},
                                    {"name": "world_capitals", "general": True}]
    assert "merge" not in RECIPE["stages"][1]  # the run's recipe is left as it was


def test_the_first_stage_has_no_start_to_merge_towards(tmp_path):
    (tmp_path / "recipe.yaml").write_text(json.dumps(RECIPE))
    for stage in ("a", "c"):
        with pytest.raises(UserError, match=f"'{stage}' is not a stage after the first"):
            measure(tmp_path, stage, [0.5], ROWS, tmp_path)


def test_a_folder_that_is_not_a_run_is_named_with_exit_status_2(tmp_path):
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "merge_curve.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "--stage", "b"], check=False,
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert f"{tmp_path}: not a run folder (no recipe.yaml in it)" in done.stderr
