"""SFT throughput on a real model, SmolLM2-135M-Instruct: our `sft` stage (through the whole runner) against a
plain TRL SFTTrainer script with the same settings, and the model FLOPs utilisation against this machine's
bf16 matmul peak, measured in the same script.

    python benchmarks/smollm2_sft.py [--steps 10] [--repeats 2] [--batch 8] [--packing] [--out benchmarks/results]

Both sides train the imported model (fetched and imported first if needed, not timed) on the embedded
`sorting` task with our defaults (bf16 autocast, activation checkpointing off), batch 8, max_length 128.
Checkpoints are off on both sides (`save_strategy: no`): with 10 steps the one checkpoint written at the end
(weights + Adam state, 1.6 GB) would weigh as much as the training; in a real run it comes every 100 steps.
After one untimed warm-up run, runs alternate in the order ours, plain, plain, ours, ... (a run's position
in the process moved its time by up to 8% here; this order gives both sides the same positions), and
medians are reported. tokens/s = the tokens TRL counted (`num_tokens`: prompt + completion + EOS, padding
not counted) / train seconds. A `sorting` row is ~14 tokens, so a batch of 8 is ~110 tokens and the matmuls
are small; `--packing` (TRL's padding-free packing, on both sides) fills each row to 128 tokens instead.
MFU = 6 x parameters x tokens/s / peak, where the peak is the best of several timed 2048^3 bf16
torch.matmul calls on this process's threads.
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

MODEL = "smollm2-135m-instruct"
TASK = "sorting"


def settings(steps: int, batch: int, packing: bool) -> dict:
    """Trainer settings shared by both sides: our defaults spelled out, checkpoints off."""
    return {
        "max_steps": steps, "per_device_train_batch_size": batch, "max_length": 128, "learning_rate": 1e-5,
        "bf16": True, "activation_checkpointing": False, "save_strategy": "no", "logging_steps": 5,
        "report_to": "none", "disable_tqdm": True, "seed": 0, "packing": packing,
    }


def run_ours(model_dir: Path, toy_root: Path, workdir: Path, train: dict) -> dict:
    recipe = {
        "run": {"name": "bench", "output_dir": str(workdir), "seed": 0},
        "model": {"name_or_path": MODEL},
        "stages": [{"name": "sft", "kind": "sft", "data": {"toy": TASK}, "train": train}],
    }
    run_dir, wall = run_recipe_dict(recipe, workdir / "recipe.json")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    log = json.loads((run_dir / "stages" / "sft" / "train_log.json").read_text())
    return {"train_seconds": manifest["stages"]["sft"]["metrics"]["train_runtime"], "wall_seconds": wall,
            "tokens": _counted_tokens(log)}


def run_plain(model_dir: Path, toy_root: Path, workdir: Path, train: dict) -> dict:
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    data = load_dataset("json", data_files=str(toy_root / "tasks" / TASK / "train.jsonl"), split="train")
    data = data.select_columns(["prompt", "completion"])
    args = SFTConfig(output_dir=str(workdir / "plain"), use_cpu=not torch.cuda.is_available(), **train)
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
        args=args, train_dataset=data, processing_class=AutoTokenizer.from_pretrained(model_dir),
    )
    output = trainer.train()
    trainer.save_model(str(workdir / "plain" / "final"))
    return {"train_seconds": output.metrics["train_runtime"], "wall_seconds": time.perf_counter() - started,
            "tokens": _counted_tokens(trainer.state.log_history)}


def _counted_tokens(log_history: list[dict]) -> float:
    """The tokens TRL trained on (its running `num_tokens`, non-padding), from a trainer's log history."""
    return max(float(entry["num_tokens"]) for entry in log_history if "num_tokens" in entry)


def bf16_matmul_peak(size: int = 2048, repeats: int = 5) -> dict:
    """The best FLOP/s of a size^3 matmul in bf16 (and fp32, for reference) on the threads torch uses here."""
    import torch

    peaks = {}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        torch.matmul(a, b)  # warm-up: kernel selection, page faults
        best = min(_timed(torch.matmul, a, b) for _ in range(repeats))
        peaks[f"{name}_flops_per_s"] = 2 * size**3 / best
    peaks["threads"] = torch.get_num_threads()
    return peaks


