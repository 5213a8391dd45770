"""How one training step's time and peak memory grow with model size (1M, 5M, 25M, 100M parameters; 0.5B in
`--mode full` on a GPU) and with sequence length, and where that growth stops being linear in FLOPs.

    python benchmarks/scaling.py [--mode quick|full] [--steps N] [--out benchmarks/results]

A step is one training step as our stages run it: bf16 autocast over fp32 master weights, forward with labels
(the model's own loss, use_cache=False), backward, torch.optim.AdamW step, zero_grad; batch 8 of random token
ids. Models are Llamas built from a LlamaConfig with the toy tokenizer's 1,024-token vocabulary (tied
embeddings); the 0.5B one has a 32,768-token vocabulary. Each configuration runs in a fresh process: 2 warm-up
steps, then the median of N timed steps. Peak memory: on CPU the peak resident set (getrusage, high-water mark
reset right before the model is built) minus the resident set at that moment, so imports are excluded; on a
GPU torch.cuda.max_memory_allocated. "state" is what weights, gradients and Adam moments need (16 bytes per
parameter); "activations" is peak - state. FLOPs per token are TRL's formula (attention counted at the full
sequence length); MFU is against this machine's bf16 matmul peak, measured once in this process.
quick (2-core CPU, a few minutes): the sizes at sequence length 128, lengths 64..1024 on 5M and 128..512 on 25M.
A departure from linear is the first step of a sweep where time grows more than 1.25x faster or slower than
FLOPs; it is flagged when that configuration's own timed steps spread wider than 1.25x (a busy machine).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import add_common_args, row, write_result
from hardware import machine, matmul_peak, mfu, on_gpu, training_flops_per_token

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BATCH = 8
WARMUP_STEPS = 2
STATE_BYTES_PER_PARAMETER = 16  # fp32 weights + gradients + Adam's two moments
TOLERANCE = 1.25  # growth more than this factor away from FLOPs (or length) counts as "not linear"
SIZES = {  # name -> Llama shape (head_dim 64); the real parameter counts are printed
    "1M": {"hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 2},
    "5M": {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 6, "num_attention_heads": 4},
    "25M": {"hidden_size": 512, "intermediate_size": 1376, "num_hidden_layers": 8, "num_attention_heads": 8},
    "100M": {"hidden_size": 768, "intermediate_size": 2048, "num_hidden_layers": 14, "num_attention_heads": 12},
    "0.5B": {"hidden_size": 1280, "intermediate_size": 3456, "num_hidden_layers": 24, "num_attention_heads": 20,
             "vocab_size": 32768},  # full mode on a GPU only
}


def plan(mode: str, gpu: bool, smoke: bool) -> dict:
    """What to run: the size sweep (sizes at one length), the length sweeps (size -> lengths), timed steps."""
    if smoke:
        return {"sizes": ["1M", "5M"], "size_seq_len": 32, "seq_sweeps": {"1M": [32, 64]}, "steps": 1}
    if mode == "quick":
        return {"sizes": ["1M", "5M", "25M", "100M"], "size_seq_len": 128,
                "seq_sweeps": {"5M": [64, 128, 256, 512, 1024], "25M": [128, 256, 512]}, "steps": 3}
    if gpu:
        return {"sizes": list(SIZES), "size_seq_len": 1024,
                "seq_sweeps": {"5M": [256, 512, 1024, 2048, 4096, 8192], "100M": [256, 512, 1024, 2048, 4096]},
                "steps": 10}
    return {"sizes": ["1M", "5M", "25M", "100M"], "size_seq_len": 256,
            "seq_sweeps": {"5M": [64, 128, 256, 512, 1024, 2048], "25M": [128, 256, 512, 1024]}, "steps": 5}


def llama_config(size: str, vocab_size: int, seq_len: int):
    from transformers import LlamaConfig

    shape = {"vocab_size": vocab_size, **SIZES[size]}
    return LlamaConfig(**shape, num_key_value_heads=shape["num_attention_heads"], max_position_embeddings=seq_len,
                       tie_word_embeddings=True, use_cache=False)


# ---- one configuration, in its own process ----

def worker(spec: dict) -> None:
    import torch
    from transformers import LlamaForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    config = llama_config(spec["size"], spec["vocab_size"], spec["seq_len"])
    before_mb = _start_memory_count(device)
    model = LlamaForCausalLM(config).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    input_ids = torch.randint(0, config.vocab_size, (BATCH, spec["seq_len"]), device=device)
    seconds = [_timed_step(model, optimizer, input_ids, device) for _ in range(WARMUP_STEPS + spec["steps"])]
    result = {"parameters": sum(p.numel() for p in model.parameters()),
              "seconds_per_step": statistics.median(seconds[WARMUP_STEPS:]), "step_seconds": seconds[WARMUP_STEPS:],
              "peak_mb": _peak_mb(device) - before_mb, "attention": model.config._attn_implementation}
    Path(spec["result_file"]).write_text(json.dumps(result))


def _timed_step(model, optimizer, input_ids, device: str) -> float:
    import torch

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    started = time.perf_counter()
    with torch.autocast(device, dtype=torch.bfloat16):
        loss = model(input_ids=input_ids, labels=input_ids).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    sync()
    return time.perf_counter() - started


def _start_memory_count(device: str) -> float:
    """Reset the peak counter; the MB already in use, to subtract from the peak."""
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated() / 2**20
    try:  # Linux: "5" resets the high-water mark that ru_maxrss reports, so import-time peaks drop out
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_mb(device: str) -> float:
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


# ---- the parent: run every configuration, derive the figures ----

def run_config(size: str, seq_len: int, vocab_size: int, steps: int, peak_flops: float) -> dict:
    vocab_size = SIZES[size].get("vocab_size", vocab_size)
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"size": size, "seq_len": seq_len, "vocab_size": vocab_size, "steps": steps,
                "result_file": str(Path(tmp) / "result.json")}
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
        done = subprocess.run(command, check=False, capture_output=True, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if done.returncode != 0:
            raise RuntimeError(f"{size} at {seq_len} tokens failed:\n{done.stderr[-3000:]}")
        measured = json.loads(Path(spec["result_file"]).read_text())
    return describe(size, seq_len, llama_config(size, vocab_size, seq_len), measured, peak_flops)


def describe(size: str, seq_len: int, config, measured: dict, peak_flops: float) -> dict:
    """One configuration's figures: rates, FLOP/s, MFU, the attention share of FLOPs, memory split."""
    flops_per_token = training_flops_per_token(config, seq_len)
    tokens_per_s = BATCH * seq_len / measured["seconds_per_step"]
    state_mb = STATE_BYTES_PER_PARAMETER * measured["parameters"] / 2**20
    return {"size": size, "parameters": measured["parameters"], "seq_len": seq_len, "tokens_per_step": BATCH * seq_len,
            "seconds_per_step": measured["seconds_per_step"], "step_seconds": measured["step_seconds"],
            "tokens_per_s": tokens_per_s,
            "flops_per_token": flops_per_token, "flops_per_s": flops_per_token * tokens_per_s,
            "mfu": mfu(flops_per_token * tokens_per_s, peak_flops),
            "attention_flops_share": 1 - training_flops_per_token(config, 0) / flops_per_token,
            "peak_mb": measured["peak_mb"], "state_mb": state_mb,
            "activations_mb": measured["peak_mb"] - state_mb, "attention": measured["attention"]}


