"""Training throughput of every stage kind (cpt, sft, dpo, grpo): our stage through the whole runner against
the same training written with plain TRL / transformers, and against those libraries' default settings,
measured in one run as ratios; with each stage's model FLOPs utilisation (MFU).

    python benchmarks/stage_throughput.py [--mode quick|full] [--models toy smollm2] [--stages cpt sft dpo grpo]
                                          [--steps-scale 1.0] [--repeats N] [--out benchmarks/results]

Three sides per stage and model, in one process, alternating (ours, plain, defaults, then the reverse
order, after one untimed warm-up run), medians reported:
  ours      the stage in a recipe, through cpt's runner, with our defaults (the precision cpt/core/precision.py
            chooses: bf16 autocast where the hardware runs bf16 natively, else fp32; no activation
            checkpointing; on a CPU the whole-logits LM head: cpt/stages/lm_head.py)
  plain     benchmarks/plain_trainers.py: the same training in plain TRL / transformers, our settings spelled out
  defaults  the same plain script with only the workload set (steps, batch, lengths, lr, beta, generations)
            and every other setting at the library's default (TRL 1.16: bf16, gradient checkpointing on;
            transformers' Trainer, which the plain cpt side uses: fp32). "ours/defaults" is what a user gains by
            running our stage instead of TRL as it comes; on a CPU without native bf16 it is mostly precision.
Every table line names the processor kind (AMX / AVX512-BF16 / AVX2 without native bf16) and each side's
precision: the ratios depend on it.
Checkpoints are off on every side. tokens/s = trained tokens (TRL's `num_tokens`; cpt: steps x batch x
max_length) / the trainer's train_runtime. MFU = FLOPs per trained token (TRL's compute_flops_per_token;
DPO adds the reference's forward, GRPO the reference's and one more forward for generation) x tokens/s /
the matmul peak measured here in the side's precision (hardware.py). Models: `toy` (0.9M, 1k vocabulary), `smollm2`
(SmolLM2-135M-Instruct, 49k vocabulary) and, in full mode on a GPU only, `llama-500m` (built from a
config with SmolLM2's tokenizer, random weights).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
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
from hardware import forward_flops_per_token, matmul_peak, mfu, on_gpu, training_flops_per_token
from plain_trainers import run_plain, trained_tokens

from cpt.core.layout import RunLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STAGES = ("cpt", "sft", "dpo", "grpo")
DATA = {"cpt": "general", "sft": "addition", "dpo": "date_format", "grpo": "sorting"}  # toy domain / tasks
# What each stage trains: the settings every side shares. Steps are for quick mode (x --steps-scale).
WORKLOADS = {
    "toy": {  # 10-20 s of training per run: shorter runs were dominated by the first steps' warm-up
        "cpt": {"max_steps": 80, "per_device_train_batch_size": 16, "max_length": 128, "learning_rate": 1e-3},
        "sft": {"max_steps": 120, "per_device_train_batch_size": 32, "max_length": 64, "learning_rate": 1e-3},
        "dpo": {"max_steps": 60, "per_device_train_batch_size": 16, "max_length": 64, "learning_rate": 5e-4},
        "grpo": {"max_steps": 40, "per_device_train_batch_size": 16, "num_generations": 4,
                 "max_completion_length": 12, "learning_rate": 1e-4, "beta": 0.04},
    },
    "smollm2": {
        "cpt": {"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 128, "learning_rate": 1e-5},
        # packed to 128 tokens a row, as real SFT data (hundreds of tokens a row) fills them; a toy row is ~14
        "sft": {"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 128, "learning_rate": 1e-5,
                "packing": True},
        "dpo": {"max_steps": 6, "per_device_train_batch_size": 8, "max_length": 128, "learning_rate": 1e-6},
        "grpo": {"max_steps": 5, "per_device_train_batch_size": 8, "num_generations": 4,
                 "max_completion_length": 16, "learning_rate": 1e-6, "beta": 0.04},
    },
}
WORKLOADS["llama-500m"] = WORKLOADS["smollm2"]
SIDES = ("ours", "plain", "defaults")
MODE_DEFAULTS = {"quick": {"steps_scale": 1.0, "repeats": 3}, "full": {"steps_scale": 3.0, "repeats": 5}}
QUIET = {"save_strategy": "no", "report_to": "none", "disable_tqdm": True, "seed": 0, "logging_steps": 1}


def model_folder(model: str, workdir: Path) -> Path:
    if model in ("toy", "smollm2"):
        return named_model_folder(model)
    return build_llama_500m(workdir / "llama-500m", named_model_folder("smollm2"))


def build_llama_500m(folder: Path, tokenizer_source: Path) -> Path:
    """A ~0.5B Llama with SmolLM2's 49k vocabulary, random weights, saved in bf16 (for GPU runs only)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (folder / "config.json").is_file():
        return folder
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=1280, intermediate_size=3584, num_hidden_layers=24,
                         num_attention_heads=20, num_key_value_heads=4, max_position_embeddings=2048,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def data_file(kind: str) -> Path:
    from cpt.toy import ensure_toy

    folder = "domains" if kind == "cpt" else "tasks"
    return ensure_toy() / folder / DATA[kind] / "train.jsonl"


