"""benchmarks/mixing.py and mixing_summary.py: the steps to uniform's loss are counted against the same
seed's target and on the worst domain; the distance from uniform; and, on a real ODM stage, every
domain is scored every 10 steps although the bandit scores only the domain it draws.
Run: pytest tests/benchmarks/test_mixing.py"""

from __future__ import annotations

import json

import pytest
from mixing_summary import compact, distance_from_uniform, steps_to_reach, summarise

from cpt.core.layout import RunLayout


def _run(method, seed, curve, final_weights):
    return {"method": method, "seed": seed, "curve": curve, "final_weights": final_weights,
            "weights": [(0, {"a": 0.5, "b": 0.5}), (curve[-1][0], final_weights)],
            "validation_loss": dict(curve[-1][1])}


def test_steps_count_the_worst_domain_against_the_same_seeds_uniform():
    results = [
        _run("uniform", 0, [(10, {"a": 3.0, "b": 1.0}), (20, {"a": 2.0, "b": 1.0})], {"a": 0.5, "b": 0.5}),
        _run("uniform", 1, [(10, {"a": 3.0, "b": 1.0}), (20, {"a": 2.5, "b": 1.0})], {"a": 0.5, "b": 0.5}),
        # seed 0: `a` is at the target at step 10 but `b` (the worst then) only at 20
        _run("odm", 0, [(10, {"a": 2.0, "b": 2.2}), (20, {"a": 1.9, "b": 1.5})], {"a": 0.8, "b": 0.2}),
        # seed 1: 2.4 reaches seed 1's target 2.5 though not seed 0's 2.0
        _run("odm", 1, [(10, {"a": 2.4, "b": 1.0}), (20, {"a": 2.4, "b": 1.0})], {"a": 0.7, "b": 0.3}),
    ]
    assert steps_to_reach(results[2]["curve"], 2.0) == 20 and steps_to_reach(results[3]["curve"], 2.0) is None

    rows, targets = summarise(results, ["uniform", "odm"], ["a", "b"], [0, 1])

    assert targets == {0: 2.0, 1: 2.5}
    uniform, odm = rows
    assert uniform["steps to uniform's final worst"] == "20 ± 0 (2/2 reached)"
    assert odm["steps to uniform's final worst"] == "15 ± 7 (2/2 reached)"
    assert odm["steps / uniform's"] == "0.75x"
    assert odm["final weights"] == "0.75 ± 0.07 / 0.25 ± 0.07"
    assert odm["max distance from uniform"] == "0.25 ± 0.07"  # seed 0: |0.8 - 0.5|; seed 1: |0.7 - 0.5|

    # the copy for docs/results/: per run what the table is made of, without the curves
    small = compact({"target_worst_loss_per_seed": {"0": 2.0, "1": 2.5}, "runs": results})["runs"]
    assert [r["steps_to_target"] for r in small] == [20, 20, 20, 10]
    assert small[2]["final_held_out_loss"] == {"a": 1.9, "b": 1.5} and small[2]["max_distance_from_uniform"] == pytest.approx(0.3)
    assert all("curve" not in r and "weights" not in r for r in small)


def test_distance_from_uniform():
    assert distance_from_uniform({"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}) == 0.0
    assert distance_from_uniform({"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}) == pytest.approx(0.75)


@pytest.mark.slow
def test_every_domain_is_scored_for_odm(tmp_path):
    """ODM's own trajectory holds one domain's loss per update; the benchmark's curve holds all four."""
    from common import run_recipe_dict
    from mixing import EVERY, FOUR, every_domain_scored

    stage = {"name": "mix", "kind": "cpt", "domains": [{"name": d, "data": {"toy": d}} for d in FOUR],
             "mixing": {"learner": "odm", "update_every": 5, "held_out_sequences": 2},
             "train": {"max_steps": 2 * EVERY, "per_device_train_batch_size": 4, "max_length": 32,
                       "save_steps": 1000, "disable_tqdm": True}}
    recipe = {"run": {"name": "t", "output_dir": str(tmp_path), "seed": 0}, "model": {"name_or_path": "toy"},
              "stages": [stage]}
    with every_domain_scored() as curves:
        run_dir, _ = run_recipe_dict(recipe, tmp_path / "recipe.json")
    path = RunLayout(run_dir).stage("mix").mixture_log
    scored_by_odm = [e for e in json.loads(path.read_text()) if "held_out_loss" in e]
    assert [e["step"] for e in scored_by_odm] == [5, 10, 15, 20]
    assert all(len(e["held_out_loss"]) == 1 for e in scored_by_odm)
    curve = curves[str(path)]
    assert [step for step, _ in curve] == [EVERY, 2 * EVERY]
    assert all(sorted(losses) == sorted(FOUR) for _, losses in curve)
    for step, losses in curve:  # the drawn domain's loss is the learner's own, not scored again
        (name, loss), = next(e for e in scored_by_odm if e["step"] == step)["held_out_loss"].items()
        assert losses[name] == loss
