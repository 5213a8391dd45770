"""OSF: orthogonal subspace fine-tuning ("Sculpting Subspaces", Nayak et al. 2025) through PEFT's OSFConfig.

Each target matrix is decomposed at the start of the stage (W = U S V^T of the *starting* model, so
earlier stages' updates are in the spectrum that is decomposed); the top `preserved` share of its
singular directions is frozen and the rest trained. PEFT projects each gradient off the preserved
directions with tensor hooks (which also run under DeepSpeed). What we add:
- the adaptive option: a preserved share per layer from its importance on earlier data (osf_ranks.py);
- OSF over a sequence: the preserved share grows with each OSF stage (`grow`), and/or each stage keeps
  clear of the earlier OSF stages' updates (`preserve_updates`); osf_sequence.py says how and why;
- `ProjectAfterStep`: Adam's per-coordinate scaling turns a projected gradient into an update that
  leaves the trainable subspace (measured: ~9% of the update's norm in the preserved left directions
  after 30 Adam steps on the toy model), so after each optimizer step the trainable factors are
  projected back. Then the stage's update has no component in the preserved subspace;
- with GRPO's vLLM generation, the weights reach vLLM merged without an unmerge (osf_vllm.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import TrainerCallback

from cpt.guards.base import Guard
from cpt.guards.config import OSFSpec
from cpt.guards.master_weights import master_value, set_master_value
from cpt.guards.olora import base_module_name
from cpt.guards.osf_ranks import layer_importance, preserved_shares, rank_pattern
from cpt.guards.osf_sequence import keep_clear_of, read_updates, update_directions, write_updates
from cpt.guards.travelling import OSF_RECORD, read_osf_record
from eval.files import atomic_write_json

PRESERVED_FILE = "osf_preserved.json"  # the adaptive option's preserved share per layer, beside the model


class OSFGuard(Guard):
    name = "osf"

    def __init__(self, spec: OSFSpec, tokenizer=None, earlier_texts: list[str] | None = None,
                 input_model: Path | None = None, stage: str | None = None):
        self.spec = spec
        self.tokenizer = tokenizer
        self.earlier_texts = earlier_texts  # the adaptive option's sample of earlier data
        self.stage = stage
        self.record = read_osf_record(input_model)  # the earlier OSF stages
        self.earlier_updates = read_updates(input_model) if input_model and spec.preserve_updates else {}
        self.preserved = spec.preserved_at(spec.preserved, len(self.record))  # this stage's share
        self.shares: list[float] | None = None  # preserved share per decoder layer (adaptive)
        self.layers: dict[str, object] = {}  # base module name -> its OSF layer
        self.projector = ProjectAfterStep()

    def prepare_model(self, model):
        from peft import OSFConfig, get_peft_model

        pattern = None
        if self.earlier_texts:
            importance = layer_importance(model, self.tokenizer, self.earlier_texts)
            shares = preserved_shares(importance, self.spec.adaptive)
            self.shares = [self.spec.preserved_at(share, len(self.record)) for share in shares]
            pattern = rank_pattern(self.shares)
        config = OSFConfig(target_modules=self.spec.target_modules, effective_rank=self.preserved,
                           rank_pattern=pattern, task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
        self.layers = {base_module_name(n): m for n, m in model.named_modules() if hasattr(m, "osf_svd_params")}
        for key, (left, right) in self.earlier_updates.items():
            if key in self.layers:
                keep_clear_of(self.layers[key], "default", left, right)
        self.projector.layers = list(self.layers.values())
        return model

    def attach(self, trainer) -> None:
        self.projector.trainer = trainer
        generation = getattr(trainer, "vllm_generation", None)  # GRPO with rollout.backend: vllm
        if generation is not None:
            from cpt.guards.osf_vllm import send_merged_weights

            send_merged_weights(generation)  # TRL's sync would unmerge, which OSF cannot (osf_vllm.py)

    def callbacks(self) -> list:
        return [self.projector]

    def write_files(self, model, folder: Path) -> None:
        """The record of OSF stages with this one appended; with preserve_updates, this stage's update
        directions appended to the earlier ones; the adaptive option's shares."""
        if self.shares is not None:
            atomic_write_json(Path(folder) / PRESERVED_FILE, {"preserved_share_per_layer": self.shares})
        entry = {"stage": self.stage, "preserved": round(self.preserved, 6)}
        if self.shares is not None:
            entry["preserved_per_layer"] = [round(share, 6) for share in self.shares]
        if self.spec.preserve_updates:
            entry["update_rank"] = self.spec.update_rank
            self._write_updates(folder)
        atomic_write_json(Path(folder) / OSF_RECORD, {"stages": [*self.record, entry]})

    def _write_updates(self, folder: Path) -> None:
        updates = dict(self.earlier_updates)
        for key, layer in self.layers.items():
            left, right = update_directions(layer.get_delta_weight("default").detach().cpu(), self.spec.update_rank)
            if key in updates:
                left, right = torch.cat([updates[key][0], left]), torch.cat([updates[key][1], right])
            updates[key] = (left, right)
        write_updates(folder, updates)


class ProjectAfterStep(TrainerCallback):
    """Keep OSF's trainable factors orthogonal to the preserved singular directions after every step."""

    def __init__(self):
        self.layers: list = []
        self.trainer = None

    def on_optimizer_step(self, args, state, control, **kwargs):
        with torch.no_grad():
            for layer in self.layers:
                for adapter, factors in layer.osf_svd_params.items():
                    if not factors["U_low"].requires_grad:  # TRL's DPO adds a frozen copy as its reference ("ref")
                        continue
                    u_low, v_low = master_value(self.trainer, factors["U_low"]), master_value(self.trainer, factors["V_low"])
                    set_master_value(self.trainer, factors["U_low"], project_left(layer, adapter, u_low))
                    set_master_value(self.trainer, factors["V_low"], project_right(layer, adapter, v_low))


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