def side_settings(side: str, workload: dict, model_dir: Path) -> dict:
    """The config fields a side trains with: the workload, plus ours spelled out (plain) or nothing (defaults)."""
    from cpt.stages.defaults import fast_defaults

    if side == "defaults":
        return {**workload, **QUIET}
    from cpt.core.precision import choose_precision, count_parameters

    ours = {k: v for k, v in fast_defaults().items() if k not in ("use_cpu",)}
    return {**ours, "bf16": choose_precision(workload, count_parameters(model_dir)).bf16, **workload, **QUIET}


def side_precision(side: str, kind: str, model_params: int | None) -> str:
    """The precision a side trains in: ours and plain as cpt chooses; defaults as the library's config does."""
    from cpt.core.precision import choose_precision

    if side != "defaults":
        return choose_precision({}, model_params).name
    return "fp32" if kind == "cpt" else "bf16"  # transformers' TrainingArguments: fp32; TRL 1.16 configs: bf16


def run_ours(kind: str, model_dir: Path, train: dict, workdir: Path) -> dict:
    data = {"toy": DATA[kind]}
    stage = {"name": kind, "kind": kind, "train": train,
             **({"domains": [{"name": DATA[kind], "data": data}]} if kind == "cpt" else {"data": data})}
    recipe = {"run": {"name": "ours", "output_dir": str(workdir), "seed": 0},
              "model": {"name_or_path": str(model_dir)}, "stages": [stage]}
    run_dir, wall = run_recipe_dict(recipe, workdir / "recipe.json")
    run = RunLayout(run_dir)
    metrics = json.loads(run.manifest.read_text())["stages"][kind]["metrics"]
    log = json.loads(run.stage(kind).train_log.read_text())
    return {"train_seconds": metrics["train_runtime"], "wall_seconds": wall, "tokens": trained_tokens(kind, log, train)}


