"""Every method and variant of the forgetting benchmark builds a recipe the runner accepts (as torchtune tests
that every config parses), and the replay schedules give the shares they promise."""

from pathlib import Path

import pytest
import yaml
from forgetting import METHODS, SETTINGS, VARIANTS, recipe_for, rl_sft_recipes
from forgetting_methods import (
    GENERAL_FACT_QUESTIONS,
    GENERAL_HELD_OUT,
    GENERAL_SCORED_ROWS,
    GENERAL_TEXT_STARTS,
    held_out_general_lines,
)

from cpt.recipe.load import load_recipe


@pytest.mark.parametrize("setting_name", sorted(SETTINGS))
@pytest.mark.parametrize("method", [m for m in (*METHODS, *VARIANTS) if m != "rl_sft"])
def test_every_method_builds_a_valid_recipe(method, setting_name, tmp_path):
    setting = SETTINGS[setting_name]
    loaded = _load(recipe_for(method, "base-model", 0, setting["steps"], setting, tmp_path, True, order="b"), tmp_path)
    trained = [stage for stage in loaded.stages if stage.name.startswith(("t", "multitask"))]
    assert len(trained) == (1 if method.startswith("multitask") else len(setting["tasks"]))


@pytest.mark.parametrize("setting_name", sorted(SETTINGS))
def test_rl_sft_starts_each_task_from_rl_own_warm_up(setting_name, tmp_path):
    setting = SETTINGS[setting_name]
    rl = recipe_for("rl", "base-model", 0, setting["steps"], setting, tmp_path, True, order="b")
    warmups = [stage["name"] for stage in rl["stages"] if stage["name"].startswith("w")]
    recipes = rl_sft_recipes(tmp_path / "rl-s0-b", 0, setting, tmp_path, order="b")
    assert [Path(r["model"]["name_or_path"]).parent.name for r in recipes] == warmups
    assert all(Path(r["model"]["name_or_path"]).parts[-4] == "rl-s0-b" for r in recipes)
    for recipe in recipes:
        (stage,) = _load(recipe, tmp_path).stages
        assert stage.kind == "sft" and recipe["stages"][0]["train"]["max_steps"] == setting["rl"]["sft_steps"]
    with pytest.raises(ValueError, match="rl_sft_recipes"):
        recipe_for("rl_sft", "base-model", 0, setting["steps"], setting, tmp_path, True)


def test_smollm2_scores_capitals_and_regions_as_general_knowledge(tmp_path):
    recipe = _load(recipe_for("merge", "base-model", 0, 50, SETTINGS["smollm2"], tmp_path, True), tmp_path)
    assert [t.name for t in recipe.eval.tasks if t.general] == ["world_capitals", "world_regions"]
    assert recipe.eval.apply_chat_template is False  # capitals' 3-shot completions, as the README's general tasks


def _load(recipe: dict, folder: Path):
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return load_recipe(path)


def test_balanced_replay_gives_every_task_seen_an_equal_share(tmp_path):
    setting = SETTINGS["smollm2"]
    recipe = recipe_for("replay_balanced", "base-model", 0, 50, setting, tmp_path, True)
    stages = recipe["stages"]
    assert "replay" not in stages[0]
    for index, stage in enumerate(stages[1:], start=1):
        assert stage["replay"]["stages"] == [s["name"] for s in stages[:index]]
        # the new task's share 1 - ratio equals each earlier task's ratio / index
        assert stage["replay"]["ratio"] / index == pytest.approx(1 - stage["replay"]["ratio"])


@pytest.mark.parametrize("method", ["replay_50_added", "ssr_replay_added", "replay_50_added_recent",
                                    "freeze2_replay_added", "freeze2_replay_added_lr2"])
