"""Continual-learning metrics on hand-made accuracy matrices, each answer worked out by hand."""

from __future__ import annotations

import json

import pytest

from eval.metrics import compute_metrics, format_metrics, metrics_to_json


def _matrix(rows: list[tuple[str, dict]]) -> dict:
    tasks = list(dict.fromkeys(t for _, scores in rows for t in scores))
    return {"tasks": tasks, "rows": [{"checkpoint": c, "scores": s} for c, s in rows]}


# Tasks a, b, c trained in stages s_a, s_b, s_c; g is a general (old-knowledge) task.
THREE = _matrix(
    [
        ("base", {"a": 0.0, "b": 0.1, "c": 0.2, "g": 0.8}),
        ("s_a", {"a": 0.9, "b": 0.3, "c": 0.25, "g": 0.7}),
        ("s_b", {"a": 0.6, "b": 0.8, "c": 0.3, "g": 0.6}),
        ("s_c", {"a": 0.3, "b": 0.5, "c": 0.9, "g": 0.5}),
    ]
)
THREE_STAGES = {"a": "s_a", "b": "s_b", "c": "s_c"}


def test_three_tasks_three_stages():
    m = compute_metrics(THREE, THREE_STAGES, general={"g"})
    # Average accuracy over the tasks trained so far: base none; s_a: a .9; s_b: (.6 + .8) / 2 = .7;
    # s_c: (.3 + .5 + .9) / 3 = 1.7 / 3.
    assert m.average_accuracy["base"] is None
    assert m.average_accuracy["s_a"] == pytest.approx(0.9)
    assert m.average_accuracy["s_b"] == pytest.approx(0.7)
    assert m.average_accuracy["s_c"] == pytest.approx(1.7 / 3)
    assert m.final_average_accuracy == pytest.approx(1.7 / 3)
    # BWT over a, b (c is the last): a .3 - .9 = -.6, b .5 - .8 = -.3; mean -.45.
    assert m.bwt == pytest.approx(-0.45)
    # FWT over b, c (a is the first): b R[s_a] .3 - base .1 = .2, c R[s_b] .3 - base .2 = .1; mean .15.
    assert m.fwt == pytest.approx(0.15)
    # Forgetting, best at or after own stage minus final: a max(.9, .6, .3) - .3 = .6; b max(.8, .5) - .5 = .3;
    # c .9 - .9 = 0.
    assert m.forgetting == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.0})
    # General change: g final .5 - base .8 = -.3.
    assert m.general_change == pytest.approx({"g": -0.3})
    assert m.never_learned == []
    assert m.score_after_stage == pytest.approx({"a": 0.9, "b": 0.8, "c": 0.9})


def test_format_contains_the_numbers():
    text = format_metrics(compute_metrics(THREE, THREE_STAGES, general={"g"}))
    # 1.7 / 3 = 0.5667 -> 56.7%; BWT -45 points, FWT +15, forgetting 60 / 30 / 0, g -30.
    for expected in ["final average accuracy 56.7%", "BWT -45.0", "FWT +15.0", "a 60.0", "b 30.0", "c 0.0", "g -30.0"]:
        assert expected in text
    assert "never learned" not in text


def test_never_learned_task_is_flagged_and_its_forgetting_still_reported():
    matrix = _matrix(
        [
            ("base", {"a": 0.0, "b": 0.0}),
            ("s_a", {"a": 0.05, "b": 0.0}),
            ("s_b", {"a": 0.0, "b": 0.9}),
        ]
    )
    m = compute_metrics(matrix, {"a": "s_a", "b": "s_b"})
    # a scored .05 < .2 right after s_a: never learned; its forgetting max(.05, 0) - 0 = .05 looks harmless.
    assert m.never_learned == ["a"]
    assert m.forgetting == pytest.approx({"a": 0.05, "b": 0.0})
    assert m.bwt == pytest.approx(-0.05)  # a: 0 - .05
    text = format_metrics(m)
    assert "a 5.0  (never learned: score after its stage 5.0%)" in text
    assert "b 0.0" in text and "b 0.0  (never" not in text
    # With a lower threshold a counts as learned.
    assert compute_metrics(matrix, {"a": "s_a", "b": "s_b"}, learned_threshold=0.05).never_learned == []


