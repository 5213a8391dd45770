"""Earlier stages' data reaches a stage through its context: the runner resolves it from the validated
recipe, so no stage reads the run's recipe.json back (cpt/data/earlier.py, cpt/runner/lineage.py)."""

from __future__ import annotations

import json

from cpt.core.manifest import Manifest
from cpt.core.recipe_base import DataSource
from cpt.data.earlier import EarlierStage, earlier_stages
from cpt.recipe.load import load_recipe
from cpt.runner import lineage
from cpt.stages.context import StageResult
from tests.helpers import write_recipe


def _recipe(tmp_path):
    for name in ("web", "code", "chat", "pairs"):
        (tmp_path / f"{name}.jsonl").write_text(json.dumps({"text": name}) + "\n")
    data = {name: {"path": str(tmp_path / f"{name}.jsonl")} for name in ("web", "code", "chat", "pairs")}
    return load_recipe(write_recipe(tmp_path / "r.yaml", {
        "run": {"name": "e", "output_dir": str(tmp_path / "runs")},
        "stages": [
            {"name": "pre", "kind": "cpt", "domains": [{"name": "web", "data": data["web"]},
                                                       {"name": "code", "data": data["code"]}]},
            {"name": "chat", "kind": "sft", "data": data["chat"]},
            {"name": "pref", "kind": "dpo", "data": data["pairs"]},
            {"name": "again", "kind": "sft", "data": data["chat"],
             "replay": {"stages": ["pre", "chat"], "ratio": 0.2}},
        ]}), [])


def test_earlier_stages_are_their_training_data(tmp_path):
    recipe = _recipe(tmp_path)
    earlier = earlier_stages(recipe.stages[:3])
    paths = {stage.name: [s.path for s in stage.sources] for stage in earlier}
    assert [(s.name, s.kind) for s in earlier] == [("pre", "cpt"), ("chat", "sft"), ("pref", "dpo")]
    assert paths == {"pre": [str(tmp_path / "web.jsonl"), str(tmp_path / "code.jsonl")],
                     "chat": [str(tmp_path / "chat.jsonl")], "pref": []}  # dpo data is never read again
    sources = recipe.stages[3].replay.sources(earlier, "again", "replay")
    assert sources == [DataSource(path=str(tmp_path / f"{n}.jsonl")) for n in ("web", "code", "chat")]


def test_the_runner_puts_the_stages_before_into_the_context(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path)
    seen = {}

    def record(ctx):
        seen[ctx.spec.name] = ctx.earlier
        return StageResult(global_step=0, metrics={})

    monkeypatch.setitem(lineage.STAGE_RUNNERS, "sft", record)
    run_dir = tmp_path / "runs" / "e"
    manifest = Manifest(run_name="e")
    lineage.run_stage(recipe.stages[3], 3, tmp_path, "0" * 16, manifest, run_dir, recipe)
    assert seen["again"] == earlier_stages(recipe.stages[:3])
    assert all(isinstance(stage, EarlierStage) for stage in seen["again"])
    assert not (run_dir / "recipe.json").exists()  # nothing on disk to read back: the context carries it
