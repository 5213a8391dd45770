"""Learned vs static data mixing for continual pretraining on the embedded toy domains.

    python benchmarks/mixing.py [--mode quick|full] [--steps 200] [--pretrain-steps 400] [--seeds 0 1 2]
                                [--out benchmarks/results]

--mode quick (the default): 200 pretraining steps, 100 mixing steps, seed 0; full: 400, 200, seeds 0 1 2.

A toy Llama is first pretrained on the "general" domain (the source, once, seed 0). From it, one
`cpt` stage per method and seed continues on {general, code} ("code" is the new target domain),
all at the same token budget (steps x batch x max_length), through the real runner:

    uniform       static 1:1            target_only   static 0:1 (code only)
    static_30_70  static 0.3:0.7, a hand-picked target-heavy mix with 30% of the source replayed
    doremi        learned: online DoReMi, reference = the stage's start (the pretrained model)
    odm           learned: Online Data Mixing (EXP3 bandit)

Reported, mean +- std over seeds: each domain's loss at the end on the toy's validation split (never
trained on), and the steps each method needs before its worst-domain loss on the stage's held-out
sequences (16 per domain, the same rows for every method, scored every 10 steps) reaches uniform's
final worst-domain loss on them. Prints a markdown table and writes benchmarks/results/mixing.json, whose
`table` compares each learned method with uniform (worst-domain validation loss, steps to uniform's loss).

On a machine shared with other jobs run it with OMP_NUM_THREADS=1: on these 2 cores, with another
process busy on one of them, two torch threads took 5.8 s per toy step against 0.16 s for one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from common import add_common_args, machine, parse_with_mode, row, run_recipe_dict, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SOURCE, TARGET = "general", "code"
METHODS = {
    "uniform": ("static", {SOURCE: 1.0, TARGET: 1.0}),
    "target_only": ("static", {SOURCE: 0.0, TARGET: 1.0}),
    "static_30_70": ("static", {SOURCE: 0.3, TARGET: 0.7}),
    "doremi": ("doremi", {SOURCE: 1.0, TARGET: 1.0}),
    "odm": ("odm", {SOURCE: 1.0, TARGET: 1.0}),
}
BATCH, LENGTH, EVERY, HELD_OUT = 16, 64, 10, 16
LEARNED = ("doremi", "odm")
MODE_DEFAULTS = {"quick": {"steps": 100, "pretrain_steps": 200, "seeds": [0]},
                 "full": {"steps": 200, "pretrain_steps": 400, "seeds": [0, 1, 2]}}


def _train(steps: int, lr: float) -> dict:
    return {"max_steps": steps, "per_device_train_batch_size": BATCH, "max_length": LENGTH, "learning_rate": lr,
            "lr_scheduler_type": "cosine", "warmup_steps": max(1, steps // 20), "weight_decay": 0.0,
            "save_steps": 10_000, "logging_steps": 50, "disable_tqdm": True}


def _run(workdir: Path, name: str, model: str, stage: dict, seed: int) -> Path:
    recipe = {"run": {"name": name, "output_dir": str(workdir), "seed": seed}, "model": {"name_or_path": model},
              "stages": [stage]}
    return run_recipe_dict(recipe, workdir / f"{name}.json")[0] / "stages" / stage["name"]


def pretrain_base(workdir: Path, steps: int) -> Path:
    stage = {"name": "source", "kind": "cpt", "domains": [{"name": SOURCE, "data": {"toy": SOURCE}}],
             "train": _train(steps, 2e-3)}
    return _run(workdir, "base", "toy", stage, seed=0) / "model"


def run_method(workdir: Path, base: Path, method: str, seed: int, steps: int) -> dict:
    learner, weights = METHODS[method]
    stage = {"name": "mix", "kind": "cpt",
             "domains": [{"name": d, "data": {"toy": d}, "weight": w} for d, w in weights.items()],
             "mixing": {"learner": learner, "update_every": EVERY, "held_out_sequences": HELD_OUT},
             "train": _train(steps, 1e-3)}
    started = time.perf_counter()
    stage_dir = _run(workdir, f"{method}-s{seed}", str(base), stage, seed)
    seconds = time.perf_counter() - started
    trajectory = json.loads((stage_dir / "mixture_weights.json").read_text())
    curve = [(e["step"], e["held_out_loss"]) for e in trajectory if "held_out_loss" in e]
    return {"method": method, "seed": seed, "seconds": round(seconds, 1), "curve": curve,
            "final_weights": trajectory[-1]["weights"], "validation_loss": validation_losses(stage_dir / "model")}


def validation_losses(model_dir: Path) -> dict[str, float]:
    """Mean token loss of the model on each domain's toy validation split, packed like training."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cpt.data.toy_sources import toy_path
    from data_mixing.domains import TokenDomain, tokenize_texts
    from data_mixing.held_out import HeldOutEvaluator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    domains = []
    for name in (SOURCE, TARGET):
        rows = Dataset.from_list([json.loads(line) for line in toy_path(name, "validation").open()])
        tokens = tokenize_texts(rows, tokenizer, name).data.column("input_ids")
        ids = torch.tensor([t for doc in tokens.to_pylist() for t in doc])
        count = len(ids) // LENGTH
        domains.append(TokenDomain(name, tokens, np.arange(0), ids[: count * LENGTH].view(count, LENGTH)))
    return HeldOutEvaluator(domains, batch_size=64)(model)


