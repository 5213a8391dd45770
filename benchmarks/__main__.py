"""Run every benchmark, then write one summary JSON and docs/benchmarks.md.

    python -m benchmarks                              # quick mode: sized for a 2-core CPU machine (over an hour)
    python -m benchmarks --mode full                  # larger settings, meant for a GPU machine
    python -m benchmarks --only stage_throughput scaling
    python -m benchmarks --skip forgetting mixing     # the quality benchmarks take the longest
    python -m benchmarks --report-only                # rebuild the summary from the JSON results already written

Each benchmark's table and notes are also copied, small, to docs/results/NAME.json: the file that
docs/benchmarks.md cites and that is committed with it (benchmarks/results/ is ignored by git).
Each benchmark runs as its own process (`python benchmarks/NAME.py --mode MODE --out OUT`), one after
another so that none times another's load, with its output in OUT/logs/NAME.log. One that fails is
reported as failed and the others still run; the exit status is 1 if any failed. A benchmark not run
this time keeps its earlier JSON in the summary (status "earlier result"; "not run" if there is none): the full
one in OUT, or else its committed copy in docs/results/, so a fresh clone's `--only X` or `--report-only` keeps
every other benchmark's published rows in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.report import Outcome, compact_copy, keep_compact_copies, render_markdown, summarise

REPO = Path(__file__).resolve().parents[1]


# name -> (what it measures, the JSON it writes); run in this order.
BENCHMARKS = {
    "stage_throughput": ("training tokens/s of cpt, sft, dpo, grpo: ours vs plain TRL and vs TRL's defaults; MFU",
                         "stage_throughput.json"),
    "guard_cost": ("training tokens/s of an sft stage with each guard (freeze, O-LoRA, OSF, KL anchor) vs none",
                   "guard_cost.json"),
    "scaling": ("step time and memory against model size and sequence length", "scaling.json"),
    "grpo_step": ("GRPO step split; hf rollout tokens/s with batching and the KV cache; vLLM where present",
                  "grpo_step.json"),
    "eval_time": ("lm-eval time per checkpoint vs plain lm-eval; cached rerun; eval share of the quickstart",
                  "eval_time.json"),
    "distributed": ("1 process vs 2 with DDP and DeepSpeed ZeRO-0/2/3: samples/s and memory per rank",
                    "distributed.json"),
    "mixing": ("learned (DoReMi, ODM) vs static data mixing: loss and steps to a target", "mixing.json"),
    "mixing_four": ("learned (DoReMi, ODM) vs static mixing on four domains: steps to uniform's worst-domain loss",
                    "mixing_four.json"),
    "forgetting": ("anti-forgetting guards vs naive sequential fine-tuning on 4 tasks", "forgetting_toy.json"),
}


def run_benchmark(name: str, script: Path, mode: str, out: Path, description: str, result_name: str) -> Outcome:
    """Run one benchmark script in its own process, its output teed to OUT/logs/NAME.log."""
    log_path = out / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-u", str(script), "--mode", mode, "--out", str(out)]
    print(f"== {name}: {' '.join(command[2:])}", flush=True)
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in process.stdout:
            log.write(line)
            sys.stdout.write(line)
        returncode = process.wait()
    seconds = time.perf_counter() - started
    print(f"== {name}: {'ok' if returncode == 0 else f'FAILED (exit {returncode})'} in {seconds:.0f}s", flush=True)
    return Outcome(description, out / result_name, returncode, log_path, seconds)


def main(argv: list[str] | None = None, benchmarks: dict | None = None, scripts_dir: Path | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    benchmarks = benchmarks or BENCHMARKS
    parser.add_argument("--mode", choices=("quick", "full"), default="quick")
    parser.add_argument("--only", nargs="+", choices=sorted(benchmarks), default=None)
    parser.add_argument("--skip", nargs="+", choices=sorted(benchmarks), default=[])
    parser.add_argument("--report-only", action="store_true", help="run nothing; summarise the JSON already there")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    scripts_dir = scripts_dir or Path(__file__).parent
    selected = [n for n in (args.only or benchmarks) if n not in args.skip and not args.report_only]
    outcomes = {}
    for name, (description, result_name) in benchmarks.items():
        if name in selected:
            outcomes[name] = run_benchmark(name, scripts_dir / f"{name}.py", args.mode, args.out, description,
                                           result_name)
        else:
            outcomes[name] = Outcome(description, _earlier_result(args.out / result_name, args.doc, name), None)
    summary = summarise(outcomes, args.mode)
    keep_compact_copies(summary, args.doc.parent / "results")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(render_markdown(summary, _command(argv)))
    print(f"written {args.out / 'summary.json'} and {args.doc}")
    return 1 if any(b["status"] == "failed" for b in summary["benchmarks"].values()) else 0


def _earlier_result(full: Path, doc: Path, name: str) -> Path:
    """Where a benchmark not run this time left its result: the full JSON in OUT, or else the compact copy
    committed beside the doc (benchmarks/results/ is ignored by git, so a fresh clone has only the copy)."""
    copy = compact_copy(doc.parent / "results", name)
    return full if full.is_file() or not copy.is_file() else copy


def _command(argv: list[str] | None) -> str:
    words = sys.argv[1:] if argv is None else argv
    return " ".join(["python -m benchmarks", *words])


if __name__ == "__main__":
    sys.exit(main())
