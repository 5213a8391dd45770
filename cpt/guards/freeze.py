"""Freeze guard: the input embeddings and the bottom decoder layers keep their starting weights.

    guard: {method: freeze, layers: 8}                      # embeddings + decoder layers 0-7 stay, the rest train
    guard: {method: freeze, layers: 8, embeddings: false}   # the embeddings train too
    guard: {method: freeze, layers: 2, modules: [mlp]}      # and every layer's MLP: only attention trains above

"Spurious Forgetting in Continual Learning of Language Models" (Zheng et al., ICLR 2025) finds that much of
what sequential fine-tuning loses is the bottom layers' alignment to earlier tasks, and that freezing the
bottom layers keeps much of it. PyTorch's `requires_grad_` is all it takes: the trainers' optimizers take
only the weights that still require a gradient, so the frozen part also costs no optimizer state and no
weight gradients. With tied embeddings (SmolLM2, the toy) the LM head is the embedding matrix, so freezing
the embeddings keeps the head as well.

`modules` freezes the named submodule of every decoder layer above the bottom ones too. `[mlp]` leaves only the
attention to train. Factual recall runs through the middle layers' MLPs ("Locating and Editing Factual
Associations in GPT", Meng et al. 2022), so it was tried as a way to learn new behaviour without writing over
facts; on SmolLM2 it lost about as many capitals as half the learning rate and learned counting less
(docs/forgetting.md, "Three more tries at general knowledge").
"""

from __future__ import annotations

import logging

from torch import nn

from cpt.errors import UserError
from cpt.guards.base import Guard
from cpt.guards.config import FreezeSpec

log = logging.getLogger(__name__)


def decoder_layers(model, stage: str) -> nn.ModuleList:
    """The model's stack of decoder layers, `model.get_decoder().layers` (as guards/osf_ranks.py reads it)."""
    layers = getattr(model.get_decoder(), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise UserError(f"stage {stage}: guard: freeze found no decoder layers in {type(model).__name__} "
                        "(model.get_decoder().layers); use another guard for this model")
    return layers


class FreezeGuard(Guard):
    name = "freeze"

    def __init__(self, spec: FreezeSpec, stage: str):
        self.spec = spec
        self.stage = stage  # named in a refusal

    def prepare_model(self, model):
        layers = decoder_layers(model, self.stage)
        self.spec.check_depth(len(layers), self.stage)
        frozen: list[nn.Module] = list(layers[:self.spec.layers])
        if self.spec.embeddings:
            # Under gradient checkpointing transformers makes the embeddings' output require a gradient itself
            # (activation_checkpointing_enable), so the layers above still get theirs.
            frozen.append(model.get_input_embeddings())
        frozen += [layer_submodule(layer, name, self.stage) for layer in layers[self.spec.layers:]
                   for name in self.spec.modules]
        for module in frozen:
            module.requires_grad_(False)
        # Under ZeRO-3 the model is loaded partitioned: a weight's numel() is 0 here, its size is ds_numel.
        sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
        trainable, total = sum(n for n, grad in sizes if grad), sum(n for n, _ in sizes)
        log.info("guard freeze: decoder layers 0-%d%s%s frozen; %.1f%% of the weights train",
                 self.spec.layers - 1, " and the input embeddings" if self.spec.embeddings else "",
                 "".join(f", every layer's {name}" for name in self.spec.modules), 100 * trainable / total)
        return model


def layer_submodule(layer: nn.Module, name: str, stage: str) -> nn.Module:
    """The submodule `name` of a decoder layer (a freeze guard's `modules` entry); a UserError naming the layer's
    children when it has none of that name. Preflight calls it on a layer built on the meta device."""
    module = getattr(layer, name, None)
    if not isinstance(module, nn.Module):
        children = ", ".join(child for child, _ in layer.named_children())
        raise UserError(f"stage {stage}: guard.modules: '{name}' is not a submodule of the model's decoder "
                        f"layers ({type(layer).__name__} has: {children})")
    return module
