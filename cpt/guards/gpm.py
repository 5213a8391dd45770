"""Gradient projection memory (GPM) guard: every linear layer keeps its output on the inputs of a protected text.

    guard: {method: gpm, text: general.txt}                 # one passage per line; 0.99 of their input energy kept
    guard: {method: gpm, text: general.txt, energy: 0.999}  # a larger protected subspace: safer, learns less

"Gradient Projection Memory for Continual Learning" (Saha et al., ICLR 2021): run the model on text whose
behaviour must stay (here: passages of general text the recipe names, at the stage's start), collect each
linear layer's inputs x, and take the top eigenvectors U of their covariance that hold `energy` of it. An update
dW with dW U = 0 leaves W x unchanged for every x in that span, so the layer's output on the protected text stays
(to first order, since the layers below move too). The paper projects SGD's gradient; Adam's elementwise step
would leave the subspace again, so this guard restores the invariant after every optimizer step instead
(W <- W - (W U - W0 U) U^T, with W0 U kept: an out x k matrix per layer, not a copy of the weights). The embeddings
(and a head tied to them), the norms and any bias keep their values: each would move the output on every input.
PEFT and TRL have no such method, so it is ours. Any stage kind; not under ZeRO-3 (each weight must be whole).
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from transformers import TrainerCallback

from cpt.guards.base import Guard, passage_lines
from cpt.guards.config import GPMSpec
from cpt.guards.master_weights import master_value, set_master_value

log = logging.getLogger(__name__)


class GPMGuard(Guard):
    name = "gpm"

    def __init__(self, spec: GPMSpec):
        self.spec = spec
        self.projector = KeepProtectedOutputs()

    def prepare_model(self, model):
        # Only the decoder's linear weights train: an embedding row, a norm's scale or a bias moves the output on
        # every input, the protected text's too (and SmolLM2's head is its tied embedding matrix).
        linear = {id(layer.weight) for layer in decoder_linears(model)}
        for weight in model.parameters():
            if id(weight) not in linear:
                weight.requires_grad_(False)
        return model

    def attach(self, trainer) -> None:
        # Before train(): the model holds the stage's starting weights (a resumed stage loads its checkpoint inside
        # train(), and that checkpoint already holds W U = W0 U), so the bases and W0 U are the start's.
        model = trainer.model
        self.projector.trainer = trainer
        passages = protected_passages(self.spec.text, trainer.processing_class)
        bases = input_bases(model, passages, self.spec.energy, trainer.args.device)
        with torch.no_grad():
            self.projector.kept = [(layer.weight, basis, layer.weight.float() @ basis) for layer, basis in bases]
        ranks = [basis.shape[1] for _, basis in bases]
        log.info("guard gpm: %d passages of %s; %d linear layers keep their output on a subspace of their inputs "
                 "(%.0f%% of the input energy: rank %d to %d)", len(passages), self.spec.text, len(bases),
                 100 * self.spec.energy, min(ranks, default=0), max(ranks, default=0))

    def callbacks(self) -> list:
        return [self.projector]


class KeepProtectedOutputs(TrainerCallback):
    """After every optimizer step, each kept weight W back to W U = W0 U on its protected input basis U."""

    def __init__(self):
        self.kept: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []  # (W, U, W0 U)
        self.trainer = None  # for the master copy under DeepSpeed (master_weights.py)

    def on_optimizer_step(self, args, state, control, **kwargs):
        with torch.no_grad():
            for weight, basis, start in self.kept:
                value = master_value(self.trainer, weight)
                drift = value.float() @ basis - start
                set_master_value(self.trainer, weight, value - (drift @ basis.T).to(value.dtype))


def protected_passages(path: str, tokenizer) -> list[list[int]]:
    """Token ids of each non-empty line of the file."""
    return [tokenizer(line)["input_ids"] for line in passage_lines(path)]


@torch.no_grad()
def input_bases(model, passages: list[list[int]], energy: float, device) -> list[tuple[nn.Linear, torch.Tensor]]:
    """For each trainable nn.Linear inside the decoder layers (decoder_linears): the orthonormal basis (in x k, float32) of the top
    eigenvectors of its inputs' covariance over every token of `passages`, k the fewest that hold `energy` of it."""
    layers = [layer for layer in decoder_linears(model) if layer.weight.requires_grad]
    covariances = {layer: torch.zeros(layer.in_features, layer.in_features, device=device) for layer in layers}

    def collect(layer, inputs, _output):
        x = inputs[0].detach().reshape(-1, layer.in_features).float()
        covariances[layer] += x.T @ x

    handles = [layer.register_forward_hook(collect) for layer in layers]
    was_training = model.training
    model.eval()
    try:
        for ids in passages:
            model(input_ids=torch.tensor([ids], device=device), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return [(layer, top_energy_basis(covariances[layer], energy)) for layer in layers]


def decoder_linears(model) -> list[nn.Linear]:
    """Every nn.Linear inside the model's decoder layers (not the LM head)."""
    return [module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and ".layers." in f".{name}"]


def top_energy_basis(covariance: torch.Tensor, energy: float) -> torch.Tensor:
    """The eigenvectors of `covariance` (columns), largest first, the fewest whose eigenvalues sum to `energy` of
    the trace."""
    values, vectors = torch.linalg.eigh(covariance.double())
    values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    share = values.cumsum(0) / values.sum().clamp(min=1e-30)
    rank = int((share < energy).sum()) + 1
    return vectors[:, :min(rank, len(values))].float().contiguous()
