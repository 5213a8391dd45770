"""Weight learners against hand-computed traces of the papers' pseudo-code (three updates on fixed
losses, numbers asserted), the direction they move in, and exact continuation from a saved state.

The traces were computed step by step from the papers' Algorithm 1 with Python's `math`, not with
the learners: DoReMi (Xie et al. 2023) and ODM (Albalak et al. 2023), as data_mixing/learners.py states them."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from data_mixing.learners import make_learner

NAMES = ["general", "code", "legal"]
EVEN = {n: 1.0 for n in NAMES}
REFERENCE = {"general": 2.0, "code": 2.0, "legal": 2.0}


def _losses(step: int) -> dict[str, float]:
    """The model improves on every domain, but "code" stays far above the others."""
    return {"general": 2.0 - 0.01 * step, "code": 3.5 - 0.01 * step, "legal": 2.1 - 0.01 * step}


def _signals(learner, step: int) -> dict[str, float]:
    """What the callback would hand the learner: the asked-for domains' losses (doremi: excess)."""
    losses = _losses(step)
    if learner.needs_reference:
        losses = {n: max(v - REFERENCE[n], 0.0) for n, v in losses.items()}
    return {n: losses[n] for n in learner.to_score()}


def _run(learner, steps: int, start: int = 0):
    return [learner.update(_signals(learner, step)) for step in range(start, start + steps)]


def test_doremi_follows_algorithm_1():
    """a' = a_{t-1} exp(eta lambda_t), normalised; a_t = (1 - c) a' + c/K feeds the next step."""
    learner = make_learner("doremi", NAMES, {"general": 0.5, "code": 0.3, "legal": 0.2}, step_size=1.0, smoothing=0.1)
    # t=1, lambda (0, 1, 0.2): a' = (0.5, 0.3e, 0.2e^0.2) = (0.5, 0.815485, 0.244281) / 1.559766
    #      = (0.320561, 0.522826, 0.156614); a_1 = 0.9 a' + 0.1/3
    assert list(learner.update({"general": 0.0, "code": 1.0, "legal": 0.2}).values()) == pytest.approx(
        [0.3218383139557533, 0.5038760410808452, 0.17428564496340138], rel=1e-12)
    # t=2, lambda (0.3, 0.5, 0), starting from the smoothed a_1
    assert list(learner.update({"general": 0.3, "code": 0.5, "legal": 0.0}).values()) == pytest.approx(
        [0.3049554021248615, 0.552742862661385, 0.1423017352137535], rel=1e-12)
    # t=3, no excess anywhere: a' = a_2, and smoothing alone moves it: a_3 = 0.9 a_2 + 0.1/3
    assert list(learner.update({"general": 0.0, "code": 0.0, "legal": 0.0}).values()) == pytest.approx(
        [0.3077931952457087, 0.5308019097285798, 0.16140489502571148], rel=1e-12)
    # The paper's output: the mean of a_1, a_2, a_3
    assert learner.average.tolist() == pytest.approx([0.3115289704421078, 0.5291402711569367, 0.15933075840095545],
                                                     rel=1e-12)


def test_odm_follows_algorithm_1_with_its_schedule():
    """K=2, decay 0.9: R_i = 0.9 R_i + 0.1 L_i / p(i) for the pulled arm only, then
    p = (1 - K e_{t+1}) softmax(e_t R) + e_{t+1}, e_t = min(1/2, sqrt(ln 2 / (2t)))."""
    learner = make_learner("odm", ["general", "code"], {"general": 1.0, "code": 1.0}, reward_decay=0.9)
    assert learner.current() == {"general": 0.5, "code": 0.5}
    # t=1: pull code (p 0.5), loss 3.5: R = (0, 0.7); e_1 = 0.5, e_2 = 0.416277; softmax(0, 0.35)
    assert list(learner.update({"code": 3.5}).values()) == pytest.approx([0.48549628581760884, 0.5145037141823912],
                                                                          rel=1e-12)
    # t=2: pull general (p 0.485496), loss 2.0: R = (0.411950, 0.7); e_2 = 0.416277, e_3 = 0.339889
    assert list(learner.update({"general": 2.0}).values()) == pytest.approx([0.4904121224889675, 0.5095878775110325],
                                                                             rel=1e-12)
    # t=3: pull code (p 0.509588), loss 3.3: R = (0.411950, 1.277582); e_3 = 0.339889, e_4 = 0.294353
    assert list(learner.update({"code": 3.3}).values()) == pytest.approx([0.46996366510594717, 0.5300363348940529],
                                                                          rel=1e-12)
    assert learner.rewards.tolist() == pytest.approx([0.41194959846744517, 1.2775821238366398], rel=1e-12)