def test_missing_scores_are_skipped():
    matrix = _matrix(
        [
            ("base", {"a": 0.0, "b": None, "g": 0.5}),
            ("s_a", {"a": 0.8, "b": 0.1}),  # g not evaluated here
            ("s_b", {"b": 0.7, "g": None}),  # a not evaluated, g null
            ("s_c", {"a": 0.4, "b": 0.6}),
        ]
    )
    m = compute_metrics(matrix, {"a": "s_a", "b": "s_b"}, general={"g", "h"})
    # s_b: only b present -> .7; s_c: (.4 + .6) / 2 = .5.
    assert m.average_accuracy == pytest.approx({"base": None, "s_a": 0.8, "s_b": 0.7, "s_c": 0.5})
    # BWT over a only (b is the last trained): .4 - .8 = -.4.
    assert m.bwt == pytest.approx(-0.4)
    # FWT over b only: R[s_a][b] .1 - base b (missing) -> nothing left -> None.
    assert m.fwt is None
    # Forgetting a: max(.8, .4) - .4 = .4 (the missing s_b cell is skipped); b: .7 - .6 = .1.
    assert m.forgetting == pytest.approx({"a": 0.4, "b": 0.1})
    # g and h have no final score -> None.
    assert m.general_change == {"g": None, "h": None}
    text = format_metrics(m)
    assert "FWT n/a" in text and "g n/a" in text
    json.dumps(metrics_to_json(m))


def test_missing_final_score_gives_none_forgetting():
    matrix = _matrix([("base", {"a": 0.0}), ("s_a", {"a": 0.9}), ("s_b", {})])
    m = compute_metrics(matrix, {"a": "s_a"})
    assert m.forgetting == {"a": None}
    assert m.final_average_accuracy is None


def test_one_trained_task_has_no_bwt_or_fwt():
    matrix = _matrix([("base", {"a": 0.0, "g": 1.0}), ("s_a", {"a": 0.7, "g": 0.4})])
    m = compute_metrics(matrix, {"a": "s_a"}, general={"g"})
    assert m.bwt is None and m.fwt is None
    assert m.final_average_accuracy == pytest.approx(0.7)
    assert m.general_change == pytest.approx({"g": -0.6})  # .4 - 1.0
    text = format_metrics(m)
    assert "BWT n/a" in text and "FWT n/a" in text and "g -60.0" in text


def test_no_trained_task():
    matrix = _matrix([("base", {"g": 0.2}), ("pretrain", {"g": 0.9})])
    m = compute_metrics(matrix, {}, general={"g"})
    assert m.average_accuracy == {"base": None, "pretrain": None}
    assert m.final_average_accuracy is None and m.bwt is None and m.forgetting == {}
    assert m.general_change == pytest.approx({"g": 0.7})
    assert "g +70.0" in format_metrics(m)


def test_tasks_trained_in_the_same_last_stage_are_all_left_out_of_bwt():
    matrix = _matrix(
        [
            ("base", {"a": 0.0, "b": 0.0, "c": 0.0}),
            ("s_a", {"a": 1.0, "b": 0.2, "c": 0.0}),
            ("s_bc", {"a": 0.5, "b": 0.6, "c": 0.8}),
        ]
    )
    m = compute_metrics(matrix, {"b": "s_bc", "a": "s_a", "c": "s_bc"})
    assert m.bwt == pytest.approx(-0.5)  # a only: .5 - 1.0
    assert m.fwt == pytest.approx(0.1)  # b: .2 - 0, c: 0 - 0; mean .1
    assert list(m.forgetting) == ["a", "b", "c"]  # ordered by stage


def test_a_stage_evaluated_later_than_training_rows_counts_after_it():
    # The last trained task's stage is not the last row: a later stage (e.g. more pretraining) follows.
    matrix = _matrix(
        [
            ("base", {"a": 0.0, "b": 0.0}),
            ("s_a", {"a": 0.9, "b": 0.0}),
            ("s_b", {"a": 0.5, "b": 0.8}),
            ("cpt", {"a": 0.4, "b": 0.2}),
        ]
    )
    m = compute_metrics(matrix, {"a": "s_a", "b": "s_b"})
    assert m.bwt == pytest.approx(-0.5)  # a only: .4 - .9; b is the last trained task
    assert m.forgetting == pytest.approx({"a": 0.5, "b": 0.6})  # a .9 - .4, b .8 - .2