def size_steps(by_size: list[dict]) -> tuple[list[dict], list[str]]:
    """Consecutive sizes: step time ratio against FLOPs ratio; rows and the 'where it stops' note."""
    rows, departures = [], []
    for small, large in itertools.pairwise(by_size):
        time_ratio = large["seconds_per_step"] / small["seconds_per_step"]
        flops_ratio = large["flops_per_token"] / small["flops_per_token"]
        params_ratio = large["parameters"] / small["parameters"]
        rows.append(row(f"step time, {large['size']} vs {small['size']} (x{params_ratio:.1f} params)", time_ratio,
                        flops_ratio, "linear in FLOPs", "x", lower_is_better=True))
        if abs(math.log(time_ratio / flops_ratio)) > math.log(TOLERANCE):
            departures.append(_size_departure(small, large, time_ratio, flops_ratio))
    first, last = by_size[0], by_size[-1]
    rows.append(row(f"peak memory, {last['size']} vs {first['size']}", last["peak_mb"] / first["peak_mb"],
                    last["parameters"] / first["parameters"], "linear in parameters", "x", lower_is_better=True))
    note = departures[0] if departures else \
        f"size: step time grew with FLOPs within {TOLERANCE}x at every step from {first['size']} to {last['size']}"
    return rows, [note, *departures[1:]]


