"""The model arguments lm-eval's vLLM model (lm_eval/models/vllm_causallms.py, lm-eval 0.4.13) gets for a
checkpoint, worked out from the folder alone so that they can be checked without vLLM:

    vllm_model_args(Path("runs/x/stages/sft/model"), EvalSettings(backend="vllm"))
    # {"pretrained": ".../model", "dtype": "float32", "batch_size": "auto", "trust_remote_code": False}

- dtype: `auto` becomes the checkpoint's own dtype (config.json `dtype`, or `torch_dtype` before transformers
  5; for an adapter, its base's). vLLM's own `auto` serves a float32 checkpoint in 16 bits.
- a LoRA adapter folder is served on its base as a LoRA request, with `max_lora_rank` raised to the adapter's
  rank (lm-eval's default, 16, refuses r = 32). Other adapter types (OSF) vLLM cannot serve: refused.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from eval.checkpoint import ADAPTER_CONFIG, adapter_base, adapter_config, is_adapter
from eval.errors import EvalInputError

logger = logging.getLogger(__name__)

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # vllm/config/lora.py MaxLoRARanks
DTYPES = ("float32", "bfloat16", "float16")  # what lm-eval's VLLM accepts besides "auto"


def check_vllm_servable(folder: Path) -> None:
    """Raise EvalInputError unless vLLM can serve `folder`: a model folder, or a LoRA adapter within vLLM's ranks."""
    if not is_adapter(folder):
        return
    config = adapter_config(folder)
    kind = config.get("peft_type", "?")
    if kind != "LORA":
        raise EvalInputError(
            f"{folder / ADAPTER_CONFIG}: peft_type {kind}: vLLM serves only LoRA adapters; merge this adapter into "
            "its base (PEFT merge_and_unload, then save_pretrained) and evaluate the merged folder, or set eval.backend: hf"
        )
    if adapter_rank(config) > VLLM_LORA_RANKS[-1]:
        raise EvalInputError(f"{folder / ADAPTER_CONFIG}: r {adapter_rank(config)} is above vLLM's largest LoRA rank "
                             f"({VLLM_LORA_RANKS[-1]}); merge the adapter first, or set eval.backend: hf")


def adapter_rank(config: dict) -> int:
    """The largest rank of a LoRA adapter's modules: `r`, or a larger one from `rank_pattern`."""
    return max([int(config.get("r", 8)), *(int(r) for r in (config.get("rank_pattern") or {}).values())])


def vllm_lora_rank(rank: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds `rank`."""
    return next(allowed for allowed in VLLM_LORA_RANKS if allowed >= rank)


def checkpoint_dtype(folder: Path) -> str:
    """The dtype the checkpoint's weights were saved in, from its config (an adapter's: its base's);
    float32 when none is named, as transformers loads such a checkpoint."""
    weights = Path(adapter_base(folder)) if is_adapter(folder) else folder
    config_file = weights / "config.json"
    if config_file.is_file():
        config = json.loads(config_file.read_text(encoding="utf-8"))
    else:  # a hub name as an adapter's base: its config from the local cache (or the hub when online)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(str(weights)).to_dict()
    named = str(config.get("dtype") or config.get("torch_dtype") or "float32").removeprefix("torch.")
    return named if named in DTYPES else "float32"


def vllm_model_args(checkpoint: Path, settings) -> dict:
    """Keyword arguments for lm_eval.models.vllm_causallms.VLLM for `checkpoint` under `settings` (EvalSettings)."""
    check_vllm_servable(checkpoint)
    args = {
        "pretrained": adapter_base(checkpoint) if is_adapter(checkpoint) else str(checkpoint),
        "dtype": checkpoint_dtype(checkpoint) if settings.dtype == "auto" else settings.dtype,
        "batch_size": "auto",
        "trust_remote_code": settings.trust_remote_code,
    }
    if settings.tokenizer:
        args["tokenizer"] = settings.tokenizer
    if is_adapter(checkpoint):
        args["lora_local_path"] = str(checkpoint)  # served as a LoRA request, so the adapter is not dropped
        args["max_lora_rank"] = vllm_lora_rank(adapter_rank(adapter_config(checkpoint)))
    logger.info("vLLM eval of %s: dtype %s%s", checkpoint, args["dtype"],
                f", LoRA max rank {args['max_lora_rank']}" if "max_lora_rank" in args else "")
    return args
