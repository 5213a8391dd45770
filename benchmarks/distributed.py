"""Memory per rank and throughput of one SFT stage on a 71M-parameter Llama (built from a config, the toy
tokenizer) under 1 process, and 2 processes with DDP, DeepSpeed ZeRO-0, ZeRO-2 and ZeRO-3 (gloo on CPU).

    python benchmarks/distributed.py [--mode quick|full] [--steps 8] [--out benchmarks/results]

--mode quick (the default) trains 8 steps per setup; full, 40.

Per rank: peak resident memory (getrusage) and the optimizer state it saved in its checkpoint (the size
of its own DeepSpeed shard, or the whole optimizer.pt without DeepSpeed; ZeRO-0 saves it together with the
weights in one file, so its figure includes them): ZeRO-2 and 3 should halve it. Throughput: training samples/s of the whole run, 2 processes against 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import add_common_args, machine, parse_with_mode, row, write_result

from cpt.core.layout import RunLayout

REPO = Path(__file__).resolve().parents[1]
SETUPS = {  # name -> accelerate launch arguments (None: no launcher, one process)
    "1 process": None,
    "2 x DDP": ["--config_file", "recipes/launch/ddp.yaml"],
    "2 x ZeRO-0": ["--use_deepspeed", "--zero_stage", "0", "--num_processes", "2", "--mixed_precision", "no"],
    "2 x ZeRO-2": ["--config_file", "recipes/launch/zero2.yaml"],
    "2 x ZeRO-3": ["--config_file", "recipes/launch/zero3.yaml"],
}
OPTIMIZER_NOTES = {"2 x ZeRO-0": "saved together with the fp32 weights (one file)"}
MODE_DEFAULTS = {"quick": {"steps": 8}, "full": {"steps": 40}}


def build_model(folder: Path) -> int:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from cpt.toy import ensure_toy

    tokenizer = AutoTokenizer.from_pretrained(ensure_toy() / "model")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=2048, num_hidden_layers=10,
                         num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=256,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def recipe(model: Path, out: Path, name: str, steps: int) -> Path:
    train = {"max_steps": steps, "per_device_train_batch_size": 8, "max_length": 64, "bf16": False,
             "save_steps": steps, "logging_steps": steps, "disable_tqdm": True}
    path = out / f"{name}.json"
    path.write_text(json.dumps({"run": {"name": name, "output_dir": str(out)}, "model": {"name_or_path": str(model)},
                                "stages": [{"name": "s", "kind": "sft", "data": {"toy": "date_format"}, "train": train}]}))
    return path


def run_setup(launch: list[str] | None, recipe_path: Path, ranks_dir: Path) -> None:
    worker = [__file__, "--worker", str(recipe_path), str(ranks_dir)]
    command = [sys.executable, *worker] if launch is None else \
        [sys.executable, "-m", "accelerate.commands.launch", *launch, "--dynamo_backend", "no", *worker]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    subprocess.run(command, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)


def worker(recipe_path: str, ranks_dir: str) -> None:
    """Run the recipe in this process (one rank), then record this rank's peak memory."""
    from cpt.cli import main

    assert main(["run", recipe_path]) == 0
    rank = os.environ.get("RANK", "0")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(ranks_dir, f"rank{rank}.json").write_text(json.dumps({"peak_rss_mb": peak_mb}))


def optimizer_mb_per_rank(checkpoint: Path) -> list[float]:
    # ZeRO-0 keeps the (unpartitioned) optimizer inside mp_rank_00_model_states.pt, with the weights.
    shards = (sorted(checkpoint.rglob("*optim_states.pt")) or sorted(checkpoint.glob("optimizer.pt"))
              or sorted(checkpoint.rglob("*model_states.pt")))
    return [round(p.stat().st_size / 2**20, 1) for p in shards]


def measure(name: str, launch, model: Path, out: Path, steps: int) -> dict:
    ranks_dir = out / f"{name.replace(' ', '_')}_ranks"
    ranks_dir.mkdir(parents=True, exist_ok=True)
    run_name = name.replace(" ", "_")
    run_setup(launch, recipe(model, out, run_name, steps), ranks_dir)
    run = RunLayout.of(out, run_name)
    stage = json.loads(run.manifest.read_text())["stages"]["s"]
    ranks = [json.loads(p.read_text()) for p in sorted(ranks_dir.glob("rank*.json"))]
    return {"setup": name, "samples_per_s": stage["metrics"]["train_samples_per_second"],
            "peak_rss_mb_per_rank": [round(r["peak_rss_mb"]) for r in ranks],
            "optimizer_mb_per_rank": optimizer_mb_per_rank(run.stage("s").checkpoints / f"checkpoint-{steps}")}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, out_default=REPO / "benchmarks" / "results")
    parser.add_argument("--steps", type=int, help="quick: 8; full: 40")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/cpt-bench-distributed"))
    return parse_with_mode(parser, MODE_DEFAULTS)


def main() -> None:
    args = parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    params = build_model(args.workdir / "model")
    rows = [measure(name, launch, args.workdir / "model", args.workdir, args.steps) for name, launch in SETUPS.items()]
    for setup in rows:
        setup["throughput_vs_1_process"] = round(setup["samples_per_s"] / rows[0]["samples_per_s"], 2)
    print_rows(rows, params, args.steps)
    write_result({"benchmark": "distributed", "machine": machine(), "mode": args.mode, "table": table(rows),
                  "params": params, "steps": args.steps, "rows": rows}, args.out, "distributed.json")


def print_rows(rows: list[dict], params: int, steps: int) -> None:
    print(f"\nSFT, {params / 1e6:.0f}M parameters, fp32, batch 8 per rank x 64 tokens, {steps} steps, {machine()}")
    print(f"{'setup':<12} {'samples/s':>9} {'vs 1 proc':>9} {'peak RSS MB per rank':>22} {'optimizer MB per rank':>22}")
    for setup in rows:
        print(f"{setup['setup']:<12} {setup['samples_per_s']:>9.1f} {setup['throughput_vs_1_process']:>9.2f} "
              f"{setup['peak_rss_mb_per_rank']!s:>22} {setup['optimizer_mb_per_rank']!s:>22}")


def table(rows: list[dict]) -> list[dict]:
    """Per 2-process setup: samples/s against 1 process, and the largest optimizer shard per rank against DDP's."""
    by_name = {r["setup"]: r for r in rows}
    single, ddp = by_name["1 process"], by_name["2 x DDP"]
    lines = []
    for name, setup in by_name.items():
        if name == "1 process":
            continue
        lines.append(row(f"samples/s, {name}", setup["samples_per_s"], single["samples_per_s"], "1 process",
                         "samples/s"))
        if name != "2 x DDP":
            lines.append(row(f"optimizer MB per rank, {name}", max(setup["optimizer_mb_per_rank"], default=None),
                             max(ddp["optimizer_mb_per_rank"], default=None), "2 x DDP", "MB", lower_is_better=True,
                             note=OPTIMIZER_NOTES.get(name, "")))
    return lines


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
    else:
        main()
