"""OSF with GRPO's vLLM generation: send vLLM the merged weights without merging them into the model.

    send_merged_weights(trainer.vllm_generation)   # OSFGuard.attach does this when the trainer has one

TRL 1.16 syncs a PEFT model's weights to vLLM (trl/generation/vllm_generation.py, `_iter_named_params`) by
calling `merge_adapter()`, reading every weight, then `unmerge_adapter()`; PEFT's OSF cannot unmerge (its
OSFModel raises NotImplementedError, and its layers' merge adds the delta into the frozen base weight in
place, after which training would no longer reach the forward). So for an OSF model we replace that one
iterator on the trainer's VLLMGeneration: it yields the same names TRL would, each OSF-adapted weight as
base + its OSF delta (PEFT's own `get_delta_weight`, the delta merge would add), computed aside. Everything
else (colocate or server mode, the server's metadata pass, the ZeRO-3 gather) stays TRL's.
"""

from __future__ import annotations

import torch


def send_merged_weights(generation) -> None:
    """Make TRL's VLLMGeneration `generation` sync an OSF model's merged weights without unmerging."""
    generation._iter_named_params = lambda: merged_named_params(generation)


def merged_named_params(generation):
    """(vLLM name, weight) for every weight of `generation.model` (an OSF PeftModel), adapters applied, in
    the order and with the names TRL's own PEFT branch yields them."""
    model = generation.model
    osf_layers = {id(m.get_base_layer().weight): m for m in model.modules() if hasattr(m, "osf_svd_params")}
    with generation._dist.gather_params(list(model.parameters())), torch.no_grad():
        for name, param in model.named_parameters():
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            if model.prefix in name or "original_module" in name:  # OSF's factors; a module_to_save's original
                continue
            name = generation._fix_param_name_to_vllm(name, extra_prefixes=["modules_to_save.default."])
            layer = osf_layers.get(id(param))
            yield name, param.data if layer is None else _merged(layer, param)


def _merged(layer, weight: torch.Tensor) -> torch.Tensor:
    delta = sum(layer.get_delta_weight(adapter) for adapter in layer.active_adapters if adapter in layer.osf_svd_params)
    return (weight.data + delta).to(weight.dtype)
