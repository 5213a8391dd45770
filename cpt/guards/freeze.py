"""Freeze guard: the input embeddings and the bottom decoder layers keep their starting weights.

    guard: {method: freeze, layers: 8}                      # embeddings + decoder layers 0-7 stay, the rest train
    guard: {method: freeze, layers: 8, embeddings: false}   # the embeddings train too
    guard: {method: freeze, layers: 2, modules: [mlp]}      # and every layer's MLP: only attention trains above
    guard: {method: freeze, layers: 2, density: 0.1}        # and 90% of every weight above: sparse fine-tuning

"Spurious Forgetting in Continual Learning of Language Models" (Zheng et al., ICLR 2025) finds that much of
what sequential fine-tuning loses is the bottom layers' alignment to earlier tasks, and that freezing the
bottom layers keeps much of it. PyTorch's `requires_grad_` is all it takes: the trainers' optimizers take
only the weights that still require a gradient, so the frozen part also costs no optimizer state and no
weight gradients. With tied embeddings (SmolLM2, the toy) the LM head is the embedding matrix, so freezing
the embeddings keeps the head as well.

`density` keeps all but that share of every weight that still trains, per weight: the entries with the largest
summed gradient over the stage's first `calibration_batches` batches (before any step, from the stage's start) train,
the rest keep their values. Sparse fine-tuning ("Lottery Ticket Adaptation", Panda et al. 2024, which picks the mask
from a short dense run's update; "Sparse is Enough in Fine-tuning", Song et al. 2023, from the gradient) learns a task
in a small share of the weights and moves less of what the model already does. PEFT has no such method, so the
mask is ours: a gradient hook on each weight zeroes the rest of its gradient, so the optimizer (Adam's moments
included) never moves them; a weight decay above 0 still shrinks them (AdamW decays every weight it holds). For sft
and cpt stages (the mask comes from the loss on the stage's own rows), not under ZeRO-3 (each weight must be whole on
the rank). On SmolLM2 a share of 0.1 under the bottom-2 freeze and replay on top lost fewer capitals than the dense
freeze at the same rate but learned counting less (docs/forgetting.md, "GPM on general text").

`modules` freezes the named submodule of every decoder layer above the bottom ones too. `[mlp]` leaves only the
attention to train. Factual recall runs through the middle layers' MLPs ("Locating and Editing Factual
Associations in GPT", Meng et al. 2022), so it was tried as a way to learn new behaviour without writing over
facts; on SmolLM2 it lost about as many capitals as half the learning rate and learned counting less
(docs/forgetting.md, "Three more tries at general knowledge").
"""

from __future__ import annotations

import logging
from itertools import islice

import torch
from torch import nn

from cpt.errors import UserError
from cpt.guards.base import Guard
from cpt.guards.config import FreezeSpec
from cpt.guards.logits_loss import forward_inputs

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
        bottom = f"decoder layers 0-{self.spec.layers - 1}" if self.spec.layers else "no decoder layer"
        log.info("guard freeze: %s%s%s frozen; %.1f%% of the weights train%s", bottom,
                 " and the input embeddings" if self.spec.embeddings else "",
                 "".join(f", every layer's {name}" for name in self.spec.modules), 100 * trainable / total,
                 f" (of them a share of {self.spec.density:g}, chosen at the start)" if self.spec.density else "")
        return model

    def attach(self, trainer) -> None:
        # Before train(): the model holds the stage's starting weights (a resumed stage loads its checkpoint inside
        # train()), and the first batches are the same on a resume, so the mask is too.
        if self.spec.density is None:
            return
        weights = [p for p in trainer.model.parameters() if p.requires_grad]
        summed_gradients(trainer, weights, self.spec.calibration_batches)
        kept = 0
        for weight in weights:
            mask = top_share(weight, self.spec.density)
            weight.grad = None
            kept += int(mask.sum())
            weight.register_hook(lambda grad, mask=mask: grad * mask)  # for the stage's life
        log.info("guard freeze: density %g: %d of the %d trainable weights' entries train (by the summed gradient of "
                 "%d batches), the rest keep their values", self.spec.density, kept, sum(p.numel() for p in weights),
                 self.spec.calibration_batches)


def summed_gradients(trainer, weights: list[nn.Parameter], batches: int) -> None:
    """Leave in each weight's `.grad` the gradient of the stage's loss summed over its first `batches` batches (all
    processes' when there are several, so every rank picks the same entries). The sum, not the sum of magnitudes:
    an entry the batches push one way is what a short dense run would move most (LoTA's mask)."""
    model, device = trainer.model, trainer.args.device
    if trainer.args.gradient_checkpointing:  # as train() will: the same memory as a training step
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs)
    model.train()
    for weight in weights:
        weight.grad = None
    for batch in islice(trainer.get_train_dataloader(), batches):
        batch = {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}
        model(**forward_inputs(batch), labels=batch["labels"]).loss.backward()
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for weight in weights:
            if weight.grad is None:  # every rank must take part in every reduction
                weight.grad = torch.zeros_like(weight)
            torch.distributed.all_reduce(weight.grad)


def top_share(weight: nn.Parameter, share: float) -> torch.Tensor:
    """True at the `share` of the entries of `weight.grad` with the largest magnitude (ties at the cut included),
    never at a zero: all False for a weight the batches gave no gradient (it then keeps its values)."""
    if weight.grad is None:
        return torch.zeros_like(weight, dtype=torch.bool)
    magnitude = weight.grad.detach().abs()
    keep = max(1, round(share * magnitude.numel()))
    cut = magnitude.flatten().float().kthvalue(magnitude.numel() - keep + 1).values
    return (magnitude >= cut.to(magnitude.dtype)) & (magnitude > 0)


def layer_submodule(layer: nn.Module, name: str, stage: str) -> nn.Module:
    """The submodule `name` of a decoder layer (a freeze guard's `modules` entry); a UserError naming the layer's
    children when it has none of that name. Preflight calls it on a layer built on the meta device."""
    module = getattr(layer, name, None)
    if not isinstance(module, nn.Module):
        children = ", ".join(child for child, _ in layer.named_children())
        raise UserError(f"stage {stage}: guard.modules: '{name}' is not a submodule of the model's decoder "
                        f"layers ({type(layer).__name__} has: {children})")
    return module
