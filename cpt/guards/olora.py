"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning").

Each stage trains a new LoRA; the loss adds lambda1 * sum over adapted matrices of |A_prev A_new^T|
(elementwise absolute sum) + lambda2 * the new LoRA's L2 norm. The earlier stages' LoRAs stay frozen
and active: they are merged into the starting model, which is the same function, and their A matrices
(the input subspaces they read) travel with each stage's model folder in `olora_subspaces.safetensors`,
so the next O-LoRA stage keeps clear of every earlier one (stages without O-LoRA in between hand the file
on: guards/travelling.py). PEFT has no O-LoRA; this is that loss term.

Under DeepSpeed ZeRO-3 a LoRA matrix larger than stage3_param_persistence_threshold (1e5 elements by
default: r 32 on a 4096-wide model; 10 x hidden size when a DeepSpeed config file leaves it "auto") is an
empty shard outside its module's forward. The penalty gathers the new LoRA's weights for its own computation
(a collective every rank makes, as every rank computes the loss) and computes on copies, so the backward
does not read the parameters DeepSpeed has emptied again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from cpt.core.distributed import zero_stage
from cpt.guards.base import Guard
from cpt.guards.config import OLoRASpec
from cpt.guards.travelling import OLORA_SUBSPACES as SUBSPACES_FILE


def read_subspaces(folder: Path) -> dict[str, torch.Tensor]:
    """Module name -> earlier stages' A matrices stacked along the rank (empty for the first stage)."""
    from safetensors.torch import load_file

    path = Path(folder) / SUBSPACES_FILE
    return load_file(str(path)) if path.is_file() else {}


def base_module_name(peft_name: str) -> str:
    """`base_model.model.model.layers.0.self_attn.q_proj` -> `model.layers.0.self_attn.q_proj`."""
    return peft_name.split("base_model.model.", 1)[-1]


class OLoRAGuard(Guard):
    name = "olora"

    def __init__(self, spec: OLoRASpec, input_model: Path):
        self.spec = spec
        self.earlier = read_subspaces(input_model)
        self.new_a: dict[str, torch.nn.Parameter] = {}  # base module name -> this stage's A
        self.pairs: list[tuple[torch.nn.Parameter, torch.Tensor]] = []  # (A_new, A_prev) per adapted matrix
        self.new_params: list[torch.nn.Parameter] = []
        # Read once: zero_stage() may open the DeepSpeed config file, and the penalty runs every step.
        self.zero3 = zero_stage() == 3

    def prepare_model(self, model):
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=self.spec.r, lora_alpha=self.spec.alpha, lora_dropout=0.0,
                            target_modules=self.spec.target_modules, task_type="CAUSAL_LM")
        model = get_peft_model(model, config)
        self.new_a = {base_module_name(name): module.lora_A["default"].weight for name, module in model.named_modules()
                      if hasattr(module, "lora_A") and "default" in module.lora_A}
        self.pairs = [(a_new, self.earlier[key].to(a_new.dtype)) for key, a_new in self.new_a.items() if key in self.earlier]
        self.new_params = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
        return model

    def penalty(self, model, inputs, outputs) -> torch.Tensor | None:
        orthogonal, norm = self.spec.lambda1 > 0 and self.pairs, self.spec.lambda2 > 0
        if not (orthogonal or norm):
            return None
        with _whole(self.new_params, self.zero3):
            terms = []
            if orthogonal:
                terms.append(self.spec.lambda1 * self.orthogonality())
            if norm:
                terms.append(self.spec.lambda2 * sum(torch.linalg.norm(_usable(p, self.zero3)) for p in self.new_params))
            return sum(terms)

    def orthogonality(self) -> torch.Tensor:
        """sum over adapted matrices of |A_prev A_new^T|, elementwise (the paper's L_orth)."""
        if self.pairs and self.pairs[0][1].device != self.pairs[0][0].device:  # the trainer moved the model
            self.pairs = [(a_new, prev.to(a_new.device)) for a_new, prev in self.pairs]
        return sum((prev @ _usable(a_new, self.zero3).T).abs().sum() for a_new, prev in self.pairs)

    def write_files(self, model, folder: Path) -> None:
        """Earlier A matrices with this stage's appended: the subspaces the next stage must avoid."""
        from safetensors.torch import save_file

        stacked = dict(self.earlier)
        for key, a_new in self.new_a.items():
            a_new = a_new.detach().float().cpu()
            stacked[key] = torch.cat([stacked[key], a_new]) if key in stacked else a_new
        save_file({k: v.contiguous() for k, v in stacked.items()}, str(Path(folder) / SUBSPACES_FILE))


def _whole(params: list[torch.nn.Parameter], zero3: bool):
    """Under ZeRO-3, the parameters gathered whole on every rank (read only); a no-op otherwise."""
    if not zero3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(params, modifier_rank=None)


def _usable(param: torch.Tensor, zero3: bool) -> torch.Tensor:
    """`param`, or under ZeRO-3 a copy that autograd saves instead of the parameter, whose data DeepSpeed
    empties again before the backward (the gradient still reaches the parameter through the copy)."""
    return param.clone() if zero3 else param
