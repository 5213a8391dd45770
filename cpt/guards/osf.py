"""OSF: orthogonal subspace fine-tuning ("Sculpting Subspaces", Nayak et al. 2025) through PEFT's OSFConfig.

Each target matrix is decomposed at the start of the stage (W = U S V^T of the *starting* model, so
earlier stages' updates are in the spectrum that is decomposed); the top `preserved` share of its
singular directions is frozen and the rest trained. PEFT projects each gradient off the preserved
directions with tensor hooks (which also run under DeepSpeed). What we add:
- the adaptive option: a preserved share per layer from its importance on earlier data (osf_ranks.py);
- `ProjectAfterStep`: Adam's per-coordinate scaling turns a projected gradient into an update that
  leaves the trainable subspace (measured: ~9% of the update's norm in the preserved left directions
  after 30 Adam steps on the toy model), so after each optimizer step the trainable factors are
  projected back. Then the stage's update has no component in the preserved subspace.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainerCallback

from cpt.guards.base import Guard
from cpt.guards.config import OSFSpec
from cpt.guards.osf_ranks import layer_importance, preserved_shares, rank_pattern
from cpt.runner.atomic import atomic_write_json

PRESERVED_FILE = "osf_preserved.json"  # the adaptive option's preserved share per layer, beside the model


class OSFGuard(Guard):
    name = "osf"

    def __init__(self, spec: OSFSpec, tokenizer=None, earlier_texts: list[str] | None = None):
        self.spec = spec
        self.tokenizer = tokenizer
        self.earlier_texts = earlier_texts  # the adaptive option's sample of earlier data
        self.shares: list[float] | None = None  # preserved share per decoder layer (adaptive)
        self.projector = ProjectAfterStep()

    def prepare_model(self, model):
        from peft import OSFConfig, get_peft_model

        pattern = None
        if self.earlier_texts:
            importance = layer_importance(model, self.tokenizer, self.earlier_texts)
            self.shares = preserved_shares(importance, self.spec.adaptive)
            pattern = rank_pattern(self.shares)
        config = OSFConfig(target_modules=self.spec.target_modules, effective_rank=self.spec.preserved,
                           rank_pattern=pattern, task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
        self.projector.layers = [m for m in model.modules() if hasattr(m, "osf_svd_params")]
        return model

    def attach(self, trainer) -> None:
        self.projector.trainer = trainer

    def callbacks(self) -> list:
        return [self.projector]

    def write_files(self, model, folder: Path) -> None:
        if self.shares is not None:
            atomic_write_json(Path(folder) / PRESERVED_FILE, {"preserved_share_per_layer": self.shares})


class ProjectAfterStep(TrainerCallback):
    """Keep OSF's trainable factors orthogonal to the preserved singular directions after every step."""

    def __init__(self):
        self.layers: list = []
        self.trainer = None

    def on_optimizer_step(self, args, state, control, **kwargs):
        with torch.no_grad():
            for layer in self.layers:
                for adapter, factors in layer.osf_svd_params.items():
                    self._set(factors["U_low"], project_left(layer, adapter, self._get(factors["U_low"])))
                    self._set(factors["V_low"], project_right(layer, adapter, self._get(factors["V_low"])))

    def _deepspeed(self) -> bool:
        return self.trainer is not None and self.trainer.is_deepspeed_enabled

    def _get(self, param: torch.Tensor) -> torch.Tensor:
        """The parameter's value; under DeepSpeed the optimizer's fp32 master copy, which is what steps."""
        if self._deepspeed():
            from deepspeed.utils import safe_get_full_fp32_param

            return safe_get_full_fp32_param(param)
        return param.data

    def _set(self, param: torch.Tensor, value: torch.Tensor) -> None:
        if self._deepspeed():
            from deepspeed.utils import safe_set_full_fp32_param

            safe_set_full_fp32_param(param, value)
            param.data.copy_(value.to(param.dtype))  # the working copy the next forward reads
        else:
            param.data.copy_(value)


def project_left(layer, adapter: str, u_low: torch.Tensor) -> torch.Tensor:
    """U_low without its component along the preserved left singular vectors (as PEFT's gradient hook)."""
    if adapter in layer._osf_U_high:
        u_high = layer._osf_U_high[adapter].to(u_low.dtype)
        return u_low - u_high @ (u_high.T @ u_low)
    basis = layer._osf_U_low_init[adapter].to(u_low.dtype)  # square case: the complement is U_low_init
    return basis @ (basis.T @ u_low)


def project_right(layer, adapter: str, v_low: torch.Tensor) -> torch.Tensor:
    """V_low (rows) without its component along the preserved right singular vectors."""
    if adapter in layer._osf_V_high:
        v_high = layer._osf_V_high[adapter].to(v_low.dtype)
        return v_low - (v_low @ v_high.T) @ v_high
    basis = layer._osf_V_low_init[adapter].to(v_low.dtype)
    return (v_low @ basis.T) @ basis
