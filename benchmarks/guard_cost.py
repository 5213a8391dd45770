"""What each anti-forgetting guard costs in training speed: one sft stage through cpt's runner with the guard,
against the same stage without one, measured in one process, alternating, as ratios of medians.

    python benchmarks/guard_cost.py [--mode quick|full] [--models toy smollm2] [--guards freeze olora osf kl_anchor]
                                    [--steps-scale 1.0] [--repeats N] [--out benchmarks/results]

Sides: `none` (the stage as it is) and each guard at the setting docs/guards.md shows: freeze (the embeddings and
2 decoder layers), O-LoRA (the paper's defaults), OSF (preserved 0.5), the KL anchor (weight 1). After one untimed
warm-up run, every repeat runs all sides, in reverse order every other repeat (a run's position moves its time).
tokens/s = trained tokens (TRL's `num_tokens`) / the trainer's train_runtime: the steps themselves. A guard's setup
outside the steps (OSF's SVD of every matrix, the KL anchor's reference model, O-LoRA's adapter) is in `wall_seconds`
(the whole stage through the runner: loading, setup, training, saving), reported beside it. Replay is not a side: it
changes which rows a step trains on, not the step. Memory is not measured here (one process runs every side); the
freeze guard's saving is its share of frozen weights, which take no gradient and no optimizer state.
Every line names the processor kind and the precision cpt chose: the ratios depend on them.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
from pathlib import Path

from common import (
    add_common_args,
    alternating_medians,
    machine,
    named_model_folder,
    parse_with_mode,
    row,
    run_recipe_dict,
    write_result,
)
from hardware import on_gpu
from plain_trainers import trained_tokens

from cpt.core.layout import RunLayout

GUARDS = {
    "freeze": {"method": "freeze", "layers": 2},
    "olora": {"method": "olora"},
    "osf": {"method": "osf", "preserved": 0.5},
    "kl_anchor": {"method": "kl_anchor", "weight": 1.0},
}
# One sft stage's settings per model (x --steps-scale); the toy's runs train 10-20 s, shorter ones were dominated
# by the first steps' warm-up (benchmarks/stage_throughput.py, whose sft workloads these are).
WORKLOADS = {
    "toy": {"max_steps": 120, "per_device_train_batch_size": 32, "max_length": 64, "learning_rate": 1e-3},
    "smollm2": {"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 128, "learning_rate": 1e-5,
                "packing": True},
}
TASK = "addition"  # the toy task the stage trains on
MODE_DEFAULTS = {"quick": {"steps_scale": 1.0, "repeats": 3}, "full": {"steps_scale": 3.0, "repeats": 5}}
QUIET = {"report_to": "none", "disable_tqdm": True, "logging_steps": 1}


def run_side(side: str, model_dir: Path, workload: dict) -> dict:
    """One sft stage with the side's guard (none for `none`) through the runner: its train and wall seconds."""
    train = {**workload, **QUIET, "save_steps": workload["max_steps"]}
    stage = {"name": "s", "kind": "sft", "data": {"toy": TASK}, "train": train,
             **({"guard": GUARDS[side]} if side in GUARDS else {})}
    with tempfile.TemporaryDirectory() as tmp:
        recipe = {"run": {"name": side, "output_dir": tmp, "seed": 0},
                  "model": {"name_or_path": str(model_dir)}, "stages": [stage]}
        run_dir, wall = run_recipe_dict(recipe, Path(tmp) / "recipe.json")
        run = RunLayout(run_dir)
        metrics = json.loads(run.manifest.read_text())["stages"]["s"]["metrics"]
        log = json.loads(run.stage("s").train_log.read_text())
    gc.collect()
    return {"train_seconds": metrics["train_runtime"], "wall_seconds": wall, "tokens": trained_tokens("sft", log, train)}


def measure_model(model_dir: Path, workload: dict, sides: list[str], repeats: int) -> dict:
    run_side("none", model_dir, {**workload, "max_steps": 2})  # untimed: the process's first run is the slowest

    def run_one(side: str) -> dict:
        measured = run_side(side, model_dir, workload)
        print(f"  {side}: {measured['train_seconds']:.2f}s train, {measured['wall_seconds']:.1f}s wall", flush=True)
        return measured

    runs, median = alternating_medians(sides, repeats, run_one, ("train_seconds", "wall_seconds", "tokens"))
    rate = {side: m["tokens"] / m["train_seconds"] for side, m in median.items()}
    return {"workload": workload, "tokens_per_s": rate, "median": median, "runs": runs}


def table(results: dict) -> list[dict]:
    from cpt.core.precision import choose_precision, count_parameters, cpu_kind

    processor = "GPU" if on_gpu() else cpu_kind()
    rows = []
    for model, measured in results.items():
        precision = choose_precision({}, count_parameters(named_model_folder(model))).name
        rate, median = measured["tokens_per_s"], measured["median"]
        for side in (s for s in rate if s != "none"):
            rows.append(row(f"{model}/sft with guard {side}: training tokens/s vs no guard", rate[side], rate["none"],
                            "the same stage without a guard", "tokens/s",
                            note=f"{processor}; {precision}; stage wall {median[side]['wall_seconds']:.1f} s "
                                 f"against {median['none']['wall_seconds']:.1f} s"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--models", nargs="+", choices=sorted(WORKLOADS), default=["toy", "smollm2"])
    parser.add_argument("--guards", nargs="+", choices=sorted(GUARDS), default=list(GUARDS))
    parser.add_argument("--steps-scale", type=float, help="steps = the workload's x this (quick 1, full 3)")
    parser.add_argument("--repeats", type=int, help="runs per side (quick 3, full 5)")
    args = parse_with_mode(parser, MODE_DEFAULTS)
    sides = ["none", *args.guards]
    results = {}
    for model in args.models:
        print(model, flush=True)
        workload = {**WORKLOADS[model], "max_steps": max(2, round(WORKLOADS[model]["max_steps"] * args.steps_scale))}
        results[model] = measure_model(named_model_folder(model), workload, sides, args.repeats)
    result = {"benchmark": "guard_cost", "machine": machine(), "mode": args.mode, "repeats": args.repeats,
              "results": results, "table": table(results), "notes": []}
    print_table(result)
    write_result(result, args.out, "guard_cost.json")


def print_table(result: dict) -> None:
    print(f"\nGuard cost ({result['machine']}; medians of {result['repeats']} runs per side)")
    print(f"{'model':<8} {'guard':<10} {'tokens/s':>9} {'vs none':>8} {'train s':>8} {'wall s':>7}")
    for model, measured in result["results"].items():
        for side, rate in measured["tokens_per_s"].items():
            median = measured["median"][side]
            print(f"{model:<8} {side:<10} {rate:>9.0f} {rate / measured['tokens_per_s']['none']:>8.3f} "
                  f"{median['train_seconds']:>8.2f} {median['wall_seconds']:>7.1f}")


if __name__ == "__main__":
    main()
