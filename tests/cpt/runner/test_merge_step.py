"""The merge guard's runner step on real (tiny) models and lm-eval: where the stage breaks an earlier task,
alpha < 1 keeps the task's held-out score within the budget, and the folder written is the model that was
scored; where it does not, alpha is 1 and the folder is untouched; the record reaches the manifest and report.

The start model has learned task A's (counting) held-out rows by heart; the "trained" model is the start
after 80 steps on task B (sorting), which leave none of A's answers (tests/memorized_models.py).
"""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from cpt.core.atomic import is_complete
from cpt.core.manifest import Manifest
from cpt.guards.merge import read_weights
from cpt.recipe.schema import Recipe
from cpt.report import write_run_report
from cpt.runner.merge_step import MERGE_DIR, merge_stage_output
from eval.files import atomic_write_json
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.tasks import TaskCatalog
from tests.memorized_models import start_and_trained

BUDGET, ROWS, STEPS = 10.0, 8, 3


def _recipe(out, budget: float = BUDGET) -> Recipe:
    return Recipe.model_validate({
        "run": {"name": "t", "output_dir": str(out)},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "counting"}},
                   {"name": "b", "kind": "sft", "data": {"toy": "sorting"},
                    "merge": {"budget": budget, "rows": ROWS, "steps": STEPS}}],
        "eval": {"tasks": ["counting", "sorting"], "max_examples": 20, "batch_size": 8},
    })


def _stage_dir(tmp_path, trained):
    stage_dir = tmp_path / "stages" / "b"
    shutil.copytree(trained, stage_dir / "model")
    return stage_dir


@pytest.fixture(scope="module")
def breaking(toy_dir, tmp_path_factory):
    """(start, trained) where the stage on B destroys A."""
    return start_and_trained(toy_dir, tmp_path_factory.mktemp("breaking"), "counting", "sorting", ROWS, 80, 1e-3)


def test_alpha_keeps_the_earlier_task_within_budget_where_training_breaks_it(breaking, tmp_path):
    start, trained = breaking
    stage_dir = _stage_dir(tmp_path, trained)
    save_file({"q": torch.ones(2, 3)}, str(stage_dir / "model" / "olora_subspaces.safetensors"))
    record = merge_stage_output(_recipe(tmp_path), 1, start, stage_dir)

    trials = {t["alpha"]: t for t in record["trials"]}
    start_score, full_score = trials[0.0]["means"]["earlier"], trials[1.0]["means"]["earlier"]
    assert start_score >= 75.0 and full_score < start_score - BUDGET, record  # training broke task A
    alpha = record["alpha"]
    assert 0.0 < alpha < 1.0 and record["groups"] == {"earlier": ["counting"]}, record
    assert trials[alpha]["means"]["earlier"] >= start_score - BUDGET and trials[alpha]["within"]
    assert not trials[alpha + 1 / 2**STEPS]["within"]  # the largest to the search's resolution
    assert record["budget"] == BUDGET and record["rows"] == {"counting": ROWS}
    assert record["held_out"] == {"counting": f"toy:counting validation rows 1-{ROWS}"}

    merged = stage_dir / "model"
    assert is_complete(merged) and (merged / "olora_subspaces.safetensors").is_file()
    before, after, written = read_weights(start), read_weights(trained), read_weights(merged)
    key = "model.layers.1.mlp.up_proj.weight"
    assert torch.allclose(written[key], before[key] + alpha * (after[key] - before[key]), atol=1e-6)
    # The folder written scores, by the eval's own harness, what the search measured for its alpha.
    results = evaluate_checkpoint(merged, ["counting"], TaskCatalog([stage_dir / MERGE_DIR / "tasks"]),
                                  EvalSettings(batch_size=8, limit=None), tmp_path / "rescored")
    assert 100 * results["counting"].score == pytest.approx(trials[alpha]["scores"]["counting"])


def test_alpha_is_1_and_the_folder_untouched_where_training_keeps_the_earlier_task(toy_dir, tmp_path):
    start, trained = start_and_trained(toy_dir, tmp_path / "models", "counting", "sorting", ROWS, 5, 1e-5)
    stage_dir = _stage_dir(tmp_path, trained)
    weights = (stage_dir / "model" / "model.safetensors").read_bytes()
    record = merge_stage_output(_recipe(tmp_path, budget=0.0), 1, start, stage_dir)
    assert record["alpha"] == 1.0 and [t["alpha"] for t in record["trials"]] == [0.0, 1.0], record
    assert record["trials"][0]["means"]["earlier"] >= 75.0  # there was something to lose
    assert (stage_dir / "model" / "model.safetensors").read_bytes() == weights


def test_a_stage_with_nothing_to_guard_keeps_alpha_1_and_says_why(toy_dir, tmp_path):
    model = tmp_path / "stages" / "a" / "model"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"not read")
    recipe = Recipe.model_validate({
        "run": {"name": "t", "output_dir": str(tmp_path)},
        "stages": [{"name": "a", "kind": "sft", "data": {"toy": "counting"}, "merge": {"budget": 2}}],
        "eval": {"tasks": ["counting"]},  # trained in this very stage: not an earlier task
    })
    record = merge_stage_output(recipe, 0, toy_dir / "model", model.parent)
    assert record["alpha"] == 1.0 and record["trials"] == [] and "no earlier or general" in record["reason"]
    assert (model / "model.safetensors").read_bytes() == b"not read"


def test_the_manifest_and_the_report_keep_the_merge_record(tmp_path):
    record = {"alpha": 0.25, "budget": 2.0, "groups": {"earlier": ["counting"]}, "reason": "r", "rule": "x",
              "trials": [{"alpha": 0.0, "scores": {"counting": 100.0}, "means": {"earlier": 100.0}, "within": True},
                         {"alpha": 1.0, "scores": {"counting": 0.0}, "means": {"earlier": 0.0}, "within": False},
                         {"alpha": 0.25, "scores": {"counting": 98.0}, "means": {"earlier": 98.0}, "within": True}]}
    manifest = Manifest(run_name="t")
    manifest.mark_done(manifest.record("b", "sft", 0), "stages/b/model", 10, {}, merge=record)
    manifest.save(tmp_path)
    assert Manifest.load(tmp_path).stages["b"].merge == record

    matrix = {"tasks": ["counting"], "rows": [{"checkpoint": "b", "scores": {"counting": 0.9}}]}
    atomic_write_json(tmp_path / "eval" / "matrix.json", matrix)
    atomic_write_json(tmp_path / "eval" / "metrics.json", {})
    markdown = (write_run_report(tmp_path).parent / "report.md").read_text()
    assert "Merge guard" in markdown
    assert "| b | 2 | 0.25 | 100.0 / 0.0 / 98.0 | - | 0, 0.25, 1 (over) |" in markdown
