"""The merge guard's alpha search: the largest alpha (by bisection) whose earlier-task mean and general-task
mean each stay within the budget of the start; alpha 1 when the trained model is within it.

Scores here are given as functions of alpha (the search's whole input), so the expected alpha follows from
the rule by hand; the search on real models and lm-eval is tested in tests/cpt/runner/test_merge_step.py.
"""

from __future__ import annotations

from cpt.guards.merge_search import choose_alpha, describe


def _linear(**slopes: tuple[float, float]):
    """score_at for tasks scoring start + slope * alpha points; records the alphas asked for."""
    asked = []

    def score_at(alpha: float) -> dict[str, float]:
        asked.append(alpha)
        return {task: start + slope * alpha for task, (start, slope) in slopes.items()}

    return score_at, asked


def test_alpha_is_the_largest_within_the_budget_to_the_bisection_resolution():
    score_at, asked = _linear(a=(80.0, -40.0), b=(60.0, 0.0), g=(50.0, 0.0))
    choice = choose_alpha(score_at, {"earlier": ["a", "b"], "general": ["g"]}, budget=5.0, steps=3)
    # earlier mean = 70 - 20 alpha >= 65  <=>  alpha <= 0.25
    assert choice.alpha == 0.25
    assert asked == [0.0, 1.0, 0.5, 0.25, 0.375]
    chosen = next(t for t in choice.trials if t.alpha == choice.alpha)
    assert chosen.within and chosen.means["earlier"] >= 70.0 - 5.0
    assert all(not t.within for t in choice.trials if t.alpha > choice.alpha)
    assert "largest alpha within the budget found is 0.25" in choice.reason


def test_the_general_tasks_bind_on_their_own():
    score_at, _ = _linear(a=(80.0, 10.0), g=(50.0, -30.0))  # earlier tasks gain, general knowledge falls
    choice = choose_alpha(score_at, {"earlier": ["a"], "general": ["g"]}, budget=2.0, steps=4)
    assert choice.alpha == 0.0625  # 30 alpha <= 2  <=>  alpha <= 0.0667, to 1/16
    assert choice.trials[1].means == {"earlier": 90.0, "general": 20.0} and not choice.trials[1].within


def test_alpha_1_when_training_stays_within_the_budget():
    score_at, asked = _linear(a=(80.0, -1.5), g=(50.0, 25.0))
    choice = choose_alpha(score_at, {"earlier": ["a"], "general": ["g"]}, budget=2.0, steps=3)
    assert choice.alpha == 1.0 and asked == [0.0, 1.0]
    assert "trained model is kept" in choice.reason


def test_alpha_0_when_every_alpha_tried_is_over_budget():
    score_at, _ = _linear(a=(80.0, -80.0))
    choice = choose_alpha(score_at, {"earlier": ["a"], "general": []}, budget=1.0, steps=2)
    assert choice.alpha == 0.0 and choice.groups == {"earlier": ["a"]}
    assert "start is kept (alpha 0)" in choice.reason


def test_nothing_to_guard_keeps_the_trained_model_and_says_why():
    score_at, asked = _linear()
    choice = choose_alpha(score_at, {"earlier": [], "general": []}, budget=2.0, steps=3)
    assert choice.alpha == 1.0 and not asked and "no earlier or general eval task" in choice.reason
    assert describe(choice.to_record()).startswith("alpha 1 (budget 2 points); no earlier or general")


def test_describe_gives_each_groups_mean_at_start_trained_and_merged():
    score_at, _ = _linear(a=(80.0, -40.0), g=(50.0, 0.0))
    record = choose_alpha(score_at, {"earlier": ["a"], "general": ["g"]}, budget=10.0, steps=3).to_record()
    assert describe(record) == ("alpha 0.25 (budget 10 points); earlier 80.0 at start, 40.0 trained, 70.0 merged; "
                                "general 50.0 at start, 50.0 trained, 50.0 merged")