def test_added_replay_keeps_every_new_row_and_multitask_long_matches_its_steps(method, tmp_path):
    """replay_50_added and ssr_replay_added: the stage's own rows as naive training has them (steps x (1 - the
    shares of replayed and rehearsed rows) = steps), the other rows on top; multitask_long trains as many steps in
    its one stage as that whole sequence."""
    setting, steps = SETTINGS["smollm2"], 50
    added = recipe_for(method, "base-model", 0, steps, setting, tmp_path, True)["stages"]
    naive = recipe_for("naive", "base-model", 0, steps, setting, tmp_path, True)["stages"]
    for index, (stage, plain) in enumerate(zip(added, naive)):
        share = sum(stage[key]["ratio"] for key in ("replay", "rehearsal") if key in stage)
        assert share == (0.5 if index else 0.0)
        assert stage["train"]["max_steps"] * (1 - share) == plain["train"]["max_steps"] == steps
        if method == "ssr_replay_added" and index:  # both halves draw on every earlier stage
            earlier = [earlier_stage["name"] for earlier_stage in added[:index]]
            assert stage["replay"]["stages"] == stage["rehearsal"]["prompts"]["stages"] == earlier
    assert added[0]["train"]["max_steps"] < added[1]["train"]["max_steps"]
    (long,) = recipe_for("multitask_long", "base-model", 0, steps, setting, tmp_path, True)["stages"]
    assert long["train"]["max_steps"] == sum(stage["train"]["max_steps"] for stage in added) == 350


@pytest.mark.parametrize("method", ["freeze2_replay_added", "multitask_long"])
@pytest.mark.parametrize("suffix, rate", [("_lr2", 2e-4), ("_lr05", 5e-5), ("_lr025", 2.5e-5)])
def test_a_rate_suffix_is_the_same_recipe_at_that_rate(method, suffix, rate, tmp_path):
    """`<method>_lr2` / `_lr05` / `_lr025`: every stage of the method (the multi-task bound's one stage too) at twice /
    half / a quarter of the setting's rate of 1e-4, and nothing else changed."""
    setting = SETTINGS["smollm2"]
    plain = recipe_for(method, "base-model", 0, 50, setting, tmp_path, True)
    scaled = recipe_for(f"{method}{suffix}", "base-model", 0, 50, setting, tmp_path, True)
    assert scaled["run"]["name"] == f"{method}{suffix}-s0" != plain["run"]["name"]
    for changed, unchanged in zip(scaled["stages"], plain["stages"], strict=True):
        assert changed["train"].pop("learning_rate") == rate and unchanged["train"].pop("learning_rate") == 1e-4
        assert changed == unchanged


def test_recent_replay_weights_each_earlier_task_by_its_place(tmp_path):
    recipe = recipe_for("replay_50_added_recent", "base-model", 0, 50, SETTINGS["smollm2"], tmp_path, True)
    last = recipe["stages"][-1]["replay"]
    assert last["weights"] == {stage["name"]: place for place, stage in enumerate(recipe["stages"][:-1], start=1)}
    spec = _load(recipe, tmp_path).stages[-1].replay  # the runner's view: shares of the last stage's rows
    assert spec.shares(spec.stages) == pytest.approx([0.5 / 6, 1 / 6, 0.25])


@pytest.mark.parametrize("method, guard", [("freeze2_replay_added", {"layers": 2}),
                                           ("freeze8_replay_added", {"layers": 8}),
                                           ("freeze2_mlp_replay_added", {"layers": 2, "modules": ["mlp"]}),
                                           ("freeze2_d10_replay_added", {"layers": 2, "density": 0.1}),
                                           ("freeze2_d01_replay_added", {"layers": 2, "density": 0.01})])
