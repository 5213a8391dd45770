"""The run's matrix and metrics files and summary lines: chance levels recorded, tasks matched without trained_in."""

from __future__ import annotations

import json

import pytest

from cpt.recipe.schema import Recipe
from cpt.runner.results import write_matrix

TASKS = ["maxof", "sortnums", "dedup", "parity"]
# A new user's run: task i trained in stage i, each forgetting some of it later; parity is even/odd.
MATRIX = [
    ("base", {"maxof": 0.1, "sortnums": 0.0, "dedup": 0.0, "parity": 0.5}),
    ("first", {"maxof": 0.9, "sortnums": 0.1, "dedup": 0.0, "parity": 0.5}),
    ("second", {"maxof": 0.7, "sortnums": 0.8, "dedup": 0.1, "parity": 0.5}),
    ("third", {"maxof": 0.6, "sortnums": 0.6, "dedup": 0.9, "parity": 0.5}),
    ("fourth", {"maxof": 0.5, "sortnums": 0.6, "dedup": 0.7, "parity": 0.52}),
]


def _user_recipe(tasks: list[str] = TASKS) -> Recipe:
    """tasks/<name>/train.jsonl per stage and tasks/<name>/test.jsonl in eval, no trained_in anywhere."""
    stages = ["first", "second", "third", "fourth"]
    return Recipe.model_validate({
        "run": {"name": "r"},
        "stages": [{"name": s, "kind": "sft", "data": {"path": f"tasks/{t}/train.jsonl"}} for s, t in zip(stages, TASKS)],
        "eval": {"tasks": [{"name": t, "path": f"tasks/{t}/test.jsonl"} for t in tasks]},
    })


def test_user_layout_without_trained_in_gets_average_and_bwt(tmp_path):
    lines = "\n".join(write_matrix(tmp_path, _user_recipe(), MATRIX, TASKS, chance={"parity": 0.5, "maxof": 0.25}))
    # Final average (.5 + .6 + .7 + .52) / 4 = 58.0%; BWT over maxof, sortnums, dedup:
    # (.5 - .9 + .6 - .8 + .7 - .9) / 3 = -.8 / 3 = -26.7 points.
    assert "final average accuracy 58.0%" in lines and "BWT -26.7" in lines
    assert "not matched" not in lines
    # parity: 52% after its stage, chance 50%: never learned; maxof forgot 90 -> 50 above its 25% chance: 40.
    assert "parity 0.0  (never learned: score after its stage 52.0%, chance 50.0%)" in lines
    assert "maxof 40.0  (chance 25.0%)" in lines
    table = lines.splitlines()
    last_row = next(i for i, line in enumerate(table) if line.startswith("fourth"))
    assert table[last_row + 2].split() == ["chance", "25.0", "-", "-", "50.0"]  # the chance row, under a rule
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["task_stage"] == dict(zip(TASKS, ["first", "second", "third", "fourth"]))
    assert metrics["unmatched_tasks"] == {} and metrics["never_learned"] == ["parity"]
    assert metrics["chance"] == {"maxof": 0.25, "sortnums": None, "dedup": None, "parity": 0.5}
    matrix = json.loads((tmp_path / "eval" / "matrix.json").read_text())
    assert matrix["chance"] == metrics["chance"]


def test_unmatched_task_is_named_in_the_summary_with_its_trained_in_line(tmp_path):
    recipe = _user_recipe([*TASKS[:3], "heldout"])  # nothing is named or placed like "heldout"
    lines = "\n".join(write_matrix(tmp_path, recipe, [(c, {**s, "heldout": s["parity"]}) for c, s in MATRIX],
                                   [*TASKS[:3], "heldout"]))
    assert "not matched to the stage that trains them (so left out of average accuracy, BWT and forgetting): heldout" \
        in lines
    assert "- {name: heldout, path: tasks/heldout/test.jsonl, trained_in: fourth}" in lines
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["unmatched_tasks"] == {"heldout": []}


