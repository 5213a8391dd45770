"""The lm-eval model object for a checkpoint: `hf` (transformers, the default) or `vllm` (lm-eval's vLLM model).

    lm = make_lm(Path("runs/x/stages/sft/model"), EvalSettings(backend="hf"))
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from eval.checkpoint import load_for_eval
from eval.errors import EvalInputError
from eval.vllm_args import vllm_model_args

BACKENDS = ("hf", "vllm")


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def make_lm(checkpoint: Path, settings):
    """An lm-eval `LM` for `checkpoint` with `settings` (an EvalSettings)."""
    if settings.backend == "vllm":
        return _vllm_lm(checkpoint, settings)
    if settings.backend != "hf":
        raise EvalInputError(f"eval backend '{settings.backend}' is not one of {', '.join(BACKENDS)}")
    from lm_eval.models.huggingface import HFLM

    device = resolve_device(settings.device)
    model, tokenizer = load_for_eval(checkpoint, settings.tokenizer, settings.trust_remote_code, device, settings.dtype)
    # An in-memory model: lm-eval then neither re-reads the weights nor starts its own accelerate state.
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size)


def require_vllm(where: str = "eval.backend") -> None:
    """A clear error when vLLM is asked for (by the setting `where`) and is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise EvalInputError(
            f"{where} is 'vllm' but vLLM is not installed: install the extra on a CUDA machine "
            "(pip install 'cpt-pipeline[vllm]'), or set it to hf"
        )


def _vllm_lm(checkpoint: Path, settings):
    require_vllm()
    args = vllm_model_args(checkpoint, settings)  # checks the folder before vLLM starts
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(**args)
