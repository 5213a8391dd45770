"""The GPM guard on the toy through the real runner: after an sft stage every linear layer of the decoder still maps
the protected text's inputs as it did (W U = W0 U on the basis taken at the start), the weights did move, the stage
learned, and the model's output on the protected text moved much less than without the guard."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from cpt.guards.gpm import input_bases, top_energy_basis
from tests.toy_sequences import run_stages

PASSAGES = ["12 + 30 = 42", "sort: c a b -> a b c", "count the letters of apple: 5", "the date 2020-01-05 is"]


def test_the_basis_holds_the_energy_asked_for():
    covariance = torch.diag(torch.tensor([0.1, 9.0, 0.9]))
    assert top_energy_basis(covariance, 0.9).abs().T.tolist() == [[0.0, 1.0, 0.0]]  # 9 of 10
    basis = top_energy_basis(covariance, 0.95)
    assert basis.shape == (3, 2) and torch.allclose(basis.abs().sum(1), torch.tensor([0.0, 1.0, 1.0]))


@pytest.fixture(scope="module")
def stages(toy_dir, tmp_path_factory):
    """The toy's start and one date_format stage without a guard and one with GPM on PASSAGES."""
    root = tmp_path_factory.mktemp("gpm")
    text = root / "protected.txt"
    text.write_text("".join(f"{line}\n" for line in PASSAGES), encoding="utf-8")
    train = {"max_steps": 16, "per_device_train_batch_size": 8, "learning_rate": 1e-2, "max_length": 48,
             "save_steps": 16, "logging_steps": 4, "disable_tqdm": True, "weight_decay": 0.0}
    folders = {}
    for name, guard in {"naive": None, "gpm": {"method": "gpm", "text": str(text), "energy": 0.999}}.items():
        stage = {"name": "s", "kind": "sft", "data": {"toy": "date_format", "max_examples": 64}, "train": train,
                 **({"guard": guard} if guard else {})}
        (root / name).mkdir()
        folders[name] = run_stages(root / name, name, str(toy_dir / "model"), [stage]) / "s"
    return toy_dir / "model", folders


def test_each_layer_keeps_its_output_on_the_protected_inputs_and_the_stage_learns(stages):
    start_dir, folders = stages
    model = AutoModelForCausalLM.from_pretrained(start_dir, dtype=torch.float32)
    passages = protected_passages_of(start_dir)
    bases = {name: basis for name, module in model.named_modules()
             for layer, basis in input_bases(model, passages, 0.999, "cpu") if layer is module}
    start, end = load_file(str(start_dir / "model.safetensors")), load_file(str(folders["gpm"] / "model" / "model.safetensors"))
    assert len(bases) == 4 * 7  # every linear layer of the toy's 4 decoder layers
    for name, basis in bases.items():
        kept = start[f"{name}.weight"] @ basis
        assert torch.allclose(end[f"{name}.weight"] @ basis, kept, atol=1e-5), name
        assert not torch.equal(end[f"{name}.weight"], start[f"{name}.weight"]), name
    for name in (k for k in start if not any(k == f"{linear}.weight" for linear in bases)):
        assert torch.equal(end[name], start[name]), name  # embeddings (the tied head), norms
    losses = [e["loss"] for e in json.loads((folders["gpm"] / "train_log.json").read_text()) if "loss" in e]
    assert losses[-1] < losses[0] - 0.15, losses


def test_the_output_on_the_protected_text_moves_less_than_without_the_guard(stages):
    start_dir, folders = stages
    moved = {name: kl_on_passages(start_dir, folder / "model") for name, folder in folders.items()}
    print(moved)  # shown with -s
    assert moved["gpm"] < 0.1 * moved["naive"], moved  # measured: 0.05 against 6.8 nats a token


def protected_passages_of(model_dir) -> list[list[int]]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return [tokenizer(line)["input_ids"] for line in PASSAGES]


@torch.no_grad()
def kl_on_passages(start_dir, end_dir) -> float:
    """Mean KL(start || end) of the next-token distributions at every position of PASSAGES."""
    start = AutoModelForCausalLM.from_pretrained(start_dir, dtype=torch.float32).eval()
    end = AutoModelForCausalLM.from_pretrained(end_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    for ids in protected_passages_of(start_dir):
        ids = torch.tensor([ids])
        log_p, log_q = F.log_softmax(start(ids).logits, -1), F.log_softmax(end(ids).logits, -1)
        total += (log_p.exp() * (log_p - log_q)).sum(-1).sum().item()
        count += ids.shape[1]
    return total / count