def test_without_a_base_row_fwt_and_general_change_are_none():
    matrix = _matrix([("s_a", {"a": 0.9, "g": 0.5}), ("s_b", {"a": 0.3, "b": 0.8, "g": 0.4})])
    m = compute_metrics(matrix, {"a": "s_a", "b": "s_b"}, general={"g"})
    assert m.fwt is None and m.general_change == {"g": None}
    assert m.bwt == pytest.approx(-0.6)  # a: .3 - .9


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="no rows"):
        compute_metrics({"tasks": [], "rows": []}, {})
    with pytest.raises(ValueError, match="'s_x' is no row"):
        compute_metrics(THREE, {"a": "s_x"})
    with pytest.raises(ValueError, match="base row"):
        compute_metrics(THREE, {"a": "base"})


def test_json_round_trip():
    m = compute_metrics(THREE, THREE_STAGES, general={"g"})
    data = json.loads(json.dumps(metrics_to_json(m)))
    assert data["bwt"] == pytest.approx(-0.45)
    assert data["never_learned"] == [] and data["average_accuracy"]["base"] is None


# A parity-like task p (even/odd, chance 0.5) and a task q with chance 0.5 that is learned.
PARITY = _matrix(
    [
        ("base", {"p": 0.50, "q": 0.50}),
        ("s_p", {"p": 0.48, "q": 0.50}),
        ("s_q", {"p": 0.52, "q": 0.90}),
    ]
)


def test_a_task_at_its_chance_level_is_never_learned():
    chance = {"p": 0.5, "q": 0.5}
    m = compute_metrics(PARITY, {"p": "s_p", "q": "s_q"}, chance=chance)
    # Learned needs chance + .2 * (1 - chance) = .5 + .1 = .6 after its stage: p .48 is below, q .9 above.
    assert m.never_learned == ["p"]
    assert m.chance == {"p": 0.5, "q": 0.5}
    # The 52% it reached later is guessing as well: p is flagged whatever its final score.
    assert compute_metrics(PARITY, {"p": "s_q", "q": "s_q"}, chance=chance).never_learned == ["p"]
    # Without its chance level, 48% passes the plain 20% threshold: the trap this measure closes.
    assert compute_metrics(PARITY, {"p": "s_p", "q": "s_q"}).never_learned == []
    text = format_metrics(m)
    assert "p 0.0  (never learned: score after its stage 48.0%, chance 50.0%)" in text
    assert "q 0.0  (chance 50.0%)" in text


def test_forgetting_counts_only_the_points_above_chance():
    # Forgetting = max(best, c) - max(final, c), best = the best score at or after the task's own stage.
    matrix = _matrix(
        [
            ("s", {"half": 1.0, "below": 1.0, "part": 0.8, "guess": 0.45, "free": 1.0}),
            ("t", {"half": 0.5, "below": 0.4, "part": 0.7, "guess": 0.30, "free": 0.4}),
        ]
    )
    stages = {t: "s" for t in ("half", "below", "part", "guess", "free")}
    chance = {"half": 0.5, "below": 0.5, "part": 0.5, "guess": 0.5, "free": None}
    m = compute_metrics(matrix, stages, chance=chance)
    assert m.forgetting == pytest.approx(
        {
            "half": 0.5,  # 100 -> 50: all 50 points it had above chance are lost
            "below": 0.5,  # 100 -> 40: the same 50; falling below a guess loses nothing more
            "part": 0.1,  # 80 -> 70: 10 of its 30 points above chance
            "guess": 0.0,  # 45 -> 30: never above chance, nothing to forget
            "free": 0.6,  # unknown chance counts as 0: plain best minus final
        }
    )
    # The averages (and BWT) stay raw scores, as GEM defines them.
    assert m.final_average_accuracy == pytest.approx((0.5 + 0.4 + 0.7 + 0.3 + 0.4) / 5)
    assert json.loads(json.dumps(metrics_to_json(m)))["chance"] == {
        "half": 0.5, "below": 0.5, "part": 0.5, "guess": 0.5, "free": None
    }
