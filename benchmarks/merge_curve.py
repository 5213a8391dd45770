"""What the merge guard would trade on a finished run: held-out accuracy of start + alpha * (trained - start) for
one stage, at each alpha, on the stage's own task, the earlier tasks and the general ones.

    python benchmarks/merge_curve.py RUN_DIR --stage t3_addition [--alphas 0 0.25 0.5 0.75 1] [--rows 50]

The start is the previous stage's model and the trained one the stage's (RUN_DIR/stages/NAME/model: the run must
keep its stage models, as the forgetting benchmark's runs do). The rows are the merge guard's held-out rows
(cpt/runner/held_out.py), never the evaluation rows, scored as the guard scores them (cpt/runner/merge_step.py);
the stage's own task is scored on its held-out rows too, so each alpha shows what it keeps of the new task beside
what it gives back of the earlier ones. Prints the table and writes merge_curve_<run>_<stage>.json to --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

from common import machine, row, write_result

from cpt.core.layout import RunLayout
from cpt.errors import UserError


def curve_recipe(raw: dict, stage: str, rows: int) -> dict:
    """The run's recipe with `merge:` on `stage` and every trained eval task counted as trained in the first stage,
    so that the merge guard's held-out tasks of `stage` include its own task (and every other trained one)."""
    raw = copy.deepcopy(raw)
    first = raw["stages"][0]["name"]
    tasks = [task if isinstance(task, dict) else {"name": task} for task in raw["eval"]["tasks"]]
    raw["eval"]["tasks"] = [task if task.get("general") else {**task, "trained_in": first} for task in tasks]
    for spec in raw["stages"]:
        if spec["name"] == stage:
            spec["merge"] = {"budget": 0, "rows": rows}
    return raw


def measure(run_dir: Path, stage: str, alphas: list[float], rows: int, workdir: Path) -> dict:
    """Every alpha's held-out scores (points) for `stage` of the run in `run_dir`."""
    from cpt.guards.merge import Interpolation
    from cpt.recipe.load import load_recipe
    from cpt.recipe.yaml_io import safe_load
    from cpt.runner.held_out import write_held_out_tasks
    from cpt.runner.merge_step import held_out_scorer

    if not (run_dir / "recipe.yaml").is_file():
        raise UserError(f"{run_dir}: not a run folder (no recipe.yaml in it)")
    raw = safe_load((run_dir / "recipe.yaml").read_text())  # the recipe as written (recipe.json: resolved)
    names = [spec["name"] for spec in raw["stages"]]
    if stage not in names[1:]:
        raise UserError(f"--stage: '{stage}' is not a stage after the first of {run_dir} (stages: {', '.join(names)})")
    index = names.index(stage)
    (workdir / "recipe.json").write_text(json.dumps(curve_recipe(raw, stage, rows)))
    recipe = load_recipe(workdir / "recipe.json")
    tasks = write_held_out_tasks(recipe, index, workdir / "tasks")
    layout = RunLayout(run_dir)
    start, trained = layout.stage(names[index - 1]).model, layout.stage(stage).model
    model, scorer = held_out_scorer(recipe, trained, tasks)
    weights = Interpolation(start, trained)
    curve = []
    for alpha in alphas:
        began = time.perf_counter()
        weights.apply(model, alpha)
        scores = {task: round(100.0 * score, 1) for task, score in scorer().items()}
        curve.append({"alpha": alpha, "scores": scores, "seconds": round(time.perf_counter() - began, 1)})
    return {"run": str(run_dir), "stage": stage, "start": str(start), "trained": str(trained),
            "groups": {"trained": tasks.groups["earlier"], "general": tasks.groups["general"]},
            "rows": tasks.rows, "held_out": tasks.sources, "curve": curve}


def mean_trained(point: dict, trained: list[str]) -> float:
    """The mean of one alpha's scores over the trained tasks (the general ones apart)."""
    return round(sum(point["scores"][task] for task in trained) / len(trained), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--rows", type=int, default=50, help="held-out rows per task")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        try:
            result = measure(args.run_dir, args.stage, args.alphas, args.rows, Path(workdir))
        except UserError as exc:
            print(f"merge_curve: {exc}", file=sys.stderr)
            sys.exit(2)
    trained, general = result["groups"]["trained"], result["groups"]["general"]
    curve = result["curve"]
    means = [mean_trained(point, trained) for point in curve]
    print(f"| alpha | {' | '.join(trained + general)} | mean of the trained tasks |")
    print("|---" * (len(trained) + len(general) + 2) + "|")
    for point, mean in zip(curve, means, strict=True):
        cells = [f"{point['scores'][task]:g}" for task in trained + general]
        print(f"| {point['alpha']:g} | {' | '.join(cells)} | {mean:g} |")
    full = next((mean for point, mean in zip(curve, means, strict=True) if point["alpha"] == 1.0), None)
    table = [row(f"{args.stage}: mean held-out accuracy of the trained tasks at alpha {point['alpha']:g}",
                 mean, full, "alpha 1 (the trained model)", "%", difference=True)
             for point, mean in zip(curve, means, strict=True)]
    write_result({"benchmark": "merge_curve", "machine": machine(), **result, "table": table}, args.out,
                 f"merge_curve_{args.run_dir.name}_{args.stage}.json")


if __name__ == "__main__":
    main()
