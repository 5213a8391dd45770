"""Recipe validation of mixing and replay: a clear message naming the field, before anything runs."""

from __future__ import annotations

import pytest

from cpt.errors import UserError
from cpt.recipe.load import load_recipe
from tests.helpers import write_recipe

TRAIN = {"max_steps": 10}


def _cpt(**fields):
    stage = {"name": "p", "kind": "cpt", "train": TRAIN,
             "domains": [{"name": "general", "data": {"toy": "general"}}, {"name": "code", "data": {"toy": "code"}}],
             **fields}
    return {"run": {"name": "r"}, "stages": [stage]}


def _error(tmp_path, recipe) -> str:
    with pytest.raises(UserError) as caught:
        load_recipe(write_recipe(tmp_path / "r.yaml", recipe))
    return str(caught.value)


def test_valid_mixing_recipe_and_defaults(tmp_path):
    recipe = load_recipe(write_recipe(tmp_path / "r.yaml", _cpt(
        mixing={"learner": "doremi", "update_every": 20, "step_size": 1.0, "smoothing": 1e-3, "reference": None,
                "held_out_sequences": 8},
        replay={"path": "old.jsonl", "ratio": 0.2})))
    stage = recipe.stages[0]
    assert stage.mixing.learner == "doremi" and stage.mixing.held_out() == 8 and stage.replay.ratio == 0.2
    static = load_recipe(write_recipe(tmp_path / "s.yaml", _cpt())).stages[0].mixing
    assert static.learner == "static" and static.held_out() == 0


@pytest.mark.parametrize("mixing, expected", [
    ({"learner": "dorem"}, "stages[0] (p).mixing.learner: "),
    ({"learner": "doremi", "step_size": 0}, "mixing.step_size: Input should be greater than 0"),
    ({"learner": "doremi", "step_size": 500}, "mixing.step_size: doremi's step size must be in (0, 100]"),
    ({"learner": "odm", "step_size": 0.9}, "mixing.step_size: odm's rate must be in (0, 1/K] = (0, 0.5] for 2 domains"),
    ({"learner": "static", "step_size": 0.1}, "mixing.step_size: the static learner takes no step size"),
    ({"learner": "doremi", "smoothing": 1.0}, "mixing.smoothing: Input should be less than 1"),
    ({"learner": "doremi", "smoothing": -0.1}, "mixing.smoothing: Input should be greater than or equal to 0"),
    ({"learner": "odm", "held_out_sequences": 0}, "mixing.held_out_sequences: the odm learner learns"),
    ({"learner": "odm", "reference": "m"}, "mixing.reference: only the doremi learner uses a reference"),
    ({"update_every": 0}, "mixing.update_every: Input should be greater than or equal to 1"),
    ({"lerner": "odm"}, "mixing.lerner: unknown key; did you mean 'learner'?"),
])
def test_bad_mixing_settings_name_the_field(tmp_path, mixing, expected):
    assert expected in _error(tmp_path, _cpt(mixing=mixing))


def test_domain_weights_negative_or_all_zero(tmp_path):
    recipe = _cpt()
    recipe["stages"][0]["domains"][1]["weight"] = -0.5
    assert "domains[1] (code).weight: Input should be greater than or equal to 0" in _error(tmp_path, recipe)
    for domain in recipe["stages"][0]["domains"]:
        domain["weight"] = 0
    assert "stages[0] (p).domains: domain weights must not all be zero" in _error(tmp_path, recipe)


def test_learned_mixing_needs_two_domains_and_replay_a_free_name(tmp_path):
    recipe = _cpt(mixing={"learner": "doremi"})
    recipe["stages"][0]["domains"] = recipe["stages"][0]["domains"][:1]
    assert "mixing.learner: doremi needs at least 2 domains to mix" in _error(tmp_path, recipe)
    recipe = _cpt(replay={"path": "x.jsonl", "ratio": 0.1})
    recipe["stages"][0]["domains"][0]["name"] = "replay"
    assert "domains: 'replay' is the name replay data takes" in _error(tmp_path, recipe)


@pytest.mark.parametrize("train, expected", [
    ({}, "train.max_steps: a cpt stage trains from an endless mixture stream"),
    ({"max_steps": 5, "dataloader_num_workers": 2}, "train.dataloader_num_workers: must be 0"),
    ({"max_steps": 5, "packing": False}, "train.packing: set by the mixture stream"),
])
def test_cpt_train_settings_the_stream_owns(tmp_path, train, expected):
    assert expected in _error(tmp_path, _cpt(train=train))


@pytest.mark.parametrize("replay, expected", [
    ({"ratio": 0.2}, "replay: give stages (earlier stage names) and/or path"),
    ({"path": "x.jsonl", "ratio": 1.0}, "replay.ratio: Input should be less than 1"),
    ({"path": "x.jsonl", "ratio": 0}, "replay.ratio: Input should be greater than 0"),
    ({"path": "x.jsonl"}, "replay.ratio: required key is missing"),
    ({"path": "x.jsonl", "ratio": 0.2, "weights": {"a": 1}}, "replay: weights: 'a' is not one of this replay's sources"),
])
def test_bad_replay_settings_name_the_field(tmp_path, replay, expected):
    sft = {"run": {"name": "r"}, "stages": [{"name": "s", "kind": "sft", "data": {"toy": "addition"}, "replay": replay}]}
    assert expected in _error(tmp_path, sft)


def test_cli_reports_a_bad_mixing_recipe_in_one_line_with_exit_2(tmp_path, capsys):
    from cpt.cli import main

    path = write_recipe(tmp_path / "r.yaml", _cpt(mixing={"learner": "doremi", "smoothing": 2}))
    assert main(["plan", str(path)]) == 2
    err = capsys.readouterr().err
    assert "mixing.smoothing: Input should be less than 1" in err and "Traceback" not in err


def test_replay_stage_names_are_checked_when_the_recipe_loads(tmp_path):
    recipe = {"run": {"name": "r"}, "stages": [
        {"name": "a", "kind": "sft", "data": {"toy": "addition"}, "replay": {"stages": ["b"], "ratio": 0.2}},
        {"name": "b", "kind": "sft", "data": {"toy": "sorting"}}]}
    message = _error(tmp_path, recipe)
    assert "stages[0] (a).replay.stages: 'b' is not an earlier cpt or sft stage (those: none)" in message


def test_missing_replay_file_fails_preflight_naming_it(tmp_path):
    from cpt.runner.preflight import preflight

    missing = tmp_path / "old.jsonl"
    sft = {"run": {"name": "r"}, "stages": [
        {"name": "s", "kind": "sft", "data": {"toy": "addition"}, "replay": {"path": str(missing), "ratio": 0.2}}]}
    with pytest.raises(UserError, match=str(missing)):
        preflight(load_recipe(write_recipe(tmp_path / "r.yaml", sft)))
