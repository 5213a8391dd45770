"""A guard is one `guard:` line on any stage; a wrong one is named before anything runs."""

from __future__ import annotations

import pytest

from cpt.errors import UserError
from cpt.recipe.load import load_recipe
from tests.helpers import write_recipe

SFT = {"name": "a", "kind": "sft", "data": {"toy": "addition"}}
KINDS = {
    "cpt": {"name": "a", "kind": "cpt", "domains": [{"name": "g", "data": {"toy": "general"}}], "train": {"max_steps": 5}},
    "sft": SFT,
    "dpo": {**SFT, "kind": "dpo"},
    "grpo": {**SFT, "kind": "grpo", "rewards": [{"name": "exact_match"}]},
}


def _load(tmp_path, *stages):
    return load_recipe(write_recipe(tmp_path / "r.yaml", {"run": {"name": "r"}, "stages": list(stages)}))


def _error(tmp_path, *stages) -> str:
    with pytest.raises(UserError) as caught:
        _load(tmp_path, *stages)
    return str(caught.value)


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("method", ["olora", "osf", "freeze"])
def test_guards_fit_every_stage_kind(tmp_path, kind, method):
    guard = {"method": method, **({"layers": 1} if method == "freeze" else {})}
    stage = _load(tmp_path, {**KINDS[kind], "guard": guard}).stages[0]
    assert stage.guard.method == method


def test_guard_defaults_are_the_papers(tmp_path):
    olora = _load(tmp_path, {**SFT, "guard": {"method": "olora"}}).stages[0].guard
    assert (olora.r, olora.alpha, olora.lambda1, olora.lambda2) == (8, 32, 0.5, 0.0)
    assert olora.target_modules == ["q_proj", "v_proj"]
    kl = _load(tmp_path, {**SFT, "guard": {"method": "kl_anchor"}}).stages[0].guard
    assert (kl.distance, kl.weight) == ("kl", 1.0)


def test_adaptive_osf_names_earlier_data(tmp_path):
    stages = _load(tmp_path, SFT, {**SFT, "name": "b", "guard": {"method": "osf", "adaptive": {"stages": ["a"]}}}).stages
    assert stages[1].guard.adaptive.stages == ["a"] and stages[1].guard.adaptive.rows == 32


@pytest.mark.parametrize("guard, expected", [
    ({"method": "olroa"}, "stages[0] (a).guard.method: 'olroa' is not a valid method (expected one of: olora, osf, kl_anchor, freeze, gpm)"),
    ({"kind": "olora"}, "stages[0] (a).guard: missing 'method' (expected one of: olora, osf, kl_anchor, freeze, gpm)"),
    ({"method": "olora", "lamda1": 1}, "stages[0] (a).guard.lamda1: unknown key; did you mean 'lambda1'?"),
    ({"method": "osf", "preserved": 1.5}, "stages[0] (a).guard.preserved: Input should be less than 1 (got 1.5)"),
    ({"method": "kl_anchor", "distance": "l2", "text": "general.txt"},
     "stages[0] (a).guard: text is read by the kl distance only; drop text or set distance: kl"),
    ({"method": "osf", "adaptive": {}}, "guard.adaptive: give stages (earlier stage names) and/or path"),
    ({"method": "osf", "adaptive": {"stages": ["b"]}},
     "stages[0] (a).guard.adaptive.stages: 'b' is not an earlier cpt or sft stage (those: none)"),
    ({"method": "osf", "adaptive": {"path": "x.jsonl", "min_preserved": 0.8, "max_preserved": 0.2}},
     "min_preserved must not exceed max_preserved"),
    ({"method": "osf", "grow": -0.1}, "stages[0] (a).guard.grow: Input should be greater than 0 (got -0.1)"),
    ({"method": "osf", "grow_cap": 0.8}, "stages[0] (a).guard: grow_cap is the limit of grow: set grow too"),
    ({"method": "osf", "preserved": 0.5, "grow": 0.1, "grow_cap": 0.4},
     "stages[0] (a).guard: grow_cap (0.4) is below preserved (0.5): the share would shrink, not grow"),
    ({"method": "osf", "update_rank": 4}, "stages[0] (a).guard: update_rank is used with preserve_updates: true only"),
    ({"method": "freeze", "layers": -1}, "stages[0] (a).guard.layers: Input should be greater than or equal to 0"),
    ({"method": "freeze", "layers": 0}, "stages[0] (a).guard: layers: 0 with neither modules nor density keeps nothing"),
    ({"method": "freeze", "layers": 2, "density": 1.0}, "stages[0] (a).guard.density: Input should be less than 1"),
    ({"method": "freeze", "layers": 2, "calibration_batches": 4},
     "stages[0] (a).guard: calibration_batches is used with density only: set density too"),
    ({"method": "freeze"}, "stages[0] (a).guard.layers: required key is missing"),
    ({"method": "gpm"}, "stages[0] (a).guard.text: required key is missing"),
    ({"method": "gpm", "text": "general.txt", "energy": 1}, "stages[0] (a).guard.energy: Input should be less than 1"),
    ({"method": "osf", "preserve_updates": True, "update_rank": 0},
     "stages[0] (a).guard.update_rank: Input should be greater than 0 (got 0)"),
])
def test_bad_guard_names_the_key(tmp_path, guard, expected):
    assert expected in _error(tmp_path, {**SFT, "guard": guard})


