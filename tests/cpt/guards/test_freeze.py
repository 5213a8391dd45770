"""The freeze guard on the toy model with real optimizer steps: the embeddings (and the head tied to them) and
the bottom layers stay bit for bit, the layers above still train, also under re-entrant gradient checkpointing,
`modules: [mlp]` keeps every layer's MLP while attention trains, and a count that would freeze every layer or a
module name the layers lack is refused with the key named; with `density`, only that share of each weight above
moves, the entries picked from the start and the first batches."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from cpt.errors import UserError
from cpt.guards.config import FreezeSpec
from cpt.guards.freeze import FreezeGuard, top_share
from tests.toy_sequences import run_stages


@pytest.fixture
def toy_model(toy_dir):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)


def _train(model, steps: int = 3) -> None:
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, model.config.vocab_size, (4, 16), generator=generator)
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def _moved(model, start: dict[str, torch.Tensor]) -> set[str]:
    return {name for name, p in model.named_parameters() if not torch.equal(p.detach(), start[name])}


@pytest.mark.parametrize("checkpointing", [False, True])
def test_frozen_part_stays_and_the_rest_trains(toy_model, checkpointing):
    model = FreezeGuard(FreezeSpec(method="freeze", layers=2), "b").prepare_model(toy_model)
    if checkpointing:  # what the Trainer does at train() with gradient_checkpointing: true
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    _train(model)
    moved = _moved(model, start)
    assert not any(name.startswith(("model.layers.0.", "model.layers.1.", "model.embed_tokens")) for name in moved)
    assert torch.equal(model.lm_head.weight, start["model.embed_tokens.weight"])  # tied: the head stays too
    for layer in (2, 3):  # every weight matrix of the upper layers trains
        assert {f"model.layers.{layer}.self_attn.q_proj.weight", f"model.layers.{layer}.mlp.down_proj.weight"} <= moved


def test_embeddings_can_train(toy_model):
    model = FreezeGuard(FreezeSpec(method="freeze", layers=1, embeddings=False), "b").prepare_model(toy_model)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    _train(model)
    moved = _moved(model, start)
    assert "model.embed_tokens.weight" in moved
    assert not any(name.startswith("model.layers.0.") for name in moved)


def test_mlp_modules_stay_in_every_layer_and_attention_trains(toy_model):
    model = FreezeGuard(FreezeSpec(method="freeze", layers=1, modules=["mlp"]), "b").prepare_model(toy_model)
    start = {name: p.detach().clone() for name, p in model.named_parameters()}
    _train(model)
    moved = _moved(model, start)
    assert not any(".mlp." in name or name.startswith("model.layers.0.") for name in moved)
    for layer in (1, 2, 3):
        assert {f"model.layers.{layer}.self_attn.q_proj.weight", f"model.layers.{layer}.self_attn.o_proj.weight"} <= moved


def test_a_module_the_layers_lack_is_refused_with_their_children(toy_model):
    with pytest.raises(UserError, match=r"stage b: guard.modules: 'ffn' is not a submodule of the model's decoder "
                                        r"layers \(LlamaDecoderLayer has: self_attn, mlp, "):
        FreezeGuard(FreezeSpec(method="freeze", layers=1, modules=["ffn"]), "b").prepare_model(toy_model)


def test_freezing_every_layer_is_refused_with_the_key(toy_model):
    with pytest.raises(UserError, match=r"stage b: guard.layers: 4 would freeze every one of the model's 4 decoder "
                                        r"layers; give at most 3"):
        FreezeGuard(FreezeSpec(method="freeze", layers=4), "b").prepare_model(toy_model)


@pytest.mark.slow
def test_a_frozen_stage_writes_the_frozen_weights_unchanged(tmp_path):
    """Through the runner and TRL's SFTTrainer: the saved model holds the start's embeddings and bottom layer."""
    from safetensors.torch import load_file

    from cpt.recipe.load import load_recipe
    from cpt.runner.run import run_recipe
    from tests.helpers import one_thread, write_recipe

    train = {"max_steps": 4, "per_device_train_batch_size": 8, "learning_rate": 1e-2, "save_steps": 4,
             "disable_tqdm": True}
    stages = [{"name": "a", "kind": "sft", "data": {"toy": "sorting", "max_examples": 64}, "train": train},
              {"name": "b", "kind": "sft", "data": {"toy": "addition", "max_examples": 64}, "train": train,
               "guard": {"method": "freeze", "layers": 1}}]
    path = write_recipe(tmp_path / "r.yaml", {"run": {"name": "r", "output_dir": str(tmp_path)},
                                              "model": {"name_or_path": "toy"}, "stages": stages})
    with one_thread():
        run_dir = run_recipe(load_recipe(path), path.read_text()).run_dir
    before, after = (load_file(str(run_dir / "stages" / s / "model" / "model.safetensors")) for s in ("a", "b"))
    kept = [name for name in before if name.startswith(("model.embed_tokens", "model.layers.0."))]
    assert kept and all(torch.equal(before[name], after[name]) for name in kept)
    assert not torch.equal(before["model.layers.1.mlp.down_proj.weight"], after["model.layers.1.mlp.down_proj.weight"])


def test_top_share_keeps_the_largest_magnitudes_and_never_a_zero(toy_model):
    weight = torch.nn.Parameter(torch.zeros(2, 4))
    weight.grad = torch.tensor([[0.0, 3.0, -5.0, 1.0], [2.0, 0.0, -2.0, 0.5]])
    assert top_share(weight, 0.25).tolist() == [[False, True, True, False], [False, False, False, False]]
    # a tie at the cut keeps both; a share past the nonzero entries keeps only those
    assert top_share(weight, 0.375).sum() == 4
    assert top_share(weight, 0.9).tolist() == (weight.grad != 0).tolist()
    assert not top_share(torch.nn.Parameter(torch.ones(3)), 0.5).any()  # no gradient: nothing trains


def _stage(toy_dir, out, guard: dict):
    stage = {"name": "s", "kind": "sft", "data": {"toy": "date_format", "max_examples": 64}, "guard": guard,
             "train": {"max_steps": 16, "per_device_train_batch_size": 8, "learning_rate": 1e-2, "max_length": 48,
                       "save_steps": 16, "logging_steps": 4, "disable_tqdm": True, "weight_decay": 0.0}}
    out.mkdir(exist_ok=True)
    return run_stages(out, "density", str(toy_dir / "model"), [stage]) / "s"


def _weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_density_trains_only_that_share_of_each_weight_and_the_stage_learns(toy_dir, tmp_path):
    """A real sft stage through the runner: the frozen bottom layer and embeddings stay bit for bit, every weight
    above moves in at most its share of entries (the ones the first batches' gradient chose), and the loss drops."""
    stage = _stage(toy_dir, tmp_path, {"method": "freeze", "layers": 1, "density": 0.1, "calibration_batches": 2})
    start, end = _weights(toy_dir / "model"), _weights(stage / "model")
    moved_share = {name: (end[name] != start[name]).float().mean().item() for name in start}
    assert moved_share["model.embed_tokens.weight"] == 0
    assert all(share == 0 for name, share in moved_share.items() if name.startswith("model.layers.0."))
    upper = {name: share for name, share in moved_share.items() if name.startswith("model.layers.3.")}
    # the share rounds to whole entries (13 of a norm's 128)
    assert all(0 < share <= 0.1 + 1 / start[name].numel() for name, share in upper.items()), upper
    losses = [entry["loss"] for entry in json.loads((stage / "train_log.json").read_text()) if "loss" in entry]
    # The untrained toy learns slowly: 16 dense steps took it from 6.42 to 5.94, a share of 0.1 to 6.15 (measured);
    # a mask that kept every entry would leave it where it started.
    assert losses[-1] < losses[0] - 0.15, losses


def test_the_same_start_and_rows_choose_the_same_entries(toy_dir, tmp_path):
    """What a resumed stage relies on: the mask comes from the start and the first batches only."""
    guard = {"method": "freeze", "layers": 1, "density": 0.05, "calibration_batches": 2}
    start = _weights(toy_dir / "model")
    moved = [{name: end[name] != start[name] for name in start}
             for end in (_weights(_stage(toy_dir, tmp_path / run, guard) / "model") for run in ("one", "two"))]
    assert all(torch.equal(moved[0][name], moved[1][name]) for name in start)
