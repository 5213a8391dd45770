"""What the machine can do: its name, the measured matrix-multiply peak, and model FLOPs utilisation.

    from hardware import device_name, matmul_peak, mfu, training_flops_per_token
    peak = matmul_peak()                      # {"bf16_flops_per_s": ..., "fp32_flops_per_s": ..., "device": ...}
    mfu(training_flops_per_token(config, seq_len) * tokens_per_s, peak["bf16_flops_per_s"])

The peak is measured, not looked up: the best of several timed square matmuls on the device training runs
on (this process's CPU threads, or the GPU), so MFU is the distance to what this machine really reaches.
FLOPs per token come from TRL's own `compute_flops_per_token` (forward + backward = 3 x forward; the LM
head counted, the embedding lookup not; attention at the full sequence length, PaLM's convention).
"""

from __future__ import annotations

import os
import platform
import time


def on_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def device_name() -> str:
    """'NVIDIA H100 80GB HBM3' on a GPU, else the CPU's model name and the cores torch uses."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{_cpu_model()} ({torch.get_num_threads()} threads)"


def machine() -> str:
    """One line naming the machine for tables: CPU model, cores, the processor kind (whether it runs bf16
    natively, which decides our stages' precision on a CPU: cpt/core/precision.py), and the GPU if any."""
    from cpt.core.precision import cpu_kind

    gpu = f", {device_name()}" if on_gpu() else ""
    return f"{platform.machine()} {_cpu_model()}, {os.cpu_count()} cpus, {cpu_kind()}{gpu}"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def matmul_peak(size: int | None = None, repeats: int = 20, budget_s: float = 10.0) -> dict:
    """The best FLOP/s of a size^3 matmul in bf16 and fp32 on the training device (2048 on CPU, 8192 on GPU).
    Best of many: on a shared machine single calls ran at a third to the whole of the best here. Each dtype
    stops repeating after `budget_s` seconds: emulated bf16 (a CPU without bf16 units) takes ~12 s a call."""
    import torch

    device = "cuda" if on_gpu() else "cpu"
    size = size or (8192 if device == "cuda" else 2048)
    peak = {"device": device_name(), "matmul_size": size}
    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32)):
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        started, times = time.perf_counter(), [_timed_matmul(a, b)]  # warm-up: kernel selection, page faults
        while len(times) <= repeats and time.perf_counter() - started < budget_s:
            times.append(_timed_matmul(a, b))
        peak[f"{name}_flops_per_s"] = 2 * size**3 / min(times[1:] or times)
    return peak


def _timed_matmul(a, b) -> float:
    import torch

    sync = torch.cuda.synchronize if a.is_cuda else (lambda: None)
    sync()
    started = time.perf_counter()
    torch.matmul(a, b)
    sync()
    return time.perf_counter() - started


def training_flops_per_token(config, seq_len: int) -> float:
    """Forward + backward FLOPs per trained token of a causal LM with this config (TRL's formula)."""
    from trl.trainer.utils import compute_flops_per_token

    return float(compute_flops_per_token(config, seq_len))


def forward_flops_per_token(config, seq_len: int) -> float:
    """One forward pass per token (a reference model's or a rollout's log-probs): a third of training's."""
    return training_flops_per_token(config, seq_len) / 3


def mfu(flops_per_s: float, peak_flops_per_s: float) -> float:
    """Model FLOPs utilisation as a fraction of the measured peak."""
    return flops_per_s / peak_flops_per_s