def test_only_unmatched_tasks_means_n_a_with_the_reason(tmp_path):
    recipe = Recipe.model_validate({
        "run": {"name": "r"},
        "stages": [{"name": "a", "kind": "sft", "data": {"path": "d1/x.jsonl"}},
                   {"name": "b", "kind": "sft", "data": {"path": "d2/y.jsonl"}}],
        "eval": {"tasks": [{"name": "p", "path": "t/p.jsonl"}, {"name": "q", "path": "t/q.jsonl"}]},
    })
    matrix = [("base", {"p": 0.0, "q": 0.0}), ("a", {"p": 0.9, "q": 0.1}), ("b", {"p": 0.5, "q": 0.9})]
    lines = "\n".join(write_matrix(tmp_path, recipe, matrix, ["p", "q"]))
    assert "final average accuracy n/a" in lines and "BWT n/a" in lines
    # Two tasks, two stages no task claimed: each line offers the stage in the same order.
    assert "- {name: p, path: t/p.jsonl, trained_in: a}" in lines
    assert "- {name: q, path: t/q.jsonl, trained_in: b}" in lines


@pytest.mark.parametrize("chance", [None, {}])
def test_without_chance_levels_nothing_changes(tmp_path, chance):
    lines = "\n".join(write_matrix(tmp_path, _user_recipe(), MATRIX, TASKS, chance=chance))
    assert "parity 0.0\n" in lines + "\n" and "never learned" not in lines  # 50% passes the plain 20% threshold
    assert "chance" not in lines.split("continual-learning")[0]  # no chance row under the matrix


@pytest.mark.slow
def test_real_run_on_a_users_own_tasks_without_trained_in(tmp_path, toy_dir, capsys):
    """tasks/<name>/train.jsonl + test.jsonl, stage names that do not name the tasks: the folder decides."""
    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe
    from cpt.toy.tasks import task_splits
    from tests.helpers import write_recipe

    train, test = task_splits("date_format", seed=0)
    parity = [{"prompt": f"parity of {n} =", "completion": f" {'even' if n % 2 == 0 else 'odd'}",
               "answer": "even" if n % 2 == 0 else "odd"} for n in range(300)]
    files = {"dates": (train[:200], test), "parity": (parity[:200], parity[200:])}
    for name, (train_rows, test_rows) in files.items():
        folder = tmp_path / "tasks" / name
        folder.mkdir(parents=True)
        for split, rows in (("train", train_rows), ("test", test_rows)):
            (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = {"max_steps": 10, "per_device_train_batch_size": 16, "learning_rate": 3.0e-3, "save_steps": 10,
                "logging_steps": 5, "disable_tqdm": True}
    recipe = {
        "run": {"name": "mine", "output_dir": str(tmp_path / "runs")},
        "stages": [{"name": f"stage{i}", "kind": "sft", "data": {"path": str(tmp_path / "tasks" / n / "train.jsonl")},
                    "train": dict(settings)} for i, n in enumerate(files, start=1)],
        "eval": {"tasks": [{"name": n, "path": str(tmp_path / "tasks" / n / "test.jsonl")} for n in files],
                 "max_examples": 20},
    }
    path = write_recipe(tmp_path / "r.yaml", recipe)
    summary = run_recipe(load_recipe(path), path.read_text())
    out = "\n".join(summary.lines)
    assert "final average accuracy n/a" not in out and "BWT n/a" not in out and "not matched" not in out
    metrics = json.loads((summary.run_dir / "eval" / "metrics.json").read_text())
    assert metrics["task_stage"] == {"dates": "stage1", "parity": "stage2"}
    assert metrics["final_average_accuracy"] is not None and metrics["bwt"] is not None
    # parity's chance: the first 20 test rows (n = 200..219) are half even, half odd.
    assert metrics["chance"]["parity"] == pytest.approx(0.5)
    assert json.loads((summary.run_dir / "eval" / "matrix.json").read_text())["chance"]["parity"] == pytest.approx(0.5)