def test_odm_follows_algorithm_1_at_a_fixed_rate():
    """K=3, e = 0.1 throughout: p = 0.7 softmax(0.1 R) + 0.1."""
    learner = make_learner("odm", NAMES, EVEN, step_size=0.1, reward_decay=0.9)
    # t=1: code, 3.5 / (1/3): R = (0, 1.05, 0)
    assert list(learner.update({"code": 3.5}).values()) == pytest.approx(
        [0.3250289685159611, 0.3499420629680779, 0.3250289685159611], rel=1e-12)
    # t=2: general, 2.0 / 0.325029: R = (0.615330, 1.05, 0)
    assert list(learner.update({"general": 2.0}).values()) == pytest.approx(
        [0.33452570201062765, 0.34494463574878276, 0.32052966224058954], rel=1e-12)
    # t=3: legal, 2.1 / 0.320530: R = (0.615330, 1.05, 0.655166)
    assert list(learner.update({"legal": 2.1}).values()) == pytest.approx(
        [0.32962737126733765, 0.33982869395900883, 0.33054393477365346], rel=1e-12)


def test_odm_draws_its_arm_from_the_policy_in_effect():
    learner = make_learner("odm", NAMES, EVEN, seed=7)
    learner.weights[:] = [0.7, 0.2, 0.1]
    assert learner.to_score() == learner.to_score()  # the same draw until the update: ranks agree
    draws = Counter()
    for seed in range(3000):
        learner.seed = seed
        (arm,) = learner.to_score()
        draws[arm] += 1
    assert [draws[n] / 3000 for n in NAMES] == pytest.approx([0.7, 0.2, 0.1], abs=0.03)


def test_odm_observes_one_domain_per_update():
    with pytest.raises(ValueError, match="one domain per update"):
        make_learner("odm", NAMES, EVEN).update(_losses(0))


@pytest.mark.parametrize("kind", ["doremi", "odm"])
def test_weight_moves_towards_the_high_loss_domain(kind):
    learner = make_learner(kind, NAMES, EVEN, step_size=None, smoothing=1e-3)
    weights = _run(learner, 30)[-1]
    assert weights["code"] > 1.0 / 3 and weights["code"] == max(weights.values()), weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert min(weights.values()) > 0  # smoothing / exploration keep every domain alive


def test_doremi_smoothing_bounds_every_weight():
    learner = make_learner("doremi", NAMES, EVEN, step_size=50.0, smoothing=0.3)
    weights = _run(learner, 5)[-1]
    assert min(weights.values()) >= 0.3 / 3 - 1e-12


def test_static_keeps_the_recipe_weights():
    learner = make_learner("static", NAMES, {"general": 3, "code": 1, "legal": 0})
    assert _run(learner, 3)[-1] == {"general": 0.75, "code": 0.25, "legal": 0.0}


@pytest.mark.parametrize("kind", ["static", "doremi", "odm"])
def test_restored_learner_continues_identically(kind):
    original = make_learner(kind, NAMES, EVEN, seed=3)
    _run(original, 7)
    saved = json.loads(json.dumps(original.state_dict()))
    restored = make_learner(kind, NAMES, EVEN, seed=3)
    restored.load_state_dict(saved)
    assert _run(restored, 5, start=7) == _run(original, 5, start=7)
    with pytest.raises(ValueError, match="learner state is for"):
        make_learner("static" if kind != "static" else "odm", NAMES, EVEN).load_state_dict(saved)


def test_state_saved_before_the_papers_forms_is_refused():
    learner = make_learner("doremi", NAMES, EVEN)
    old = {"kind": "DoReMiLearner", "names": NAMES, "weights": [1 / 3] * 3, "updates": 4, "log_alpha": [0.0] * 3}
    with pytest.raises(ValueError, match="restart the stage"):
        learner.load_state_dict(old)