def _timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--packing", action="store_true", help="pack rows to 128 tokens (both sides)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()

    from cpt.pretrained import ensure_named_model
    from cpt.toy import ensure_toy

    model_dir, toy_root = ensure_named_model(MODEL), ensure_toy()
    train = settings(args.steps, args.batch, args.packing)
    peak = bf16_matmul_peak()
    with tempfile.TemporaryDirectory() as tmp:  # untimed: the process's first training run is the slowest
        run_plain(model_dir, toy_root, Path(tmp), {**train, "max_steps": 2})
    runs = {"ours": [], "plain": []}
    sides = (("ours", run_ours), ("plain", run_plain))
    for repeat in range(args.repeats):
        for side, run in sides if repeat % 2 == 0 else sides[::-1]:  # ours, plain, plain, ours, ...
            with tempfile.TemporaryDirectory() as tmp:
                runs[side].append(run(model_dir, toy_root, Path(tmp), train))
    print_and_write(summarise(runs, _parameters(model_dir), peak, args), args.out)


def _parameters(model_dir: Path) -> int:
    return json.loads((model_dir / "IMPORT_INFO.json").read_text())["parameters"]


def summarise(runs: dict, parameters: int, peak: dict, args) -> dict:
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("train_seconds", "wall_seconds")}
           for side, rs in runs.items()}
    tokens = statistics.median(r["tokens"] for rs in runs.values() for r in rs)  # the same data on both sides
    rate = {side: tokens / med[side]["train_seconds"] for side in med}
    return {
        "benchmark": "smollm2_sft", "model": MODEL, "parameters": parameters, "task": TASK, "steps": args.steps,
        "batch": args.batch, "packing": args.packing, "repeats": args.repeats, "machine": machine(),
        "tokens_trained": tokens, "ours_tokens_per_s": rate["ours"], "plain_tokens_per_s": rate["plain"],
        "ratio_train_ours_over_plain": med["plain"]["train_seconds"] / med["ours"]["train_seconds"],
        "ratio_end_to_end_ours_over_plain": med["plain"]["wall_seconds"] / med["ours"]["wall_seconds"],
        "matmul_peak": peak,
        "mfu_bf16": {side: 6 * parameters * rate[side] / peak["bf16_flops_per_s"] for side in rate},
        "median_seconds": med, "runs": runs,
    }


def print_and_write(result: dict, out_dir: Path) -> None:
    med, mfu = result["median_seconds"], result["mfu_bf16"]
    rows = [
        ("training tokens/s", f"{result['ours_tokens_per_s']:.0f}", f"{result['plain_tokens_per_s']:.0f}",
         f"{result['ratio_train_ours_over_plain']:.3f}"),
        ("seconds per step", f"{med['ours']['train_seconds'] / result['steps']:.2f}",
         f"{med['plain']['train_seconds'] / result['steps']:.2f}", ""),
        ("end-to-end seconds", f"{med['ours']['wall_seconds']:.1f}", f"{med['plain']['wall_seconds']:.1f}",
         f"{result['ratio_end_to_end_ours_over_plain']:.3f}"),
        ("MFU vs bf16 peak", f"{100 * mfu['ours']:.1f}%", f"{100 * mfu['plain']:.1f}%", ""),
    ]
    peak = result["matmul_peak"]
    packed = ", packed to 128 tokens" if result["packing"] else ""
    print(f"\nSFT on {result['model']} ({result['parameters'] / 1e6:.1f}M), {result['steps']} steps x batch "
          f"{result['batch']}{packed} x {result['repeats']} repeats ({result['machine']})")
    print(f"matmul peak on {peak['threads']} threads: bf16 {peak['bf16_flops_per_s'] / 1e9:.0f} GFLOP/s, "
          f"fp32 {peak['fp32_flops_per_s'] / 1e9:.0f} GFLOP/s; {result['tokens_trained'] / result['steps']:.0f} "
          "tokens per step")
    print(f"{'measure':<20} {'ours':>10} {'plain TRL':>10} {'ours/plain':>11}")
    for name, ours, plain, ratio in rows:
        print(f"{name:<20} {ours:>10} {plain:>10} {ratio:>11}")
    write_result(result, out_dir, "smollm2_sft_packed.json" if result["packing"] else "smollm2_sft.json")


if __name__ == "__main__":
    main()