def test_freeze_variants_are_replay_on_top_with_the_bottom_layers_frozen(method, guard, tmp_path):
    setting = SETTINGS["smollm2"]
    frozen = recipe_for(method, "base-model", 0, 50, setting, tmp_path, True)["stages"]
    plain = recipe_for("replay_50_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    for stage, replayed in zip(frozen, plain, strict=True):
        assert stage.pop("guard") == {"method": "freeze", **guard}
        assert stage == replayed
    _load(recipe_for(method, "base-model", 0, 50, setting, tmp_path, True), tmp_path)  # the runner accepts it


@pytest.mark.parametrize("method, weight", [("kl_general_replay_added", 1.0), ("kl_general3_replay_added", 3.0),
                                           ("kl_general10_replay_added", 10.0)])
def test_general_kl_variants_are_replay_on_top_under_a_kl_anchor_on_general_text(method, weight, tmp_path):
    """kl_general*: replay on top's stages and steps, each under a KL anchor on the benchmark's general text starts."""
    _assert_replay_on_top_under(method, {"method": "kl_anchor", "weight": weight, "text": str(GENERAL_TEXT_STARTS)},
                                48, tmp_path)


def test_fact_kl_variant_anchors_the_starts_short_answers_to_fact_questions(tmp_path):
    """kl_facts10: the same, on the question file (no geography, which the general tasks ask), 8 answer tokens."""
    guard = {"method": "kl_anchor", "weight": 10.0, "text": str(GENERAL_FACT_QUESTIONS), "continue_tokens": 8}
    _assert_replay_on_top_under("kl_facts10_replay_added", guard, 8, tmp_path)
    questions = GENERAL_FACT_QUESTIONS.read_text(encoding="utf-8").splitlines()
    assert len(questions) == 64 and all(q.startswith("Question: ") and q.endswith(" Answer:") for q in questions)
    assert not any(word in q.lower() for q in questions for word in ("capital", "country", "region", "continent"))


@pytest.mark.parametrize("method, text", [("gpm_general_replay_added", GENERAL_TEXT_STARTS),
                                         ("gpm_heldout_replay_added", GENERAL_HELD_OUT)])
def test_gpm_variants_are_replay_on_top_under_gpm_on_their_text(method, text, tmp_path):
    setting = SETTINGS["smollm2"]
    projected = recipe_for(method, "base-model", 0, 50, setting, tmp_path, True)["stages"]
    plain = recipe_for("replay_50_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    for stage, replayed in zip(projected, plain, strict=True):
        assert stage.pop("guard") == {"method": "gpm", "text": str(text)}
        assert stage == replayed
    assert _load(recipe_for(method, "base-model", 0, 50, setting, tmp_path, True), tmp_path).stages[-1].guard.energy \
        == 0.99  # the runner accepts it, at the guard's default


def test_the_held_out_general_rows_are_none_of_the_scored_ones():
    """general_held_out.txt is what held_out_general_lines writes: the capitals and regions rows after the first 200
    (forgetting_general.py scores those), each with its answer, and no scored row's question."""
    from eval.general_data import capital_rows, region_rows

    lines = GENERAL_HELD_OUT.read_text(encoding="utf-8").splitlines()
    assert lines == held_out_general_lines()
    assert len(lines) == len(capital_rows()) + len(region_rows()) - 2 * GENERAL_SCORED_ROWS
    scored = [row["prompt"].rsplit("Question: ", 1)[1].replace("\n", " ")
              for row in capital_rows()[:GENERAL_SCORED_ROWS] + region_rows()[:GENERAL_SCORED_ROWS]]
    assert not any(question in line for line in lines for question in scored)
    assert lines[0].endswith(f"Answer: {capital_rows()[GENERAL_SCORED_ROWS]['answers'][0]}")


def _assert_replay_on_top_under(method: str, guard: dict, continue_tokens: int, tmp_path) -> None:
    setting = SETTINGS["smollm2"]
    anchored = recipe_for(method, "base-model", 0, 50, setting, tmp_path, True)["stages"]
    plain = recipe_for("replay_50_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    for stage, replayed in zip(anchored, plain, strict=True):
        assert stage.pop("guard") == guard
        assert stage == replayed
    loaded = _load(recipe_for(method, "base-model", 0, 50, setting, tmp_path, True), tmp_path).stages[-1].guard
    assert (loaded.distance, loaded.continue_tokens) == ("kl", continue_tokens)  # the runner accepts it


@pytest.mark.parametrize("suffix, factor", [("_decay07", 0.7), ("_decay05", 0.5)])
def test_a_decay_suffix_lowers_each_stage_rate_by_the_factor_and_changes_nothing_else(suffix, factor, tmp_path):
    """`<method>_decay07`: the stage that trains task i at 1e-4 x 0.7 ** i; steps, guard and replay as the method."""
    setting = SETTINGS["smollm2"]
    plain = recipe_for("freeze2_replay_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    decayed = recipe_for(f"freeze2_replay_added{suffix}", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    rates = [stage["train"].pop("learning_rate") for stage in decayed]
    assert rates == pytest.approx([1e-4 * factor**index for index in range(len(plain))], rel=1e-3)
    assert rates == sorted(rates, reverse=True) and rates[0] == setting["train"]["learning_rate"]
    for stage in plain:
        stage["train"].pop("learning_rate")
    assert decayed == plain


def test_own_heavy_replay_trains_the_same_steps_with_two_thirds_new_rows(tmp_path):
    """freeze2_replay33_added: freeze2_replay_added's steps and guard, a third of each later stage's rows replayed,
    so the new task gets two thirds of them (67 of 100 steps' rows, where replay on top gives it 50)."""
    setting = SETTINGS["smollm2"]
    heavy = recipe_for("freeze2_replay33_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    on_top = recipe_for("freeze2_replay_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    assert [s["train"]["max_steps"] for s in heavy] == [s["train"]["max_steps"] for s in on_top] == [50, 100, 100, 100]
    assert "replay" not in heavy[0] and heavy[0] == on_top[0]
    for stage, replayed in zip(heavy[1:], on_top[1:], strict=True):
        assert stage.pop("replay")["ratio"] == pytest.approx(1 / 3) and replayed.pop("replay")["ratio"] == 0.5
        assert stage == replayed


def test_learn_then_replay_trains_each_later_task_alone_then_with_half_replayed(tmp_path):
    """freeze2_learn_then_replay: from the second task on, a `w` stage of the task alone, then its `t` stage with half
    of its rows replayed from the earlier `t` stages; 350 steps in all (multitask_long's), the freeze on every stage,
    and only the `t` stages are the rows the eval tasks are trained in."""
    setting = SETTINGS["smollm2"]
    recipe = recipe_for("freeze2_learn_then_replay", "base-model", 0, 50, setting, tmp_path, True)
    stages = recipe["stages"]
    tasks = setting["tasks"]
    assert [s["name"] for s in stages] == [f"t0_{tasks[0]}", *(n for i, t in enumerate(tasks[1:], start=1)
                                                                 for n in (f"w{i}_{t}", f"t{i}_{t}"))]
    assert sum(s["train"]["max_steps"] for s in stages) == 350
    assert all(s["guard"] == {"method": "freeze", "layers": 2} for s in stages)
    for index, stage in enumerate(stages):
        if stage["name"].startswith("w"):
            assert "replay" not in stage and stage["data"] == stages[index + 1]["data"]
        elif index > 0:
            assert stage["replay"] == {"stages": [s["name"] for s in stages[:index] if s["name"].startswith("t")],
                                       "ratio": 0.5}
    trained = [t["trained_in"] for t in recipe["eval"]["tasks"] if not t.get("general")]
    assert trained == [f"t{i}_{t}" for i, t in enumerate(tasks)]
    _load(recipe, tmp_path)  # the runner accepts it


def test_general_rehearsal_rehearses_general_text_in_every_stage_within_the_on_top_half(tmp_path):
    """freeze2_general_ssr_replay_added: a fifth of every stage is the start continuing the benchmark's text starts,
    the rest of the on-top half replay; the steps, the freeze and the prompts' file are the runner's to accept."""
    setting = SETTINGS["smollm2"]
    recipe = recipe_for("freeze2_general_ssr_replay_added", "base-model", 0, 50, setting, tmp_path, True)
    plain = recipe_for("freeze2_replay_added", "base-model", 0, 50, setting, tmp_path, True)["stages"]
    stages = _load(recipe, tmp_path).stages
    assert [s.train["max_steps"] for s in stages] == [s["train"]["max_steps"] for s in plain]
    starts = Path(stages[0].rehearsal.prompts.path).read_text().splitlines()
    assert len(starts) == 64 and not any("capital" in line.lower() for line in starts)
    for index, stage in enumerate(stages):
        assert stage.guard.layers == 2 and stage.rehearsal.ratio == 0.2 and stage.rehearsal.prompts.path
        share = stage.replay.ratio if index else 0.0
        assert share + stage.rehearsal.ratio == pytest.approx(0.5 if index else 0.2)
