"""Recipe validation: typed fields, unknown keys with the nearest valid name, overrides."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from cpt.errors import UserError
from cpt.recipe.load import load_recipe
from cpt.stages.defaults import runner_owned
from cpt.stages.trainer_args import RUNNER_OWNED_KEYS
from tests.helpers import write_recipe

BASE = {
    "run": {"name": "r"},
    "stages": [{"name": "a", "kind": "sft", "data": {"toy": "addition"}}],
}


def _error(tmp_path, recipe, overrides=()) -> str:
    path = write_recipe(tmp_path / "r.yaml", recipe)
    with pytest.raises(UserError) as caught:
        load_recipe(path, list(overrides))
    return str(caught.value)


def _with_stage(**fields):
    stage = {**BASE["stages"][0], **fields}
    return {**BASE, "stages": [stage]}


def test_valid_recipe_loads_with_defaults(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", BASE))
    assert recipe.model.name_or_path == "toy"
    assert recipe.stages[0].kind == "sft" and recipe.stages[0].data.toy == "addition"
    assert recipe.run.output_dir == "runs"


def test_misspelt_key_names_nearest_valid_key(tmp_path):
    message = _error(tmp_path, {**BASE, "modle": {"name_or_path": "toy"}})
    assert "modle: unknown key; did you mean 'model'?" in message
    message = _error(tmp_path, _with_stage(evl=False))
    assert "stages[0] (a).evl: unknown key; did you mean 'eval'?" in message


def test_unknown_key_offers_only_the_stage_kinds_own_keys(tmp_path):
    # rehearsal: belongs to sft and cpt stages; on a dpo stage it must not be suggested as its own fix
    dpo = {"name": "a", "kind": "dpo", "data": {"toy": "addition_pref"}, "rehearsal": {"ratio": 0.2}}
    message = _error(tmp_path, {**BASE, "stages": [dpo]})
    line = next(text for text in message.splitlines() if "rehearsal" in text)
    assert line.strip().startswith("stages[0] (a).rehearsal: unknown key") and "did you mean 'rehearsal'" not in line
    assert "valid keys:" in line and "reference" in line


def test_trainer_settings_checked_against_trl_config(tmp_path):
    message = _error(tmp_path, _with_stage(train={"lerning_rate": 1e-3, "max_steps": "ten"}))
    assert "stages[0] (a).train.lerning_rate: unknown trainer setting; did you mean 'learning_rate'?" in message
    assert "train.max_steps: expected int, got str 'ten'" in message


def test_runner_owned_trainer_settings_refused(tmp_path):
    message = _error(tmp_path, _with_stage(train={"output_dir": "/elsewhere"}))
    assert "train.output_dir: cannot be set in a recipe" in message
    # train.seed was accepted, then replaced by run.seed without a word: now it is refused, pointing at run.seed
    message = _error(tmp_path, _with_stage(train={"seed": 5}))
    assert "stages[0] (a).train.seed: cannot be set in a recipe" in message and "set run.seed instead" in message


@pytest.mark.parametrize("key", sorted(RUNNER_OWNED_KEYS))
def test_every_setting_the_runner_sets_is_refused_in_a_recipe(tmp_path, key):
    """One list: what the runner sets for each stage is exactly what a recipe may not set."""
    ctx = SimpleNamespace(checkpoint_dir=tmp_path / "checkpoints", seed=7)
    assert runner_owned(ctx).keys() == RUNNER_OWNED_KEYS.keys()
    assert runner_owned(ctx)["seed"] == 7
    assert f"train.{key}: cannot be set in a recipe" in _error(tmp_path, _with_stage(train={key: None}))


def test_wrong_type_and_missing_key(tmp_path):
    message = _error(tmp_path, {**BASE, "run": {"name": "r", "seed": "zero"}})
    assert "run.seed:" in message and "integer" in message
    message = _error(tmp_path, {"run": {"name": "r"}})
    assert "stages: required key is missing" in message


def test_stage_kind_errors(tmp_path):
    message = _error(tmp_path, _with_stage(kind="sfft"))
    assert "'sfft' is not a stage kind (expected one of: cpt, sft, dpo, grpo)" in message


def _grpo(**train):
    return {**BASE, "stages": [{"name": "g", "kind": "grpo", "data": {"toy": "sorting"}, "train": train}]}


def test_grpo_generation_batch_must_divide_by_num_generations(tmp_path):
    message = _error(tmp_path, _grpo(per_device_train_batch_size=6, num_generations=4))
    assert "stages[0] (g).train: the generation batch (6 = per_device_train_batch_size 6 x 1 process(es)" in message
    assert "must divide by num_generations 4" in message
    two_processes = {**_grpo(per_device_train_batch_size=6, num_generations=4), "launch": {"num_processes": 2}}
    assert load_recipe(write_recipe(tmp_path / "ok.yaml", two_processes)).stages[0].kind == "grpo"


def test_grpo_settings_and_rewards_validated(tmp_path):
    assert "num_generations: GRPO needs at least 2" in _error(tmp_path, _grpo(num_generations=1))
    assert "beta: the KL coefficient must be >= 0" in _error(tmp_path, _grpo(beta=-0.1))
    assert "reward_weights: set each reward's weight under rewards:" in _error(tmp_path, _grpo(reward_weights=[1.0]))
    recipe = _grpo()
    recipe["stages"][0]["rewards"] = [{"name": "exact_mtch"}]
    assert "stages[0] (g).rewards[0] (exact_mtch).name: 'exact_mtch' is not one of exact_match" in _error(tmp_path, recipe)


def test_grpo_defaults_keep_kl_on(tmp_path):
    stage = load_recipe(write_recipe(tmp_path / "r.yaml", _grpo())).stages[0]
    assert [r.name for r in stage.rewards] == ["exact_match"] and stage.rollout.backend == "hf"
    from cpt.stages.grpo_config import DEFAULT_BETA

    assert DEFAULT_BETA > 0 and "beta" not in stage.train


def test_data_source_needs_exactly_one_origin(tmp_path):
    message = _error(tmp_path, _with_stage(data={"toy": "addition", "path": "x.jsonl"}))
    assert "stages[0] (a).data: give exactly one of path, hf or toy" in message


def test_cpt_domain_weights_validated(tmp_path):
    stage = {"name": "p", "kind": "cpt", "domains": [{"name": "g", "data": {"toy": "general"}, "weight": -1}]}
    message = _error(tmp_path, {**BASE, "stages": [stage]})
    assert "domains[0] (g).weight" in message and "greater than or equal to 0" in message
    stage["domains"] = [{"name": "g", "data": {"toy": "general"}, "weight": 0}]
    assert "must not all be zero" in _error(tmp_path, {**BASE, "stages": [stage]})


def test_duplicate_stage_names_refused(tmp_path):
    recipe = {**BASE, "stages": BASE["stages"] * 2}
    assert "stage names must be unique; repeated: a" in _error(tmp_path, recipe)


def test_overrides_by_stage_name_and_index(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", BASE)
    recipe = load_recipe(path, ["stages.a.train.max_steps=7", "stages.0.train.learning_rate=1e-4", "run.seed=3"])
    assert recipe.stages[0].train == {"max_steps": 7, "learning_rate": 1e-4}
    assert recipe.run.seed == 3


@pytest.mark.parametrize(
    "override, expected",
    [
        ("stages.nope.train.max_steps=1", "no item named 'nope' at 'stages.nope' (names: a)"),
        ("stages.5.eval=false", "'stages.5' is out of range"),
        ("run.seed", "expected key.path=value"),
        ("run.sed=1", "run.sed: unknown key; did you mean 'seed'?"),
    ],
)
def test_bad_overrides_name_the_problem(tmp_path, override, expected):
    assert expected in _error(tmp_path, BASE, [override])


def test_file_level_errors(tmp_path):
    with pytest.raises(UserError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("run: {name: x\nstages: [", encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.yaml:\d+: not valid YAML"):
        load_recipe(bad)


def test_eval_task_trained_in_must_name_a_stage(tmp_path):
    recipe = {**BASE, "eval": {"tasks": [{"name": "addition", "trained_in": "nope"}]}}
    assert "eval task 'addition': trained_in 'nope' is not a stage (stages: a)" in _error(tmp_path, recipe)
    recipe = {**BASE, "eval": {"tasks": ["addition", {"name": "capitals", "general": True, "trained_in": "a"}]}}
    loaded = load_recipe(write_recipe(tmp_path / "ok.yaml", recipe))
    assert loaded.task_stages() == {"addition": "a", "capitals": "a"}  # addition: auto, from {toy: addition}