def run_side(side: str, kind: str, model_dir: Path, workload: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        settings = side_settings(side, workload, model_dir)
        if side == "ours":
            measured = run_ours(kind, model_dir, {k: v for k, v in settings.items() if k != "seed"}, Path(tmp))
        else:
            measured = run_plain(kind, model_dir, data_file(kind), settings, Path(tmp))
    gc.collect()
    return measured


def measure_stage(kind: str, model_dir: Path, workload: dict, repeats: int) -> dict:
    def run_one(side: str) -> dict:
        measured = run_side(side, kind, model_dir, workload)
        print(f"  {kind} {side}: {measured['train_seconds']:.2f}s", flush=True)
        return measured

    runs, median = alternating_medians(list(SIDES), repeats, run_one, ("train_seconds", "tokens"))
    rate = {side: m["tokens"] / m["train_seconds"] for side, m in median.items()}
    return {"workload": workload, "tokens_per_s": rate, "median": median, "runs": runs}


def stage_flops_per_token(kind: str, config, workload: dict) -> float:
    """Training FLOPs per trained token, with the forwards a stage adds to the policy's forward + backward."""
    seq_len = workload.get("max_length") or 64
    extra_forwards = {"dpo": 1, "grpo": 1 + (workload.get("beta", 0) > 0)}.get(kind, 0)
    return training_flops_per_token(config, seq_len) + extra_forwards * forward_flops_per_token(config, seq_len)


def scaled(workload: dict, scale: float) -> dict:
    return {**workload, "max_steps": max(2, round(workload["max_steps"] * scale))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--models", nargs="+", choices=sorted(WORKLOADS), default=None)
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--steps-scale", type=float, help="steps = the workload's x this (quick 1, full 3)")
    parser.add_argument("--repeats", type=int, help="toy runs per side (quick 3, full 5); one fewer for larger models")
    args = parse_with_mode(parser, MODE_DEFAULTS)
    models = args.models or (["toy", "smollm2"] + (["llama-500m"] if args.mode == "full" and on_gpu() else []))
    notes = [] if on_gpu() else ["llama-500m (0.5B) runs in full mode on a GPU only: not measured on this CPU machine"]
    peak = matmul_peak()
    with tempfile.TemporaryDirectory() as tmp:
        results = measure_models(models, args.stages, args.steps_scale, args.repeats, Path(tmp), peak)
    result = {"benchmark": "stage_throughput", "machine": machine(), "mode": args.mode, "repeats": args.repeats,
              "matmul_peak": peak, "results": results, "table": table(results), "notes": notes}
    print_table(result)
    write_result(result, args.out, "stage_throughput.json")


def measure_models(models: list[str], stages: list[str], scale: float, repeats: int, workdir: Path,
                   peak: dict) -> dict:
    from transformers import AutoConfig

    from cpt.core.precision import count_parameters

    results = {}
    for model in models:
        folder = model_folder(model, workdir)
        repeats_here = repeats if model == "toy" else max(1, repeats - 1)
        warm_up = {**WORKLOADS[model]["sft"], "max_steps": 2}
        run_side("plain", "sft", folder, warm_up)  # untimed: the process's first run is the slowest
        config = AutoConfig.from_pretrained(folder)
        for kind in stages:
            print(f"{model} {kind}", flush=True)
            workload = scaled(WORKLOADS[model][kind], scale)
            measured = measure_stage(kind, folder, workload, repeats_here)
            flops = stage_flops_per_token(kind, config, workload)
            params = count_parameters(folder)
            measured["precision"] = {side: side_precision(side, kind, params) for side in SIDES}
            measured["mfu"] = {side: mfu(flops * rate, peak[f"{measured['precision'][side]}_flops_per_s"])
                               for side, rate in measured["tokens_per_s"].items()}
            results[f"{model}/{kind}"] = measured
    return results


def table(results: dict) -> list[dict]:
    from cpt.core.precision import cpu_kind

    processor = "GPU" if on_gpu() else cpu_kind()
    rows = []
    for name, measured in results.items():
        rate, mfus = measured["tokens_per_s"], measured["mfu"]
        ours, defaults = measured["precision"]["ours"], measured["precision"]["defaults"]
        rows.append(row(f"{name}: training tokens/s vs plain TRL", rate["ours"], rate["plain"], "plain TRL script",
                        "tokens/s", note=f"{processor}; both {ours}; MFU {100 * mfus['ours']:.1f}% "
                                         f"(plain {100 * mfus['plain']:.1f}%)"))
        rows.append(row(f"{name}: ours with our defaults vs TRL with its defaults", rate["ours"], rate["defaults"],
                        "TRL/transformers defaults", "tokens/s", note=f"{processor}; ours {ours}, defaults {defaults}"))
    return rows


def print_table(result: dict) -> None:
    print(f"\nStage throughput ({result['machine']}; bf16 matmul peak "
          f"{result['matmul_peak']['bf16_flops_per_s'] / 1e9:.0f} GFLOP/s, fp32 "
          f"{result['matmul_peak']['fp32_flops_per_s'] / 1e9:.0f})")
    print(f"{'stage':<20} {'ours tok/s':>10} {'plain':>10} {'defaults':>10} {'ours/plain':>10} "
          f"{'ours/defaults':>13} {'MFU ours':>9}  precision ours/plain/defaults")
    for name, measured in result["results"].items():
        rate = measured["tokens_per_s"]
        print(f"{name:<20} {rate['ours']:>10.0f} {rate['plain']:>10.0f} {rate['defaults']:>10.0f} "
              f"{rate['ours'] / rate['plain']:>10.3f} {rate['ours'] / rate['defaults']:>13.3f} "
              f"{100 * measured['mfu']['ours']:>8.1f}%  {'/'.join(measured['precision'][side] for side in SIDES)}")
    for note in result["notes"]:
        print(f"note: {note}")


if __name__ == "__main__":
    main()
