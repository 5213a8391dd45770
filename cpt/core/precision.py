"""Which precision a stage trains in, and why: bf16 autocast only where the hardware runs it natively.

    from cpt.core.precision import choose_precision
    choose_precision({"learning_rate": 1e-3})   # Precision(bf16=False, reason="this CPU has no native bf16 (AVX2)")

On a CPU with bf16 matrix units (AMX, AVX512-BF16, Arm BF16) bf16 autocast is the fastest setting; on one
without them (AVX2 only: most laptops and many AMD servers) oneDNN emulates bf16 and a toy SFT stage took
181.8 s against 17.7 s in fp32. So on CPU we read the processor's flags (and ask oneDNN whether it will use
them: ONEDNN_MAX_CPU_ISA can switch them off), and time a tiny probe only where the flags cannot be read.
`CPT_CPU_BF16=0|1` forces the answer (to test the fp32 path on an AMX machine, or the reverse).
A recipe's own `bf16:`/`fp16:` always wins; asking for bf16 on a CPU without it warns once per stage.

Below SMALL_MODEL_PARAMS a CPU trains in fp32 even with AMX: autocast's casts then cost more than its
matmuls save (the 0.9M toy's quickstart on AMX: 142 s in bf16 against 115 s in fp32, and bf16 learned
worse: date_format 14% against 90%; a 5M model was 1.6x faster in bf16).
"""

from __future__ import annotations

import functools
import json
import math
import os
import platform
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import torch

FORCE_ENV = "CPT_CPU_BF16"
# /proc/cpuinfo flags of native bf16 matrix instructions: x86 AMX and AVX512-BF16, Arm's BF16 extension.
NATIVE_BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16", "bf16": "Arm BF16"}
SMALL_MODEL_PARAMS = 2_000_000
EMULATED_BF16_SLOWDOWN = 10  # measured: 181.8 s vs 17.7 s for a toy SFT stage on an AVX2-only EPYC


@dataclass(frozen=True)
class Precision:
    bf16: bool
    fp16: bool
    reason: str

    @property
    def name(self) -> str:
        return "bf16" if self.bf16 else "fp16" if self.fp16 else "fp32"

    def describe(self) -> str:
        """'fp32: this CPU has no native bf16 (AVX2)': what plan, the run log and the manifest show."""
        return f"{self.name}: {self.reason}"


@dataclass(frozen=True)
class CpuBf16:
    native: bool
    how: str  # what decided it, for messages
    forced: bool = False  # CPT_CPU_BF16 decided it, not the processor

    def phrase(self) -> str:
        """'this CPU has native bf16 (AMX)' / '... no native bf16 (AVX2)' / 'bf16 forced off (CPT_CPU_BF16=0)'."""
        if self.forced:
            return f"bf16 forced {'on' if self.native else 'off'} ({self.how})"
        return f"this CPU has {'native' if self.native else 'no native'} bf16 ({self.how})"


def choose_precision(train: dict, model_params: int | None = None) -> Precision:
    """The stage's precision from its recipe `train:` mapping, this machine and, where known, the size of
    the model it trains (`count_parameters` of the stage's starting folder)."""
    asked_bf16, asked_fp16 = train.get("bf16"), train.get("fp16")
    if asked_fp16:
        return Precision(False, True, "the recipe sets fp16: true")
    if torch.cuda.is_available():
        if asked_bf16 is not None:
            return Precision(bool(asked_bf16), False, f"the recipe sets bf16: {str(bool(asked_bf16)).lower()}")
        supported = torch.cuda.is_bf16_supported()
        return Precision(supported, False, "this GPU supports bf16" if supported else "this GPU has no bf16")
    cpu = cpu_bf16()
    if asked_bf16 is not None:
        reason = f"the recipe sets bf16: {str(bool(asked_bf16)).lower()}"
        if asked_bf16 and not cpu.native:
            reason += f" (this CPU has no native bf16, {cpu.how}: expect about {EMULATED_BF16_SLOWDOWN}x slower than fp32)"
        return Precision(bool(asked_bf16), False, reason)
    if cpu.native and model_params is not None and model_params < SMALL_MODEL_PARAMS:
        return Precision(False, False, f"a {model_params / 1e6:.1f}M-parameter model trains faster in fp32 on a CPU")
    return Precision(cpu.native, False, cpu.phrase())


def emulated_bf16_warning(precision: Precision) -> str | None:
    """The warning for a recipe that asks for bf16 on a CPU that only emulates it, else None."""
    if precision.bf16 and not torch.cuda.is_available() and not cpu_bf16().native:
        return (f"bf16 was asked for on a CPU without native bf16 ({cpu_bf16().how}); it runs as asked, "
                f"about {EMULATED_BF16_SLOWDOWN}x slower than fp32: remove `bf16: true` from the stage's train: to run fp32")
    return None


@functools.lru_cache(maxsize=1)
def cpu_bf16() -> CpuBf16:
    """Whether this CPU runs bf16 matrix products natively (cached for the process)."""
    forced = os.environ.get(FORCE_ENV, "").strip()
    if forced in ("0", "1"):
        return CpuBf16(forced == "1", f"{FORCE_ENV}={forced}", forced=True)
    return _processor_bf16()


def _processor_bf16() -> CpuBf16:
    """What the processor (and oneDNN) offers, whatever CPT_CPU_BF16 says."""
    capability = _capability()
    if not _onednn_bf16():
        return CpuBf16(False, capability)
    flags = _cpu_flags()
    if flags is not None:
        found = [label for flag, label in NATIVE_BF16_FLAGS.items() if flag in flags]
        return CpuBf16(bool(found), ", ".join(found) if found else capability)
    return _probe()


def count_parameters(folder: str | Path | None) -> int | None:
    """Parameters of the model saved in `folder`, from its safetensors headers alone (no weights read);
    None where there is no such file (a hub name, a pickle checkpoint)."""
    files = sorted(Path(folder).glob("*.safetensors")) if folder and Path(folder).is_dir() else []
    if not files:
        return None
    total = 0
    try:
        for file in files:
            with open(file, "rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                header = json.loads(handle.read(length))
            total += sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return total


def cpu_kind() -> str:
    """One phrase for benchmark tables: 'AMX bf16' / 'AVX2, no native bf16' / 'AMX, bf16 forced off (CPT_CPU_BF16=0)'."""
    cpu = cpu_bf16()
    if cpu.forced:
        processor = _processor_bf16()
        return f"{processor.how}{'' if processor.native else ' without native bf16'}, {cpu.phrase()}"
    return f"{cpu.how} bf16" if cpu.native else f"{cpu.how}, no native bf16"


def _capability() -> str:
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return platform.machine()


def _onednn_bf16() -> bool:
    """oneDNN's own answer (False where ONEDNN_MAX_CPU_ISA caps it below the bf16 kernels)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True  # cannot tell: let the flags or the probe decide


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo ('flags' on x86, 'Features' on Arm), None elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        return None
    return None


def _probe(size: int = 256, repeats: int = 5) -> CpuBf16:
    """Where no flags can be read (macOS, Windows): time a bf16 and an fp32 matmul (about 0.1 s).
    Native bf16 ran 4-8x faster than fp32 here, emulated 15x slower: halfway is a safe line."""
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        timings[dtype] = best
    native = timings[torch.bfloat16] <= timings[torch.float32]
    ratio = timings[torch.float32] / timings[torch.bfloat16]
    return CpuBf16(native, f"timed probe: bf16 {ratio:.1f}x fp32's speed")
