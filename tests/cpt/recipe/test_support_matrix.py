"""The support matrix at plan level: docs/support_matrix.md is the table's, every combination the table
refuses is refused by `cpt plan` with the table's message (under every launcher, GRPO with hf and vLLM
rollouts), every combination it accepts passes `cpt plan` in the very recipes the slow tests run
(tests/cpt/runner/test_support_matrix_runs.py), and a run launched under ZeRO-3 refuses before writing.
"""

from __future__ import annotations

import pytest

from cpt import cli
from cpt.guards.support import GUARDS, Launch
from cpt.recipe.support_matrix import DOC, KINDS, LAUNCHES, combinations, render
from tests.helpers import write_recipe
from tests.support_matrix_stages import combination_stage, launcher_recipe, packed, runnable, write_filter_prompts


def plan(path, capsys) -> tuple[int, str]:
    code = cli.main(["plan", str(path)])
    return code, capsys.readouterr().err


def test_the_committed_matrix_is_the_tables():
    assert DOC.read_text(encoding="utf-8") == render(), "run python -m cpt.recipe.support_matrix"
    for guard in GUARDS:  # every guard and stage kind has its row
        for kind in KINDS:
            assert f"| {guard} | {kind} |" in render()


def test_the_run_recipes_hold_every_supported_combination_once():
    """The slow tests' stages (tests/support_matrix_stages.py) cover exactly what the table says runs."""
    for launch in LAUNCHES:
        covered = [c for group in packed(launch) for c in group]
        assert len(covered) == len(set(covered)) and set(covered) == set(runnable(launch)), launch
        for group in packed(launch):
            assert len({c.kind for c in group}) == 1
            assert sum(c.guard not in ("replay", "rehearsal", "merge") for c in group) <= 1  # one guard method (or none) at most


def test_every_refused_combination_is_refused_at_plan(tmp_path, toy_dir, capsys):
    prompts = write_filter_prompts(tmp_path)
    refused = [c for c in combinations() if c.refusal]
    assert {c.guard for c in refused} >= {"kl_anchor", "osf", "replay"}
    for number, combination in enumerate(refused):
        deepspeed = {"deepspeed": f"zero{combination.launch.zero}"} if combination.launch.zero else {}
        recipe = {"run": {"name": "r", "output_dir": str(tmp_path / "runs")},
                  "launch": {"num_processes": combination.launch.processes, **deepspeed},
                  "stages": [combination_stage(combination, prompts)]}
        code, err = plan(write_recipe(tmp_path / f"{number}.yaml", recipe), capsys)
        assert code == 2 and combination.refusal in err, (combination, err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("launch", LAUNCHES, ids=[launch.describe() for launch in LAUNCHES])
def test_every_supported_combination_passes_plan(launch, tmp_path, toy_dir, capsys, monkeypatch):
    recipe = launcher_recipe(launch, tmp_path, "r")
    code, err = plan(write_recipe(tmp_path / "hf.yaml", recipe), capsys)
    assert code == 0, err
    # The same recipe with vLLM rollouts for its GRPO stages: refused here only because vLLM is missing ...
    for stage in (s for s in recipe["stages"] if s["kind"] == "grpo"):
        stage["rollout"] = {"backend": "vllm"}
    path = write_recipe(tmp_path / "vllm.yaml", recipe)
    code, err = plan(path, capsys)
    assert code == 2 and "rollout.backend is 'vllm' but vLLM is not installed" in err
    # ... and accepted where it is installed (a stand-in for the install: vLLM needs CUDA)
    monkeypatch.setattr("cpt.stages.grpo_config.require_vllm", lambda where: None)
    code, err = plan(path, capsys)
    assert code == 0, err


@pytest.mark.parametrize("guard, refused", [
    ({"method": "osf"}, "stage s: guard.method osf does not run under DeepSpeed ZeRO-3"),
    ({"method": "freeze", "layers": 1, "density": 0.1}, "stage s: guard.density does not run under DeepSpeed ZeRO-3"),
])
def test_a_run_launched_under_zero3_refuses_a_whole_weight_guard_before_writing(tmp_path, toy_dir, capsys,
                                                                               monkeypatch, guard, refused):
    """The launch comes from accelerate's environment when there is one (here as `accelerate launch
    --config_file recipes/launch/zero3.yaml` sets it), whatever the recipe's `launch:` says."""
    stage = {"name": "s", "kind": "sft", "data": {"toy": "date_format"}, "guard": guard}
    path = write_recipe(tmp_path / "r.yaml", {"run": {"name": "g", "output_dir": str(tmp_path)}, "stages": [stage]})
    code, _ = plan(path, capsys)
    assert code == 0  # the recipe's launch: one process
    for key, value in {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
                       "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    code = cli.main(["run", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count(refused) == 1
    assert not (tmp_path / "g").exists()


def test_launches_read_from_the_recipe_or_the_launcher(monkeypatch):
    from cpt.guards.support import launch_of
    from cpt.recipe.schema import Recipe

    recipe = Recipe.model_validate({"run": {"name": "r"}, "launch": {"num_processes": 8, "deepspeed": "zero3"},
                                    "stages": [{"name": "s", "kind": "sft", "data": {"toy": "date_format"}}]})
    assert launch_of(recipe) == Launch(8, 3)
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert launch_of(recipe) == Launch(4)  # launched with plain DDP: the launch is what runs
    monkeypatch.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    monkeypatch.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert launch_of(recipe) == Launch(4, 2)
