"""benchmarks/forgetting_general.py: a finished run's two checkpoints (base, last stage) are found from its
manifest, an unfinished run is refused, and the changes aggregate per method as the benchmark's spread.
The scoring itself is lm-eval on the package's general tasks (tests/eval/test_general_tasks_smollm2.py).
Run: pytest tests/benchmarks/test_forgetting_general.py"""

from __future__ import annotations

import pytest
from forgetting_general import checkpoints, per_method, run_identity

from cpt.core.manifest import DONE, Manifest


def _run(tmp_path, name, statuses):
    manifest = Manifest(run_name=name, base_model="/models/base")
    for index, status in enumerate(statuses):
        rec = manifest.record(f"t{index}", "sft", index)
        rec.status, rec.output = status, f"stages/t{index}/model"
    run_dir = tmp_path / name
    manifest.save(run_dir)
    return run_dir


def test_the_base_and_the_last_stage_are_the_checkpoints(tmp_path):
    run_dir = _run(tmp_path, "freeze-s1-b", [DONE, DONE, DONE])
    base, last = checkpoints(run_dir)
    assert str(base) == "/models/base" and last == run_dir / "stages" / "t2" / "model"


def test_runs_group_by_method_and_by_the_call_they_came_from():
    assert run_identity("freeze2_replay_added-s1-b") == ("freeze2_replay_added", 1)
    assert run_identity("steps100_a/freeze2_replay_added-s0") == ("steps100_a/freeze2_replay_added", 0)
    assert run_identity("freeze_a/freeze2_replay_added-s0")[0] != run_identity("steps100_a/freeze2_replay_added-s0")[0]
    with pytest.raises(SystemExit, match="expected a benchmark run name"):
        run_identity("notes")


def test_an_unfinished_run_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="not a finished run"):
        checkpoints(_run(tmp_path, "naive-s0", [DONE, "running"]))


def test_changes_aggregate_per_method_as_mean_and_population_std():
    def run(method, seed, capitals):
        change = {"capitals": capitals, "regions_acc": -1.0, "regions_acc_norm": 0.0}
        return {"method": method, "seed": seed, "change": change}

    methods = per_method([run("freeze", 0, -1.0), run("multitask", 0, -8.0), run("freeze", 1, -3.0)])
    assert list(methods) == ["freeze", "multitask"] and methods["freeze"]["seeds"] == [0, 1]
    assert methods["freeze"]["capitals"] == {"change": -2.0, "change_std": 1.0, "per_seed": [-1.0, -3.0]}
    assert methods["multitask"]["regions_acc"]["change"] == -1.0