def _noise(*configs: dict) -> str:
    """' (timed steps vary up to xN: a busy machine?)' when a configuration's step times spread wider than TOLERANCE."""
    spread = max(max(c["step_seconds"]) / min(c["step_seconds"]) for c in configs)
    return f" (timed steps vary up to x{spread:.1f}: a busy machine?)" if spread > TOLERANCE else ""


def _size_departure(small: dict, large: dict, time_ratio: float, flops_ratio: float) -> str:
    slower = time_ratio < flops_ratio
    why = ("the smaller model leaves the machine idle: fixed per-step costs (Python, per-tensor optimizer and "
           "kernel-launch work, small matmuls) weigh more than its FLOPs" if slower else
           "efficiency fell: a working set that outgrows the caches, or memory-bound ops taking a larger share")
    return (f"size: {small['size']} -> {large['size']}: step time x{time_ratio:.2f} for x{flops_ratio:.2f} FLOPs "
            f"({'sublinear' if slower else 'superlinear'}; MFU {small['mfu']:.1%} -> {large['mfu']:.1%}): {why}"
            + _noise(small, large))


def length_steps(size: str, sweep: list[dict]) -> tuple[list[dict], list[str]]:
    """One size's length sweep: time per token and activation memory against length; rows and notes."""
    first, last = sweep[0], sweep[-1]
    length_ratio = last["seq_len"] / first["seq_len"]
    per_token = [s["seconds_per_step"] / s["tokens_per_step"] for s in sweep]
    rows = [row(f"time per token, {size}, {last['seq_len']} vs {first['seq_len']} tokens", per_token[-1] / per_token[0],
                last["flops_per_token"] / first["flops_per_token"], "FLOPs per token", "x", lower_is_better=True),
            row(f"activation memory, {size}, {last['seq_len']} vs {first['seq_len']} tokens (x{length_ratio:.0f})",
                last["activations_mb"] / first["activations_mb"], length_ratio, "linear in length", "x",
                lower_is_better=True)]
    return rows, [_time_note(size, sweep, per_token), _memory_note(size, sweep)]


def _time_note(size: str, sweep: list[dict], per_token: list[float]) -> str:
    for i in range(1, len(sweep)):
        time_ratio = per_token[i] / per_token[i - 1]
        flops_ratio = sweep[i]["flops_per_token"] / sweep[i - 1]["flops_per_token"]
        if abs(math.log(time_ratio / flops_ratio)) > math.log(TOLERANCE):
            a, b = sweep[i - 1], sweep[i]
            why = ("per-step fixed costs spread over more tokens" if time_ratio < flops_ratio else
                   f"attention's T^2 work (now {b['attention_flops_share']:.0%} of FLOPs) runs below matmul speed")
            return (f"length, {size}: {a['seq_len']} -> {b['seq_len']} tokens: time per token x{time_ratio:.2f} for "
                    f"x{flops_ratio:.2f} FLOPs per token (MFU {a['mfu']:.1%} -> {b['mfu']:.1%}): {why}" + _noise(a, b))
    first, last = sweep[0], sweep[-1]
    return (f"length, {size}: time per token followed FLOPs per token within {TOLERANCE}x from {first['seq_len']} "
            f"to {last['seq_len']} tokens (attention {last['attention_flops_share']:.0%} of FLOPs at the longest)")


def _memory_note(size: str, sweep: list[dict]) -> str:
    """The growth exponent of activation memory between consecutive lengths: ~1 linear, ~2 a T x T tensor."""
    exponents = [math.log(max(b["activations_mb"], 1e-3) / max(a["activations_mb"], 1e-3)) /
                 math.log(b["seq_len"] / a["seq_len"]) for a, b in itertools.pairwise(sweep)]
    steps = zip(itertools.pairwise(sweep), exponents)
    pairs = ", ".join(f"{a['seq_len']}->{b['seq_len']}: {e:.2f}" for (a, b), e in steps)
    verdict = ("grows faster than linear: something T x T is kept (attention scores)" if max(exponents) > TOLERANCE
               else f"at most linear: {sweep[-1]['attention']} attention keeps no T x T tensor")
    return f"length, {size}: activation memory growth exponent per step ({pairs}) {verdict}"