def steps_to_reach(curve: list, target: float) -> int | None:
    """First scored step whose worst-domain loss is at or below `target` (None: never within the budget)."""
    return next((step for step, losses in curve if max(losses.values()) <= target), None)


def _spread(values: list[float], digits: int = 3) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def summarise(results: list[dict], seeds: list[int]) -> tuple[list[dict], dict[int, float]]:
    """Table rows; the target of each seed is uniform's final worst-domain held-out loss with that seed."""
    targets = {r["seed"]: max(r["curve"][-1][1].values()) for r in results if r["method"] == "uniform"}
    rows = []
    for method in METHODS:
        runs = [r for r in results if r["method"] == method]
        reached = [s for s in (steps_to_reach(r["curve"], targets[r["seed"]]) for r in runs) if s is not None]
        val = {d: [r["validation_loss"][d] for r in runs] for d in (SOURCE, TARGET)}
        rows.append({
            "method": method,
            **{f"{d} val. loss": _spread(v) for d, v in val.items()},
            "worst val. loss": _spread([max(r["validation_loss"].values()) for r in runs]),
            "steps to uniform's final worst": f"{_spread(reached, 0)} ({len(reached)}/{len(seeds)} reached)",
            f"final {TARGET} weight": _spread([r["final_weights"][TARGET] for r in runs], 2),
        })
    return rows, targets


def markdown(rows: list[dict]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--steps", type=int, help="steps of the mixing stage, the same for every method "
                        "(quick: 100; full: 200)")
    parser.add_argument("--pretrain-steps", type=int, help="quick: 200; full: 400")
    parser.add_argument("--seeds", type=int, nargs="+", help="quick: 0; full: 0 1 2")
    return parse_with_mode(parser, MODE_DEFAULTS)


def table(results: list[dict], targets: dict[int, float], steps: int) -> list[dict]:
    """Each learned method against uniform: final worst-domain validation loss, steps to uniform's final loss."""
    runs = {m: [r for r in results if r["method"] == m] for m in (*LEARNED, "uniform")}
    reached = {m: _steps_reached(rs, targets) for m, rs in runs.items()}
    mean_steps = {m: statistics.mean(s) if s else None for m, s in reached.items()}
    uniform = "uniform (static 1:1)"
    rows = []
    for m in LEARNED:
        rows.append(row(f"worst-domain validation loss, {m}", _mean_worst_loss(runs[m]),
                        _mean_worst_loss(runs["uniform"]), uniform, "loss", lower_is_better=True,
                        note=f"mean over {len(runs[m])} seed(s)"))
        rows.append(row(f"steps to uniform's final worst-domain held-out loss, {m}", mean_steps[m],
                        mean_steps["uniform"], uniform, "steps", lower_is_better=True,
                        note=f"reached in {len(reached[m])}/{len(runs[m])} seed(s) within {steps} steps"))
    return rows


def _mean_worst_loss(runs: list[dict]) -> float:
    return statistics.mean(max(r["validation_loss"].values()) for r in runs)


def _steps_reached(runs: list[dict], targets: dict[int, float]) -> list[int]:
    """The steps each run needed to reach its seed's target, for the runs that reached it."""
    return [s for s in (steps_to_reach(r["curve"], targets[r["seed"]]) for r in runs) if s is not None]


def main() -> None:
    args = parse_args()
    from cpt.cli import _quiet_library_progress

    _quiet_library_progress()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mixing-bench-") as tmp:
        workdir = Path(tmp)
        base = pretrain_base(workdir, args.pretrain_steps)
        results = [run_method(workdir, base, m, seed, args.steps) for seed in args.seeds for m in METHODS]
        base_loss = validation_losses(base)
    rows, target = summarise(results, args.seeds)
    print(f"\nbase (after {args.pretrain_steps} steps on {SOURCE}): validation loss "
          + ", ".join(f"{d} {v:.3f}" for d, v in base_loss.items()))
    print("targets (uniform's final worst-domain held-out loss, per seed): "
          + ", ".join(f"seed {seed} {t:.3f}" for seed, t in target.items()) + "\n")
    print(markdown(rows))
    report = {
        "benchmark": "mixing", "machine": machine(), "mode": args.mode, "table": table(results, target, args.steps),
        "settings": settings(args), "platform": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "base_validation_loss": base_loss, "target_worst_loss_per_seed": target, "methods_table": rows,
        "runs": results, "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_result(report, args.out, "mixing.json")
    print(f"total {report['total_seconds']:.0f} s")


def settings(args: argparse.Namespace) -> dict:
    return {"steps": args.steps, "pretrain_steps": args.pretrain_steps, "seeds": args.seeds, "batch": BATCH,
            "max_length": LENGTH, "tokens_per_run": args.steps * BATCH * LENGTH, "update_every": EVERY,
            "held_out_sequences": HELD_OUT,
            "methods": {m: {"learner": learner, "weights": w} for m, (learner, w) in METHODS.items()}}


if __name__ == "__main__":
    main()