def test_guards_that_do_not_fit_the_stage(tmp_path):
    message = _error(tmp_path, {**SFT, "guard": {"method": "olora"}, "peft": {"r": 4}})
    assert "stages[0] (a): guard: olora sets which weights train; remove peft: from this stage" in message
    message = _error(tmp_path, {**SFT, "guard": {"method": "freeze", "layers": 2}, "peft": {"r": 4}})
    assert "stages[0] (a): guard: freeze is for full fine-tuning (a LoRA keeps every base weight already)" in message
    message = _error(tmp_path, {**SFT, "guard": {"method": "gpm", "text": "general.txt"}, "peft": {"r": 4}})
    assert "stages[0] (a): guard: gpm is for full fine-tuning (a LoRA keeps every base weight already)" in message
    message = _error(tmp_path, {**KINDS["dpo"], "guard": {"method": "freeze", "layers": 0, "density": 0.1}})
    assert "stages[0] (a): guard.density picks the weights from the gradient of the stage's own rows: sft and " \
           "cpt stages; drop density on this dpo stage" in message
    message = _error(tmp_path, {**KINDS["dpo"], "guard": {"method": "kl_anchor"}})
    assert "guard: kl_anchor is for sft and cpt stages; a dpo stage anchors to its reference already" in message


def test_plan_shows_each_stages_guard(tmp_path):
    from cpt.plan import describe_plan

    recipe = _load(tmp_path, {**SFT, "guard": {"method": "olora"}},
                   {**SFT, "name": "b", "guard": {"method": "kl_anchor"}, "replay": {"stages": ["a"], "ratio": 0.2}})
    plan = describe_plan(recipe)
    assert "guards:    olora {'r': 8, 'alpha': 32, 'lambda1': 0.5, 'lambda2': 0.0" in plan
    assert "guards:    kl_anchor {'distance': 'kl', 'weight': 1.0}; replay 20% of a" in plan


def test_plan_shows_a_freeze_with_its_density(tmp_path):
    from cpt.plan import describe_plan

    plan = describe_plan(_load(tmp_path, {**SFT, "guard": {"method": "freeze", "layers": 0, "density": 0.1}},
                               {**SFT, "name": "b", "guard": {"method": "freeze", "layers": 2}}))
    assert "guards:    freeze {'layers': 0, 'embeddings': True, 'modules': [], 'density': 0.1, " \
           "'calibration_batches': 8}" in plan
    assert "guards:    freeze {'layers': 2, 'embeddings': True, 'modules': []}" in plan


def test_plan_shows_a_text_anchor_with_its_continuation(tmp_path):
    from cpt.plan import describe_plan

    (tmp_path / "general.txt").write_text("the capital of france is\n", encoding="utf-8")
    guard = {"method": "kl_anchor", "text": str(tmp_path / "general.txt"), "continue_tokens": 8}
    plan = describe_plan(_load(tmp_path, {**SFT, "guard": guard}))
    assert f"guards:    kl_anchor {{'distance': 'kl', 'weight': 1.0, 'text': '{tmp_path / 'general.txt'}', " \
           "'continue_tokens': 8}" in plan


def test_plan_says_how_much_of_a_capped_stage_its_own_data_gets(tmp_path):
    from cpt.plan import describe_plan

    replay = {"stages": ["a"], "ratio": 0.5}
    recipe = _load(tmp_path, {**SFT, "train": {"max_steps": 50}},
                   {**SFT, "name": "b", "replay": replay, "train": {"max_steps": 50}},
                   {**SFT, "name": "c", "replay": replay})
    plan = describe_plan(recipe)
    assert "replay 50% of a; the stage's own data gets 50% of its 50 steps (max_steps 100 gives it all 50)" in plan
    assert plan.count("own data gets") == 1  # not on a stage without replay, nor on one trained by epochs


def test_plan_shows_each_replayed_sources_share_under_weights(tmp_path):
    from cpt.plan import describe_plan

    recipe = _load(tmp_path, SFT, {**SFT, "name": "b"},
                   {**SFT, "name": "c", "replay": {"stages": ["a", "b"], "ratio": 0.3, "weights": {"b": 2}}})
    assert "replay 30%: a 10.0%, b 20.0%" in describe_plan(recipe)


def test_plan_shows_the_growing_osf_share_per_stage(tmp_path):
    from cpt.plan import describe_plan

    grow = {"method": "osf", "preserved": 0.3, "grow": 0.2}
    recipe = _load(tmp_path, {**SFT, "guard": grow}, {**SFT, "name": "b"}, {**SFT, "name": "c", "guard": grow},
                   {**SFT, "name": "d", "guard": {**grow, "preserve_updates": True}},
                   {**SFT, "name": "e", "guard": {"method": "osf"}})
    plan = describe_plan(recipe)
    assert "osf {'preserved': 0.3, 'target_modules': 'all-linear', 'grow': 0.2, 'grow_cap': 0.9} " \
           "(OSF stage 1 of the model: preserved 0.3)" in plan
    assert "(OSF stage 2 of the model: preserved 0.5)" in plan  # stage b, without OSF, does not count
    assert "'preserve_updates': True, 'update_rank': 8} (OSF stage 3 of the model: preserved 0.7)" in plan
    assert "osf {'preserved': 0.5, 'target_modules': 'all-linear'}\n" in plan  # no sequence keys where unused
