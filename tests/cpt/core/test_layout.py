"""The run layout: one object names every file of a run directory, and a real run writes exactly there."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cpt.core.atomic import is_complete
from cpt.core.layout import RunLayout, StageLayout


def _paths(layout) -> dict:
    """Every path a layout object names, by property name."""
    return {name: getattr(layout, name) for name, attr in vars(type(layout)).items() if isinstance(attr, property)}


def test_every_path_is_its_own_and_inside_the_run(tmp_path):
    run = RunLayout.of(tmp_path, "r")
    named = {**_paths(run), **{f"stage.{k}": v for k, v in _paths(run.stage("a")).items()},
             "results(base)": run.results("base"), "results(a)": run.results("a")}
    assert len(set(named.values())) == len(named) - 1, named  # only results(a) is stage a's eval folder
    assert run.results("a") == run.stage("a").eval
    assert all(path.is_relative_to(run.dir) for path in named.values()), named
    # A stage named like a run-level folder stays inside stages/: names never collide.
    assert run.stage("eval").dir.parent == run.stages and run.results("eval") != run.eval
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.dir = tmp_path


@pytest.mark.slow
@pytest.mark.serial  # with the quickstart's own test: the session that runs the quickstart once (conftest.py)
def test_a_finished_run_has_every_file_the_layout_names(quickstart_run):
    run_dir, result = quickstart_run  # `cpt run recipes/quickstart.yaml`, once per session (conftest.py)
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunLayout(run_dir)
    for path in (run.manifest, run.recipe, run.recipe_text, run.matrix, run.matrix_text, run.metrics, run.timings,
                 run.report / "index.html", run.results("base")):
        assert path.exists(), path
    manifest = json.loads(run.manifest.read_text())
    assert json.loads(run.recipe.read_text())["run"]["name"] == manifest["run_name"]
    for name, record in manifest["stages"].items():
        stage = run.stage(name)
        assert isinstance(stage, StageLayout) and run_dir / record["output"] == stage.model
        assert is_complete(stage.model) and stage.train_log.is_file() and stage.train_args.is_file(), name
        assert any(run.results(name).glob("*.json")), name  # the stage's cached eval results
    assert any(run.token_cache.rglob("*")), run.token_cache  # the cpt stage tokenised through the run's cache
