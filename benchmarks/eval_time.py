"""Evaluation time: the embedded suite on one checkpoint, ours against plain lm-eval, per batch size;
the cached rerun; and the share of the quickstart's wall time spent evaluating.

    python benchmarks/eval_time.py [--mode quick|full] [--batch-sizes 8 32 64 128] [--repeats 3]
                                   [--run-dir runs/quickstart] [--out benchmarks/results]

--mode quick (the default) times batch sizes 32 and 64 with 2 repeats; full, 8, 32, 64 and 128 with 3.

Without --run-dir the quickstart runs first (about 4 minutes on 2 CPU cores) into a temporary folder;
its eval/timings.json gives the evaluation share, and its last checkpoint is the one timed. "Ours" is
eval.harness.evaluate_checkpoint with an empty cache (model load + lm-eval with an in-memory model);
"plain" is lm_eval.simple_evaluate(model="hf", model_args="pretrained=...") on the same tasks and
limit. Runs alternate (ours, plain, ...) and medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_common_args, machine, parse_with_mode, row, write_result

from cpt.core.layout import RunLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TASKS = ["date_format", "sorting", "addition", "reversal", "counting", "capitals"]
LIMIT = 100
MODE_DEFAULTS = {"quick": {"batch_sizes": [32, 64], "repeats": 2},
                 "full": {"batch_sizes": [8, 32, 64, 128], "repeats": 3}}
DEFAULT_BATCH_SIZE = 64  # eval.harness's default


def run_quickstart(out_dir: Path) -> Path:
    command = [sys.executable, "-m", "cpt", "run", "recipes/quickstart.yaml", f"run.output_dir={out_dir}"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print(f"quickstart ran in {time.perf_counter() - started:.0f}s")
    return out_dir / "quickstart"


def eval_share(run_dir: Path) -> dict:
    timings = json.loads(RunLayout(run_dir).timings.read_text())
    train, evaluate = sum(timings["train_seconds"].values()), sum(timings["eval_seconds"].values())
    return {"train_seconds": train, "eval_seconds": evaluate, "eval_share": evaluate / (train + evaluate)}


def time_ours(checkpoint: Path, catalog, batch_size: int) -> float:
    from eval.harness import EvalSettings, evaluate_checkpoint

    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        evaluate_checkpoint(checkpoint, TASKS, catalog, EvalSettings(batch_size=batch_size, limit=LIMIT), Path(cache))
        return time.perf_counter() - started


def time_plain(checkpoint: Path, catalog, batch_size: int) -> float:
    from lm_eval import simple_evaluate

    started = time.perf_counter()
    simple_evaluate(model="hf", model_args=f"pretrained={checkpoint},dtype=float32", device="cpu", tasks=TASKS,
                    task_manager=catalog.manager(TASKS), limit=LIMIT, batch_size=batch_size, bootstrap_iters=1000)
    return time.perf_counter() - started


def time_cached(checkpoint: Path, catalog) -> float:
    from eval.harness import EvalSettings, evaluate_checkpoint

    with tempfile.TemporaryDirectory() as cache:
        settings = EvalSettings(limit=LIMIT)
        evaluate_checkpoint(checkpoint, TASKS, catalog, settings, Path(cache))
        started = time.perf_counter()
        evaluate_checkpoint(checkpoint, TASKS, catalog, settings, Path(cache))
        return time.perf_counter() - started


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="quick: 32 64; full: 8 32 64 128")
    parser.add_argument("--repeats", type=int, help="quick: 2; full: 3")
    parser.add_argument("--run-dir", type=Path, default=None, help="a finished quickstart run (default: run one)")
    return parse_with_mode(parser, MODE_DEFAULTS)


def sweep_batch_sizes(checkpoint: Path, catalog, batch_sizes: list[int], repeats: int) -> dict:
    """Median seconds of ours and plain per batch size, runs alternating."""
    time_ours(checkpoint, catalog, DEFAULT_BATCH_SIZE)  # warm-up: imports, file caches
    sweep = {}
    for batch_size in batch_sizes:
        runs = {"ours": [], "plain": []}
        for _ in range(repeats):
            runs["ours"].append(time_ours(checkpoint, catalog, batch_size))
            runs["plain"].append(time_plain(checkpoint, catalog, batch_size))
        sweep[batch_size] = {side: statistics.median(times) for side, times in runs.items()} | {"runs": runs}
    return sweep


def main() -> None:
    args = parse_args()
    from cpt.toy import ensure_toy
    from eval.tasks import TaskCatalog

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run_dir or run_quickstart(Path(tmp))
        share = eval_share(run_dir)
        checkpoint = RunLayout(run_dir).stage("sft_sorting").model
        catalog = TaskCatalog([ensure_toy() / "tasks"])
        sweep = sweep_batch_sizes(checkpoint, catalog, args.batch_sizes, args.repeats)
        cached = time_cached(checkpoint, catalog)
    result = {
        "benchmark": "eval_time", "machine": machine(), "mode": args.mode, "tasks": TASKS, "limit": LIMIT,
        "repeats": args.repeats, "quickstart": share, "seconds_by_batch_size": sweep, "cached_rerun_seconds": cached,
    }
    result["table"] = table(result)
    print_and_write(result, args.out)


def table(result: dict) -> list[dict]:
    """The default batch size first, then the other batch sizes; the cached rerun; the quickstart share."""
    sweep = sorted(result["seconds_by_batch_size"].items(),  # keys are strings once read back from the JSON
                   key=lambda item: (int(item[0]) != DEFAULT_BATCH_SIZE, int(item[0])))
    scope = f"{len(result['tasks'])} tasks x {result['limit']} examples, median of {result['repeats']}"
    rows = [row(f"eval seconds, batch {size}" + (" (default)" if int(size) == DEFAULT_BATCH_SIZE else ""),
                times["ours"], times["plain"], "plain lm-eval", "s", lower_is_better=True, note=scope)
            for size, times in sweep]
    rows.append(row("cached rerun seconds", result["cached_rerun_seconds"], unit="s", lower_is_better=True,
                    note="every score cached: no model loaded"))
    share = result["quickstart"]
    rows.append(row("eval share of the quickstart", 100 * share["eval_share"], unit="%", lower_is_better=True,
                    note=f"{share['eval_seconds']:.1f}s evaluating 4 checkpoints, "
                         f"{share['train_seconds']:.0f}s training"))
    return rows


def print_and_write(result: dict, out_dir: Path) -> None:
    print(f"\nEvaluation of {len(TASKS)} embedded tasks x {LIMIT} examples on one checkpoint ({result['machine']})")
    print(f"{'batch size':>10} {'ours (s)':>9} {'plain (s)':>10} {'plain/ours':>11}")
    for batch_size, times in result["seconds_by_batch_size"].items():
        print(f"{batch_size:>10} {times['ours']:>9.2f} {times['plain']:>10.2f} {times['plain'] / times['ours']:>11.2f}")
    print(f"cached rerun (no forward passes): {1000 * result['cached_rerun_seconds']:.0f} ms")
    share = result["quickstart"]
    print(f"quickstart: training {share['train_seconds']:.0f}s, evaluation {share['eval_seconds']:.1f}s "
          f"(4 checkpoints) = {100 * share['eval_share']:.1f}% of the two")
    write_result(result, out_dir, "eval_time.json")


if __name__ == "__main__":
    main()