# ---- printing and main ----

def print_grid(title: str, configs: list[dict], gpu: bool) -> None:
    unit, scale = ("TFLOP/s", 1e12) if gpu else ("GFLOP/s", 1e9)
    print(f"\n{title}")
    print(f"{'size':>5} {'params':>11} {'seq':>5} {'tok/step':>8} {'s/step':>8} {'tokens/s':>9} {unit:>8} {'MFU':>6} "
          f"{'attn%':>6} {'peak MB':>8} {'state MB':>8} {'act MB':>8}")
    for c in configs:
        print(f"{c['size']:>5} {c['parameters']:>11,} {c['seq_len']:>5} {c['tokens_per_step']:>8} "
              f"{c['seconds_per_step']:>8.3f} {c['tokens_per_s']:>9.0f} {c['flops_per_s'] / scale:>8.1f} "
              f"{c['mfu']:>6.1%} {c['attention_flops_share']:>6.1%} {c['peak_mb']:>8.0f} {c['state_mb']:>8.0f} "
              f"{c['activations_mb']:>8.0f}")


def print_summary(table: list[dict], notes: list[str]) -> None:
    print(f"\n{'measure':<52} {'measured':>9} {'linear':>9}")
    for r in table:
        print(f"{r['measure']:<52} {r['ours']:>8.2f}x {r['reference']:>8.2f}x")
    print("\nwhere it stops being linear:")
    for note in notes:
        print(f"- {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--steps", type=int, help="timed steps per configuration (default: 3 quick, 5/10 full)")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # seconds-long check of the code
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from cpt.toy import ensure_toy

    gpu, started = on_gpu(), time.perf_counter()
    todo = plan(args.mode, gpu, args.smoke)
    steps = args.steps or todo["steps"]
    vocab_size = len(AutoTokenizer.from_pretrained(ensure_toy() / "model"))
    peak = matmul_peak()
    measured = {}  # (size, seq_len) -> figures; the size sweep and a length sweep share a configuration

    def config(size: str, seq_len: int) -> dict:
        if (size, seq_len) not in measured:
            print(f"running {size} at {seq_len} tokens ...", flush=True)
            measured[size, seq_len] = run_config(size, seq_len, vocab_size, steps, peak["bf16_flops_per_s"])
        return measured[size, seq_len]

    by_size = [config(size, todo["size_seq_len"]) for size in todo["sizes"]]
    by_seq_len = {size: [config(size, n) for n in lengths] for size, lengths in todo["seq_sweeps"].items()}
    table, notes = size_steps(by_size)
    if not gpu:
        notes.append("0.5B and lengths past 2048: full mode on a GPU only, not measured on this machine")
    for size, sweep in by_seq_len.items():
        rows, size_notes = length_steps(size, sweep)
        table, notes = table + rows, notes + size_notes
    seconds = time.perf_counter() - started
    print_grid(f"by model size, batch {BATCH} x {todo['size_seq_len']} tokens, median of {steps} steps ({machine()})",
               by_size, gpu)
    for size, sweep in by_seq_len.items():
        print_grid(f"by sequence length, {size}, batch {BATCH}", sweep, gpu)
    print_summary(table, notes)
    print(f"\nbf16 matmul peak {peak['bf16_flops_per_s'] / 1e9:.0f} GFLOP/s; {seconds:.0f} s in all")
    write_result({"benchmark": "scaling", "machine": machine(), "mode": "smoke" if args.smoke else args.mode,
                  "batch": BATCH, "steps": steps, "warmup_steps": WARMUP_STEPS, "matmul_peak": peak,
                  "seconds": seconds, "table": table, "notes": notes, "by_size": by_size,
                  "by_seq_len": by_seq_len}, args.out, "scaling.json")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
    else:
        main()
