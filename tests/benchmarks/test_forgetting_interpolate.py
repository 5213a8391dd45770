"""benchmarks/forgetting_interpolate.py: alpha 0 is the run's base, alpha 1 its last model read from the run's own
eval cache, and any alpha between is a merged folder holding base + alpha * (last - base), written once.
The scoring is the run's evaluator and forgetting_general's (tests/benchmarks/test_forgetting_general.py).
Run: pytest tests/benchmarks/test_forgetting_interpolate.py"""

from __future__ import annotations

import shutil

import torch
from forgetting_interpolate import interpolated
from safetensors.torch import load_file, save_file


def _model(folder, value: float):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.full((2, 3), value)}, str(folder / "model.safetensors"))
    return folder


def test_each_alpha_is_the_base_the_last_model_or_their_interpolation(tmp_path):
    run_dir = tmp_path / "freeze-s0"
    base, last = _model(tmp_path / "base", 1.0), _model(run_dir / "stages" / "t3_addition" / "model", 3.0)
    assert interpolated(run_dir, 0.0, base, last)[0] == base
    model, results = interpolated(run_dir, 1.0, base, last)
    assert model == last and results == run_dir / "stages" / "t3_addition" / "eval"
    model, results = interpolated(run_dir, 0.25, base, last)
    assert model == tmp_path / "interpolate" / "freeze-s0" / "a0.25" and results.name == "eval-a0.25"
    assert torch.equal(load_file(str(model / "model.safetensors"))["w"], torch.full((2, 3), 1.5))
    shutil.rmtree(last)  # written once: a second call reuses the merged folder
    assert interpolated(run_dir, 0.25, base, last)[0] == model
