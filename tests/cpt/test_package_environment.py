"""What importing `cpt` sets up for every process that trains or evaluates (cpt/__init__.py): hub kernels off
unless the user turned them on. Each case runs in a fresh interpreter, since this one imported cpt already.
(On a GPU the Trainer's `model.train()` fetches the kernels a model loaded with `use_kernels` maps; here, on a
CPU, the loaded model's `use_kernels` flag is what shows whether it would.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LOAD = ("import cpt, sys; from cpt.stages.training import load_model; from types import SimpleNamespace; "
        "model = load_model(SimpleNamespace(input_model=sys.argv[1], trust_remote_code=False)); "
        "print(model.use_kernels)")


def _use_kernels(model_dir, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "USE_HUB_KERNELS"}
    done = subprocess.run([sys.executable, "-c", LOAD, str(model_dir)], capture_output=True, text=True, check=False,
                          env={**clean, "HF_HUB_OFFLINE": "1", **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()[-1]


@pytest.mark.slow  # two fresh interpreters that import transformers and load a model: ~20 s
@pytest.mark.parametrize(("env", "expected"), [({}, "False"), ({"USE_HUB_KERNELS": "YES"}, "True")])
def test_models_load_without_hub_kernels_unless_the_user_asks(toy_dir, env, expected):
    pytest.importorskip("kernels")  # transformers loads with hub kernels only where the package is installed
    assert _use_kernels(toy_dir / "model", **env) == expected
