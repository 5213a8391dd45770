"""A finished forgetting run's last model pulled back towards the run's base: base + alpha * (last - base).

    python benchmarks/forgetting_interpolate.py --run /work/bench-runs/steps100_a/freeze2_replay_added-s0 \
        --alphas 0 0.5 0.7 0.85 1 --rows 200 --label freeze2_a

The merge guard (cpt/guards/merge.py) interpolates each stage towards that stage's start, so over a sequence it
bounds each stage's loss, not the sum. This asks what one interpolation towards the run's base (WiSE-FT's
setting: the zero-shot model and the fine-tuned one) would trade: for each alpha, the new tasks' accuracy on the
run's own eval rows and general knowledge on the first `--rows` rows (as benchmarks/forgetting_general.py scores
it, with the cache that script keeps for `--workdir` the run's parent folder). Alpha 1 is the run's last model
as it is and reads its cached eval; alpha 0 is the base.
The merged models are written under WORKDIR/interpolate/RUN/a<alpha> (WORKDIR: the run's folder's parent).
JSON: benchmarks/results/forgetting_interpolate_LABEL.json; table: docs/forgetting_interpolate_LABEL.md.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from common import machine, write_result
from forgetting_general import checkpoints, scores_of

from cpt.core.layout import RunLayout
from cpt.guards.merge import write_merged
from cpt.recipe.schema import Recipe
from cpt.runner.evaluation import CheckpointEvaluator
from eval.files import read_json

REPO = Path(__file__).resolve().parents[1]


def interpolated(run_dir: Path, alpha: float, base: Path, last: Path) -> tuple[Path, Path]:
    """(model folder, eval results folder) of `alpha`: the base, the last model, or a merged model written once."""
    folder = run_dir.parent / "interpolate" / run_dir.name
    if alpha == 1.0:
        return last, RunLayout(run_dir).results(last.parent.name)  # the run's own cached eval of its last stage
    model = base if alpha == 0.0 else folder / f"a{alpha:g}"
    if not (model / "config.json").is_file():
        write_merged(base, last, alpha, model)
    return model, folder / f"eval-a{alpha:g}"


def score_alphas(run_dir: Path, alphas: list[float], rows: int) -> list[dict]:
    """Per alpha: each new task's accuracy (%), their average, and the general scores and changes (points)."""
    recipe = Recipe.model_validate(read_json(RunLayout(run_dir).recipe))
    spec = recipe.eval.model_copy(update={"tasks": [t for t in recipe.eval.tasks if not t.general]})
    evaluator = CheckpointEvaluator(spec, recipe.model, run_dir)
    base, last = checkpoints(run_dir)
    cache = run_dir.parent / f"general-rows{rows}"
    before = scores_of(base, rows, cache)
    table = []
    for alpha in alphas:
        model, results = interpolated(run_dir, alpha, base, last)
        tasks = {name: 100 * score for name, score in evaluator(model, results).items()}
        general = scores_of(model, rows, cache)
        table.append({"alpha": alpha, "tasks": tasks, "average": statistics.mean(tasks.values()),
                      "general": general, "change": {column: general[column] - before[column] for column in general}})
        print(table[-1], flush=True)
    return table


def markdown(table: list[dict], args: argparse.Namespace) -> str:
    names = list(table[0]["tasks"])
    lines = [f"# The last model towards the base: {args.label}", "",
             (f"`python benchmarks/forgetting_interpolate.py --run {args.run} --alphas "
              f"{' '.join(f'{a:g}' for a in args.alphas)} --rows {args.rows} --label {args.label}` on {machine()}."),
             "", f"New tasks on the run's eval rows; general change in points on the first {args.rows} rows, from the base.",
             "",
             f"| alpha | {' | '.join(names)} | average | capitals | regions (acc) | regions (acc_norm) |",
             "|---" * (len(names) + 5) + "|"]
    for row in table:
        cells = [f"{row['tasks'][n]:.0f}" for n in names] + [f"{row['average']:.1f}"]
        cells += [f"{row['change'][c]:+.1f}" for c in ("capitals", "regions_acc", "regions_acc_norm")]
        lines.append(f"| {row['alpha']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a finished forgetting benchmark run's folder")
    parser.add_argument("--alphas", type=float, nargs="+", required=True, help="shares of the run's update kept")
    parser.add_argument("--rows", type=int, default=200, help="rows of each general task (capitals 247, regions 250)")
    parser.add_argument("--label", required=True, help="names the outputs: forgetting_interpolate_LABEL.json/.md")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    table = score_alphas(args.run, args.alphas, args.rows)
    report = markdown(table, args)
    print(report)
    write_result({"benchmark": f"forgetting_interpolate_{args.label}", "machine": machine(), "run": str(args.run),
                  "rows": args.rows, "table": table}, args.out, f"forgetting_interpolate_{args.label}.json")
    (REPO / "docs" / f"forgetting_interpolate_{args.label}.md").write_text(report)


if __name__ == "__main__":
    main()
