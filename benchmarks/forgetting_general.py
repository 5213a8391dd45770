"""General knowledge of finished forgetting runs on more rows: the base and each run's last checkpoint.

    python benchmarks/forgetting_general.py --workdir /work/bench-runs/steps100_b --rows 200 \
        --runs freeze2_replay_added-s0-b freeze2_replay_added-s1-b multitask_long-s0-b ... --label steps100_b_4seeds

The forgetting benchmark scores every task on its setting's `eval_examples` rows after every stage (50 on
smollm2: one question is 2 points). What a method keeps of general knowledge is a difference of two scores
on the same questions, so it needs more rows than the new tasks' matrix; scoring every stage on them would
double the benchmark's time. This script scores only the two checkpoints the difference needs, on the first
`--rows` rows of world_capitals (3-shot completions, exact match, as the benchmark does) and world_regions
(`acc`, the task's default metric, and `acc_norm`). The results are cached under WORKDIR/general-rows{N}/,
one folder per checkpoint, so the runs' own eval results are not touched and the shared SmolLM2 base is
scored once.

The rows past the benchmark's `eval_examples` are the merge guard's held-out rows (cpt/runner/held_out.py),
so a merge run's score here includes the rows that chose its alpha: the JSON marks such runs.
JSON: benchmarks/results/forgetting_general_LABEL.json; table: docs/forgetting_general_LABEL.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
from pathlib import Path

from common import machine, write_result

from cpt.core.manifest import DONE, Manifest

REPO = Path(__file__).resolve().parents[1]
# (column, lm-eval task, metric key in its results file)
SCORES = (("capitals", "world_capitals", "exact_match,strip"),
          ("regions_acc", "world_regions", "acc,none"),
          ("regions_acc_norm", "world_regions", "acc_norm,none"))
RUN_NAME = re.compile(r"^(?P<method>.+)-s(?P<seed>\d+)(?:-(?P<order>[ab]))?$")


def checkpoints(run_dir: Path) -> tuple[Path, Path]:
    """The base model folder and the last stage's model folder of a finished run."""
    manifest = Manifest.load(run_dir)
    done = [rec for rec in (manifest.stages.values() if manifest else ()) if rec.status == DONE]
    if not done or len(done) != len(manifest.stages):
        raise SystemExit(f"{run_dir}: not a finished run (manifest.json with every stage done)")
    return Path(manifest.base_model), run_dir / done[-1].output


def results_dir(checkpoint: Path, cache: Path) -> Path:
    """Where scores_of keeps `checkpoint`'s lm-eval results (and samples) under `cache`: one folder per checkpoint."""
    return cache / hashlib.sha1(str(checkpoint.resolve()).encode()).hexdigest()[:12]


def scores_of(checkpoint: Path, rows: int, cache: Path) -> dict[str, float]:
    """Each SCORES column (in %) of `checkpoint` on the first `rows` rows, cached per checkpoint folder."""
    from eval.general_tasks import ensure_general_tasks
    from eval.harness import EvalSettings, evaluate_checkpoint
    from eval.tasks import TaskCatalog

    folder = results_dir(checkpoint, cache)
    settings = EvalSettings(limit=rows, apply_chat_template=False)  # 3-shot completions, as the benchmark
    tasks = sorted({task for _, task, _ in SCORES})
    evaluate_checkpoint(checkpoint, tasks, TaskCatalog([ensure_general_tasks()]), settings, folder)
    results = {task: json.loads((folder / f"{task}.json").read_text())["results"][task] for task in tasks}
    return {column: 100 * results[task][key] for column, task, key in SCORES}


def run_identity(name: str) -> tuple[str, int]:
    """(group, seed) of a run named METHOD-sSEED[-ORDER], or FOLDER/METHOD-sSEED[-ORDER] for a run of another
    benchmark call: the group is METHOD or FOLDER/METHOD, so the same method from two calls (other steps, say)
    stays apart."""
    match = RUN_NAME.match(Path(name).name)
    if match is None:
        raise SystemExit(f"{name}: expected a benchmark run name, METHOD-sSEED[-ORDER]")
    folder = Path(name).parent
    group = match["method"] if folder == Path(".") else f"{folder.as_posix()}/{match['method']}"
    return group, int(match["seed"])


def score_run(workdir: Path, name: str, rows: int, cache: Path) -> dict:
    """The base and last scores of run `name` in `workdir` and their change."""
    method, seed = run_identity(name)
    run_dir = workdir / name
    base, last = checkpoints(run_dir)
    before, after = scores_of(base, rows, cache), scores_of(last, rows, cache)
    merged = any((run_dir / "stages").glob("*/merge"))
    return {"run": name, "method": method, "seed": seed, "base": before,
            "final": after, "change": {c: after[c] - before[c] for c in before}, "merge_held_out_rows_included": merged}


def per_method(runs: list[dict]) -> dict[str, dict]:
    """Mean and population std over seeds of each column's change, per method (the benchmark's spread)."""
    methods: dict[str, dict] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        mine = [r for r in runs if r["method"] == method]
        methods[method] = {"seeds": [r["seed"] for r in mine]}
        for column, _, _ in SCORES:
            changes = [r["change"][column] for r in mine]
            methods[method][column] = {"change": statistics.mean(changes), "change_std": statistics.pstdev(changes),
                                       "per_seed": changes}
    return methods


def markdown(runs: list[dict], methods: dict[str, dict], args: argparse.Namespace) -> str:
    base = runs[0]["base"]
    lines = [f"# General knowledge on {args.rows} rows: {args.label}", "",
             (f"`python benchmarks/forgetting_general.py --workdir {args.workdir} --rows {args.rows} --runs "
             f"{' '.join(args.runs)} --label {args.label}` on {machine()}."), "",
             (f"Base (the first run's): capitals {base['capitals']:.1f}, regions acc {base['regions_acc']:.1f}, "
             f"regions acc_norm {base['regions_acc_norm']:.1f}. Change from the base to the last checkpoint, in "
             "points, mean ± std over seeds (per seed in brackets):"), "",
             "| method | capitals | regions (acc) | regions (acc_norm) |", "|---|---|---|---|"]
    for method, m in methods.items():
        cells = [f"{m[c]['change']:+.1f} ± {m[c]['change_std']:.1f} ({', '.join(f'{v:+.1f}' for v in m[c]['per_seed'])})"
                 for c, _, _ in SCORES]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="the forgetting benchmark's --workdir")
    parser.add_argument("--runs", nargs="+", required=True,
                        help="run names in it, e.g. naive-s0-b, or FOLDER/naive-s0-b for runs of another call")
    parser.add_argument("--rows", type=int, default=200, help="rows of each task (capitals 247, regions 250)")
    parser.add_argument("--label", required=True, help="names the outputs: forgetting_general_LABEL.json/.md")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    cache = args.workdir / f"general-rows{args.rows}"
    runs = []
    for name in args.runs:
        runs.append(score_run(args.workdir, name, args.rows, cache))
        print(json.dumps(runs[-1]), flush=True)
    methods = per_method(runs)
    report = markdown(runs, methods, args)
    print(report)
    write_result({"benchmark": f"forgetting_general_{args.label}", "machine": machine(), "rows": args.rows,
                  "table": [], "methods": methods, "runs": runs}, args.out, f"forgetting_general_{args.label}.json")
    (REPO / "docs" / f"forgetting_general_{args.label}.md").write_text(report)


if __name__ == "__main__":
    main()
