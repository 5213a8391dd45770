"""Weight learners: each moves weight towards a domain whose loss is made artificially high,
and a learner restored from its saved state continues exactly as the original."""

from __future__ import annotations

import json

import pytest

from data_mixing.learners import make_learner

NAMES = ["general", "code", "legal"]
EVEN = {n: 1.0 for n in NAMES}
REFERENCE = {"general": 2.0, "code": 2.0, "legal": 2.0}


def _losses(step: int) -> dict[str, float]:
    """The model improves on every domain, but "code" stays far above the others."""
    return {"general": 2.0 - 0.01 * step, "code": 3.5 - 0.01 * step, "legal": 2.1 - 0.01 * step}


def _run(learner, steps: int, start: int = 0):
    return [learner.update(_losses(step)) for step in range(start, start + steps)]


@pytest.mark.parametrize("kind", ["doremi", "odm"])
def test_weight_moves_towards_the_high_loss_domain(kind):
    learner = make_learner(kind, NAMES, EVEN, step_size=None, smoothing=1e-3)
    if kind == "doremi":
        learner.set_reference(REFERENCE)
    weights = _run(learner, 30)[-1]
    others = max(w for n, w in weights.items() if n != "code")
    assert weights["code"] > 1.0 / 3 and weights["code"] > 1.2 * others, weights
    assert sum(weights.values()) == pytest.approx(1.0)
    assert min(weights.values()) > 0  # smoothing / exploration keep every domain alive


def test_doremi_ignores_domains_already_better_than_the_reference():
    learner = make_learner("doremi", NAMES, EVEN, step_size=1.0, smoothing=0.0)
    learner.set_reference({"general": 2.5, "code": 3.0, "legal": 2.5})
    weights = learner.update({"general": 2.0, "code": 4.0, "legal": 2.0})  # excess 0, 1, 0
    assert weights["general"] == pytest.approx(weights["legal"])
    assert weights["code"] / weights["general"] == pytest.approx(2.718281828, rel=1e-6)  # exp(step 1 x excess 1)


def test_doremi_smoothing_bounds_every_weight():
    learner = make_learner("doremi", NAMES, EVEN, step_size=50.0, smoothing=0.3)
    learner.set_reference(REFERENCE)
    weights = _run(learner, 5)[-1]
    assert min(weights.values()) >= 0.3 / 3 - 1e-12


def test_doremi_needs_reference_losses():
    with pytest.raises(RuntimeError, match="set_reference"):
        make_learner("doremi", NAMES, EVEN).update(_losses(0))


def test_static_keeps_the_recipe_weights():
    learner = make_learner("static", NAMES, {"general": 3, "code": 1, "legal": 0})
    assert _run(learner, 3)[-1] == {"general": 0.75, "code": 0.25, "legal": 0.0}


@pytest.mark.parametrize("kind", ["static", "doremi", "odm"])
def test_restored_learner_continues_identically(kind):
    original = make_learner(kind, NAMES, EVEN)
    if kind == "doremi":
        original.set_reference(REFERENCE)
    _run(original, 7)
    saved = json.loads(json.dumps(original.state_dict()))
    restored = make_learner(kind, NAMES, EVEN)
    restored.load_state_dict(saved)
    assert _run(restored, 5, start=7) == _run(original, 5, start=7)
    with pytest.raises(ValueError, match="learner state is for"):
        make_learner("static" if kind != "static" else "odm", NAMES, EVEN).load_state_dict(saved)
