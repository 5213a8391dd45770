"""SFT training throughput: our `sft` stage (through the whole runner) against a plain TRL
SFTTrainer script, same tiny model, data and settings, measured in one run as a ratio.

    python benchmarks/sft_throughput.py [--steps 60] [--repeats 3] [--out benchmarks/results]

Runs alternate (ours, plain, ours, plain, ...) so drift in machine load hits both alike; the
median of each is reported. Tokens per step are the same for both (same seed, same data order),
so tokens/s = steps x mean tokens per step / train-loop seconds, and the ratio ours/plain is the
pipeline's overhead inside the training loop (callbacks, checkpoint commits). The end-to-end
ratio adds model loading, data checks and the final atomic save.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, run_recipe_dict, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TASK = "addition"


def settings(steps: int) -> dict:
    """Trainer settings shared by both sides (our fast defaults, spelled out for the plain side)."""
    return {
        "max_steps": steps, "per_device_train_batch_size": 32, "learning_rate": 1e-3, "save_steps": 20,
        "logging_steps": 10, "bf16": True, "activation_checkpointing": False, "report_to": "none",
        "disable_tqdm": True, "seed": 0,
    }


def run_ours(toy_root: Path, workdir: Path, steps: int) -> dict:
    recipe = {
        "run": {"name": "bench", "output_dir": str(workdir), "seed": 0},
        "stages": [{"name": "sft", "kind": "sft", "data": {"toy": TASK}, "train": settings(steps)}],
    }
    run_dir, wall = run_recipe_dict(recipe, workdir / "recipe.json")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {"train_seconds": manifest["stages"]["sft"]["metrics"]["train_runtime"], "wall_seconds": wall}


def run_plain(toy_root: Path, workdir: Path, steps: int) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    model_dir = toy_root / "model"
    data = load_dataset("json", data_files=str(toy_root / "tasks" / TASK / "train.jsonl"), split="train")
    data = data.select_columns(["prompt", "completion"])
    args = SFTConfig(output_dir=str(workdir / "plain"), use_cpu=not torch.cuda.is_available(), **settings(steps))
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        args=args, train_dataset=data, processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    output = trainer.train()
    trainer.save_model(str(workdir / "plain" / "final"))
    return {"train_seconds": output.metrics["train_runtime"], "wall_seconds": time.perf_counter() - started}


def tokens_per_step(toy_root: Path) -> float:
    """Mean tokens in one batch: prompt + completion + EOS per example, times the batch size."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy_root / "model")
    rows = [json.loads(line) for line in (toy_root / "tasks" / TASK / "train.jsonl").open()]
    lengths = [len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) + 1 for r in rows]
    return statistics.mean(lengths) * settings(1)["per_device_train_batch_size"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    from cpt.toy import ensure_toy

    toy_root = ensure_toy()
    runs = {"ours": [], "plain": []}
    for _ in range(args.repeats):
        for side, fn in (("ours", run_ours), ("plain", run_plain)):
            with tempfile.TemporaryDirectory() as tmp:
                runs[side].append(fn(toy_root, Path(tmp), args.steps))
    print_and_write(summarise(runs, tokens_per_step(toy_root) * args.steps, args), args.out)


def summarise(runs: dict, tokens: float, args) -> dict:
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("train_seconds", "wall_seconds")}
           for side, rs in runs.items()}
    return {
        "benchmark": "sft_throughput", "task": TASK, "steps": args.steps, "repeats": args.repeats,
        "machine": machine(), "tokens_trained": tokens,
        "ours_tokens_per_s": tokens / med["ours"]["train_seconds"],
        "plain_tokens_per_s": tokens / med["plain"]["train_seconds"],
        "ratio_train_ours_over_plain": med["plain"]["train_seconds"] / med["ours"]["train_seconds"],
        "ratio_end_to_end_ours_over_plain": med["plain"]["wall_seconds"] / med["ours"]["wall_seconds"],
        "median_seconds": med, "runs": runs,
    }


def print_and_write(result: dict, out_dir: Path) -> None:
    rows = [
        ("training tokens/s", f"{result['ours_tokens_per_s']:.0f}", f"{result['plain_tokens_per_s']:.0f}",
         f"{result['ratio_train_ours_over_plain']:.3f}"),
        ("end-to-end seconds", f"{result['median_seconds']['ours']['wall_seconds']:.1f}",
         f"{result['median_seconds']['plain']['wall_seconds']:.1f}", f"{result['ratio_end_to_end_ours_over_plain']:.3f}"),
    ]
    print(f"\nSFT throughput, toy model, {result['steps']} steps x {result['repeats']} repeats ({result['machine']})")
    print(f"{'measure':<20} {'ours':>10} {'plain TRL':>10} {'ours/plain':>11}")
    for name, ours, plain, ratio in rows:
        print(f"{name:<20} {ours:>10} {plain:>10} {ratio:>11}")
    write_result(result, out_dir, "sft_throughput.json")


if __name__ == "__main__":
    main()
