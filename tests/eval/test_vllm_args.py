"""The arguments the vllm eval backend gives lm-eval's VLLM model, worked out from real checkpoint folders
(the toy model, real PEFT LoRA and OSF adapters): the checkpoint's own dtype instead of vLLM's 16-bit
`auto`, max_lora_rank from the adapter's rank, OSF adapters refused (by `cpt plan` too). vLLM cannot run
here: the argument names are checked against lm-eval's source, and one test hands them to a stand-in for
lm-eval's VLLM class (it imports vllm at module level). Run: python -m pytest tests/eval/test_vllm_args.py"""

from __future__ import annotations

import ast
import json
import shutil
import sys
import types
from pathlib import Path

import lm_eval
import pytest
from transformers import AutoModelForCausalLM

import eval.backends
from eval.backends import make_lm
from eval.errors import EvalInputError
from eval.harness import EvalSettings
from eval.vllm_args import vllm_model_args
from tests.helpers import run_cli, tiny_sft_recipe, write_recipe

VLLM = EvalSettings(backend="vllm")


def _adapter(toy_dir, folder: Path, config) -> Path:
    from peft import get_peft_model

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(toy_dir / "model"), config)
    model.save_pretrained(folder)
    return folder


def _lora(toy_dir, folder, **settings):
    from peft import LoraConfig

    return _adapter(toy_dir, folder, LoraConfig(target_modules=["q_proj", "v_proj"], **settings))


def _lm_eval_vllm_parameters() -> set[str]:
    """The parameter names of lm-eval's VLLM.__init__, read from its source (importing it needs vLLM)."""
    source = Path(lm_eval.__file__).parent / "models" / "vllm_causallms.py"
    cls = next(n for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.ClassDef) and n.name == "VLLM")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}


def test_lora_adapter_is_served_with_its_rank_and_its_base_dtype(toy_dir, tmp_path):
    adapter = _lora(toy_dir, tmp_path / "r32", r=32)
    args = vllm_model_args(adapter, VLLM)
    assert args == {"pretrained": str(toy_dir / "model"), "dtype": "float32", "batch_size": "auto",
                    "trust_remote_code": False, "lora_local_path": str(adapter), "max_lora_rank": 32}
    assert set(args) <= _lm_eval_vllm_parameters()  # every key is one of lm-eval 0.4.13's VLLM arguments
    # vLLM takes only some ranks (1, 8, 16, 32, 64, ...): r 20 needs 32; a larger rank_pattern entry counts.
    assert vllm_model_args(_lora(toy_dir, tmp_path / "r20", r=20), VLLM)["max_lora_rank"] == 32
    patterned = _lora(toy_dir, tmp_path / "pattern", r=8, rank_pattern={"v_proj": 64})
    assert vllm_model_args(patterned, VLLM)["max_lora_rank"] == 64


def test_dtype_is_the_checkpoints_own_unless_asked(toy_dir, tmp_path):
    model = shutil.copytree(toy_dir / "model", tmp_path / "model")
    assert json.loads((model / "config.json").read_text())["dtype"] == "float32"
    assert vllm_model_args(model, VLLM)["dtype"] == "float32"  # vLLM's own "auto" would serve it in 16 bits
    assert vllm_model_args(model, EvalSettings(backend="vllm", dtype="bfloat16"))["dtype"] == "bfloat16"
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, "dtype": "bfloat16"}))
    assert vllm_model_args(model, VLLM)["dtype"] == "bfloat16"
    (model / "config.json").write_text(json.dumps({k: v for k, v in config.items() if k != "dtype"}))
    assert vllm_model_args(model, VLLM)["dtype"] == "float32"  # none named: what transformers loads it as


def test_osf_adapter_is_refused(toy_dir, tmp_path):
    from peft import OSFConfig

    adapter = _adapter(toy_dir, tmp_path / "osf", OSFConfig(target_modules=["q_proj"], effective_rank=8))
    with pytest.raises(EvalInputError, match=r"adapter_config.json: peft_type OSF: vLLM serves only LoRA adapters; "
                                             r"merge this adapter"):
        vllm_model_args(adapter, VLLM)


def test_make_lm_hands_the_arguments_to_lm_evals_vllm(toy_dir, tmp_path, monkeypatch):
    """A stand-in for lm_eval.models.vllm_causallms (it needs vLLM, which cannot be installed here)."""
    received = {}
    stand_in = types.ModuleType("lm_eval.models.vllm_causallms")
    stand_in.VLLM = lambda **kwargs: received.update(kwargs) or "lm"
    monkeypatch.setitem(sys.modules, "lm_eval.models.vllm_causallms", stand_in)
    monkeypatch.setattr(eval.backends, "require_vllm", lambda: None)
    adapter = _lora(toy_dir, tmp_path / "r32", r=32)
    assert make_lm(adapter, VLLM) == "lm"
    assert received == vllm_model_args(adapter, VLLM)


def test_plan_refuses_an_osf_adapter_base_for_vllm_eval(toy_dir, tmp_path):
    from peft import OSFConfig

    base = _adapter(toy_dir, tmp_path / "osf", OSFConfig(target_modules=["q_proj"], effective_rank=8))
    shutil.copy(toy_dir / "model" / "config.json", base / "config.json")  # a folder the recipe accepts as a model
    recipe = tiny_sft_recipe(tmp_path)
    recipe["model"]["name_or_path"] = str(base)
    result = run_cli("plan", str(write_recipe(tmp_path / "r.yaml", recipe)), "eval.backend=vllm")
    assert result.returncode == 2
    assert f"{base}/adapter_config.json: peft_type OSF: vLLM serves only LoRA adapters" in result.stderr
    assert "Traceback" not in result.stderr
