"""lm-eval on one checkpoint: lm-eval's results format, the per-task cache and what invalidates it, bad input.
Real lm-eval and the real toy model; no training. Run: pytest tests/eval/test_harness.py -q"""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from eval.backends import make_lm
from eval.errors import EvalInputError
from eval.harness import EvalSettings, evaluate_checkpoint
from eval.tasks import TaskCatalog

SETTINGS = EvalSettings(limit=8, batch_size=8, max_gen_toks=8, device="cpu")


@pytest.fixture
def catalog(toy_dir):
    return TaskCatalog([toy_dir / "tasks"])


@pytest.fixture
def model_copy(toy_dir, tmp_path):
    return shutil.copytree(toy_dir / "model", tmp_path / "model")


class ForwardCounter:
    """Counts forward calls of every torch module while active: proves a cached evaluation ran no model."""

    def __enter__(self):
        self.calls = 0
        self._handle = torch.nn.modules.module.register_module_forward_hook(self._count)
        return self

    def _count(self, *args):
        self.calls += 1

    def __exit__(self, *exc):
        self._handle.remove()


def test_results_in_lm_eval_format_then_cached_without_forward_passes(model_copy, catalog, tmp_path):
    out = tmp_path / "eval"
    with ForwardCounter() as first_pass:
        first = evaluate_checkpoint(model_copy, ["date_format", "capitals"], catalog, SETTINGS, out)
    assert first_pass.calls > 0 and not any(r.cached for r in first.values())
    stored = json.loads((out / "date_format.json").read_text())
    for section in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config"):
        assert list(stored[section]) == ["date_format"] or section == "config", section
    assert stored["results"]["date_format"]["sample_len"] == 8
    assert stored["cpt_cache"]["checkpoint"] == str(model_copy)
    assert first["date_format"].metric == "exact_match,strip" and first["date_format"].score == 0.0
    samples = (out / "date_format.samples.jsonl").read_text().splitlines()
    assert len(samples) == 8 and json.loads(samples[0])["task"] == "date_format"

    with ForwardCounter() as second_pass:
        second = evaluate_checkpoint(model_copy, ["date_format", "capitals"], catalog, SETTINGS, out)
    assert second_pass.calls == 0
    assert all(r.cached for r in second.values())
    assert {t: r.score for t, r in second.items()} == {t: r.score for t, r in first.items()}


def test_changed_weights_task_or_settings_recompute(model_copy, catalog, tmp_path):
    out = tmp_path / "eval"
    evaluate_checkpoint(model_copy, ["capitals", "sorting"], catalog, SETTINGS, out)
    assert all(r.cached for r in evaluate_checkpoint(model_copy, ["capitals"], catalog, SETTINGS, out).values())

    more = EvalSettings(limit=12, batch_size=8, max_gen_toks=8, device="cpu")
    assert not evaluate_checkpoint(model_copy, ["capitals"], catalog, more, out)["capitals"].cached

    weights = load_file(model_copy / "model.safetensors")
    name = next(iter(weights))
    weights[name] = weights[name] * 0.5
    save_file(weights, model_copy / "model.safetensors", metadata={"format": "pt"})
    assert not evaluate_checkpoint(model_copy, ["sorting"], catalog, more, out)["sorting"].cached


def test_compute_false_reads_only_the_cache(model_copy, catalog, tmp_path):
    out = tmp_path / "eval"
    evaluate_checkpoint(model_copy, ["capitals"], catalog, SETTINGS, out)
    with ForwardCounter() as counter:
        results = evaluate_checkpoint(model_copy, ["capitals", "sorting"], catalog, SETTINGS, out, compute=False)
    assert counter.calls == 0
    assert results["capitals"].cached and results["sorting"].score is None
    assert not (out / "sorting.json").exists()


def test_unknown_task_names_the_nearest(model_copy, catalog, tmp_path):
    with pytest.raises(EvalInputError, match=r"'date_fromat' \(did you mean date_format"):
        evaluate_checkpoint(model_copy, ["date_fromat"], catalog, SETTINGS, tmp_path / "eval")
    assert not (tmp_path / "eval").exists()


def test_missing_or_half_written_checkpoint(model_copy, catalog, tmp_path):
    with pytest.raises(EvalInputError, match="not found"):
        evaluate_checkpoint(tmp_path / "nowhere", ["capitals"], catalog, SETTINGS, tmp_path / "eval")
    (model_copy / "model.safetensors").unlink()
    with pytest.raises(EvalInputError, match="half-written"):
        evaluate_checkpoint(model_copy, ["capitals"], catalog, SETTINGS, tmp_path / "eval")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_vllm_backend_without_vllm_names_the_extra(model_copy):
    with pytest.raises(EvalInputError, match=r"pip install 'cpt-pipeline\[vllm\]'"):
        make_lm(model_copy, EvalSettings(backend="vllm"))
