"""Precision per stage from what the processor can do: the choice with the CPU's bf16 capability mocked
both ways (flags, oneDNN, the override, the probe where no flags exist), the recipe's setting winning,
and one real run on this machine that records what it chose."""

from __future__ import annotations

import json

import pytest

from cpt.core import precision
from cpt.core.precision import (
    FORCE_ENV,
    SMALL_MODEL_PARAMS,
    choose_precision,
    count_parameters,
    cpu_bf16,
    cpu_kind,
    emulated_bf16_warning,
)
from cpt.recipe.load import load_recipe
from cpt.runner.run import run_recipe
from tests.helpers import run_cli, tiny_sft_recipe, write_recipe


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be a CPU machine with the given flags and oneDNN answer; the cache is cleared around."""
    monkeypatch.delenv(FORCE_ENV, raising=False)
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "_capability", lambda: "AVX2")

    def pretend(flags, onednn=True):
        monkeypatch.setattr(precision, "_cpu_flags", lambda: flags)
        monkeypatch.setattr(precision, "_onednn_bf16", lambda: onednn)
        cpu_bf16.cache_clear()

    yield pretend
    cpu_bf16.cache_clear()


def test_fp32_on_a_cpu_without_native_bf16(cpu):
    cpu({"avx", "avx2", "fma"})
    chosen = choose_precision({"learning_rate": 1e-3})
    assert (chosen.bf16, chosen.fp16) == (False, False)
    assert chosen.describe() == "fp32: this CPU has no native bf16 (AVX2)"


@pytest.mark.parametrize("flag, label", [("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("bf16", "Arm BF16")])
def test_bf16_where_the_cpu_has_bf16_matrix_instructions(cpu, flag, label):
    cpu({"avx2", flag})
    chosen = choose_precision({})
    assert chosen.bf16 and chosen.describe() == f"bf16: this CPU has native bf16 ({label})"


def test_a_small_model_trains_in_fp32_even_with_amx_unless_the_recipe_asks(cpu):
    cpu({"amx_bf16"})
    small = choose_precision({}, model_params=900_000)
    assert not small.bf16 and small.describe() == "fp32: a 0.9M-parameter model trains faster in fp32 on a CPU"
    assert choose_precision({}, model_params=SMALL_MODEL_PARAMS).bf16
    assert choose_precision({}, model_params=None).bf16  # size unknown (a hub name): the hardware decides
    assert choose_precision({"bf16": True}, model_params=900_000).bf16


def test_parameters_are_counted_from_safetensors_headers(tmp_path, toy_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model")
    assert count_parameters(toy_dir / "model") == sum(p.numel() for p in model.parameters())
    assert count_parameters(tmp_path) is None and count_parameters(tmp_path / "missing") is None
    (tmp_path / "model.safetensors").write_bytes(b"\x05")  # truncated: unknown, not a crash
    assert count_parameters(tmp_path) is None


def test_onednn_capped_below_its_bf16_kernels_means_fp32_whatever_the_flags(cpu):
    cpu({"amx_bf16", "avx512_bf16"}, onednn=False)  # as with ONEDNN_MAX_CPU_ISA=AVX2
    assert not choose_precision({}).bf16


def test_the_recipe_setting_wins_both_ways_and_emulated_bf16_warns(cpu):
    cpu({"avx2"})
    asked = choose_precision({"bf16": True})
    assert asked.bf16 and "the recipe sets bf16: true" in asked.reason and "10x slower" in asked.reason
    warning = emulated_bf16_warning(asked)
    assert warning and "10x slower than fp32" in warning and "bf16: true" in warning
    assert emulated_bf16_warning(choose_precision({})) is None  # fp32 chosen: nothing to warn about

    cpu({"amx_bf16"})
    refused = choose_precision({"bf16": False})
    assert not refused.bf16 and refused.reason == "the recipe sets bf16: false"
    assert emulated_bf16_warning(choose_precision({"bf16": True})) is None  # native: no warning
    fp16 = choose_precision({"fp16": True})
    assert fp16.fp16 and not fp16.bf16 and fp16.name == "fp16"


def test_the_environment_override_forces_either_answer(cpu, monkeypatch):
    cpu({"amx_bf16"})
    monkeypatch.setenv(FORCE_ENV, "0")
    cpu_bf16.cache_clear()
    assert choose_precision({}).describe() == f"fp32: bf16 forced off ({FORCE_ENV}=0)"
    assert cpu_kind() == f"AMX, bf16 forced off ({FORCE_ENV}=0)"  # the processor, then the override
    cpu({"avx2"})
    monkeypatch.setenv(FORCE_ENV, "1")
    cpu_bf16.cache_clear()
    assert choose_precision({}).bf16


def test_without_cpu_flags_a_timed_probe_decides_once(cpu, monkeypatch):
    calls = []

    def probe():
        calls.append(1)
        return precision.CpuBf16(False, "timed probe: bf16 0.1x fp32's speed")

    monkeypatch.setattr(precision, "_probe", probe)
    cpu(None)  # no /proc/cpuinfo (macOS, Windows)
    assert not choose_precision({}).bf16 and not choose_precision({}).bf16
    assert calls == [1], "the probe result is cached for the process"


def test_the_real_probe_returns_a_decision_with_its_measured_ratio():
    measured = precision._probe(size=64, repeats=2)
    assert isinstance(measured.native, bool) and measured.how.startswith("timed probe: bf16 ")


def test_gpu_follows_the_device_and_the_recipe(monkeypatch):
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(precision.torch.cuda, "is_bf16_supported", lambda: True)
    assert choose_precision({}).describe() == "bf16: this GPU supports bf16"
    assert not choose_precision({"bf16": False}).bf16
    monkeypatch.setattr(precision.torch.cuda, "is_bf16_supported", lambda: False)
    assert not choose_precision({}).bf16


@pytest.mark.slow
def test_a_real_run_records_and_uses_the_precision_chosen_here(tmp_path, toy_dir, cli_state_restored):
    expected = choose_precision({}, count_parameters(toy_dir / "model")).describe()
    recipe = tiny_sft_recipe(tmp_path, steps=4, save_steps=2)
    recipe["stages"][1]["train"]["bf16"] = not expected.startswith("bf16")  # the recipe's own setting wins
    recipe["eval"] = None
    path = write_recipe(tmp_path / "r.yaml", recipe)
    plan = run_cli("plan", str(path))
    assert plan.returncode == 0 and f"    precision: {expected}" in plan.stdout, plan.stdout

    run_recipe(load_recipe(path, []), path.read_text())
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["stages"]["a"]["precision"] == expected
    flipped = manifest["stages"]["b"]["precision"]
    assert flipped.startswith("fp32" if expected.startswith("bf16") else "bf16") and "the recipe sets" in flipped
    # The trainer ran as recorded: the checkpoint's trainer state carries the arguments it trained with.
    for stage, bf16 in (("a", expected.startswith("bf16")), ("b", not expected.startswith("bf16"))):
        args = json.loads((tmp_path / "t" / "stages" / stage / "train_args.json").read_text())
        assert args["bf16"] is bf16, (stage, args["bf16"])
