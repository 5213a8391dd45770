"""Load a checkpoint folder for evaluation: a full model, or a PEFT adapter (LoRA, O-LoRA, OSF) on its base.

    check_checkpoint(folder)                     # EvalInputError if missing or half-written
    model, tokenizer = load_for_eval(folder, device="cpu")

An adapter folder is evaluated as the trained model: the adapter is loaded on its base and merged
(or kept as an adapter when its type cannot merge), never silently dropped.
"""

from __future__ import annotations

import json
from pathlib import Path

from eval.errors import EvalInputError

ADAPTER_CONFIG = "adapter_config.json"


def is_adapter(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file()


def check_checkpoint(folder: Path) -> None:
    """Raise EvalInputError unless `folder` holds a config and safetensors weights."""
    if not folder.is_dir():
        raise EvalInputError(f"checkpoint {folder} not found")
    has_config = (folder / "config.json").is_file() or is_adapter(folder)
    if not has_config or not any(folder.glob("*.safetensors")):
        raise EvalInputError(
            f"checkpoint {folder} is half-written or not a model folder: expected config.json "
            f"(or {ADAPTER_CONFIG}) and *.safetensors weights"
        )


def adapter_config(folder: Path) -> dict:
    """The adapter's adapter_config.json (PEFT's: peft_type, r, base_model_name_or_path, ...)."""
    try:
        return json.loads((folder / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalInputError(f"{folder / ADAPTER_CONFIG}: cannot read it ({exc})") from None


def adapter_base(folder: Path) -> str:
    """The base model an adapter folder was trained on (`base_model_name_or_path` of its config)."""
    base = adapter_config(folder).get("base_model_name_or_path")
    if not base:
        raise EvalInputError(f"{folder / ADAPTER_CONFIG} names no base_model_name_or_path")
    return base


def torch_dtype(dtype: str, device: str):
    """`auto` is bfloat16 on a GPU and float32 on a CPU (where bf16 generation gains little and rounds more)."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, dtype)


def load_for_eval(
    folder: Path, tokenizer_dir: str | None = None, trust_remote_code: bool = False, device: str = "cpu",
    dtype: str = "auto",
):
    """(model, tokenizer) of the checkpoint in `folder`, in eval mode on `device`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_checkpoint(folder)
    weights_dir = adapter_base(folder) if is_adapter(folder) else str(folder)
    model = AutoModelForCausalLM.from_pretrained(
        weights_dir, dtype=torch_dtype(dtype, device), trust_remote_code=trust_remote_code
    )
    if is_adapter(folder):
        model = _with_adapter(model, folder)
    tokenizer_source = tokenizer_dir or (str(folder) if _has_tokenizer(folder) else weights_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source, trust_remote_code=trust_remote_code)
    return model.to(device).eval(), tokenizer


def _with_adapter(model, folder: Path):
    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(model, str(folder))
    try:
        return peft_model.merge_and_unload()
    except (AttributeError, NotImplementedError, ValueError):
        return peft_model  # an adapter type that cannot merge still runs as an adapter


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer_config.json").is_file()
