"""OSF over a sequence of stages on the toy model, with real PEFT OSF adapters and real Adam steps (no
trainer; the runner's part, the record travelling between model folders, is tests/cpt/guards/test_travelling.py):
the preserved share grows per OSF stage as configured, counted from the record each stage writes; with
preserve_updates, stage 3's update is orthogonal to the stored directions of stages 1 and 2's updates and to
its own preserved top subspace, where plain OSF's is not."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from cpt.guards.config import OSFSpec
from cpt.guards.osf import OSFGuard
from cpt.guards.osf_sequence import read_updates
from cpt.guards.travelling import read_osf_record


@pytest.fixture
def toy_model(toy_dir):
    return AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)


def _adam_steps(model, guard: OSFGuard, steps: int, seed: int) -> None:
    """`steps` AdamW steps on random tokens, each followed by the guard's after-step projection."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ids = torch.randint(0, model.config.vocab_size, (4, 16), generator=generator)
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        guard.projector.on_optimizer_step(None, None, None)


def _osf_stage(model, spec: OSFSpec, input_folder, out_folder, steps: int, seed: int = 0):
    """One OSF stage as the runner does it: guard from the input folder, train, write its files, merge."""
    guard = OSFGuard(spec, input_model=input_folder, stage=out_folder.name)
    peft_model = guard.prepare_model(model)
    ranks = {name: layer.effective_rank["default"] for name, layer in guard.layers.items()}
    if steps:
        _adam_steps(peft_model, guard, steps, seed)
    out_folder.mkdir()
    guard.write_files(peft_model, out_folder)
    return peft_model.merge_and_unload(), ranks


def test_preserved_share_grows_with_each_osf_stage(toy_model, toy_dir, tmp_path):
    spec = OSFSpec(method="osf", preserved=0.3, grow=0.2, grow_cap=0.6)
    model, folder, ranks = toy_model, toy_dir / "model", []
    for k in range(3):
        model, stage_ranks = _osf_stage(model, spec, folder, tmp_path / f"s{k + 1}", steps=0)
        ranks.append(stage_ranks)
        folder = tmp_path / f"s{k + 1}"
    record = read_osf_record(folder)
    assert [entry["stage"] for entry in record] == ["s1", "s2", "s3"]
    assert [entry["preserved"] for entry in record] == pytest.approx([0.3, 0.5, 0.6])  # 0.7 capped at 0.6
    shapes = {n.removesuffix(".weight"): p.shape for n, p in model.named_parameters() if n.endswith("proj.weight")}
    for share, stage_ranks in zip([0.3, 0.5, 0.6], ranks):  # PEFT's effective (preserved) rank per matrix
        assert stage_ranks == {name: int(share * min(shapes[name])) for name in stage_ranks}


def _components(delta: torch.Tensor, left: torch.Tensor, right: torch.Tensor) -> float:
    """The larger relative norm of `delta` along the rows of `left` (output side) and `right` (input side)."""
    return max((left @ delta).norm().item(), (delta @ right.T).norm().item()) / delta.norm().item()


UPDATES = OSFSpec(method="osf", preserved=0.5, preserve_updates=True, update_rank=4)


@pytest.fixture(scope="module")
def two_update_stages(toy_dir, tmp_path_factory):
    """The toy after two preserve_updates OSF stages of 4 steps each, and the second stage's folder."""
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    folder, root = toy_dir / "model", tmp_path_factory.mktemp("osf_updates")
    for k in (1, 2):
        model, _ = _osf_stage(model, UPDATES, folder, root / f"s{k}", steps=4, seed=k)
        folder = root / f"s{k}"
    return model, folder


@pytest.mark.parametrize("preserve_updates", [True, False])
def test_update_stays_clear_of_earlier_updates_and_its_preserved_top(two_update_stages, tmp_path, preserve_updates):
    model, folder = two_update_stages
    model = copy.deepcopy(model)
    earlier = read_updates(folder)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("proj.weight")}
    last = UPDATES if preserve_updates else OSFSpec(method="osf", preserved=0.5)
    model, _ = _osf_stage(model, last, folder, tmp_path / "s3", steps=4, seed=3)

    worst_earlier, worst_top = 0.0, 0.0
    for name, start in before.items():
        delta = dict(model.named_parameters())[name].detach() - start
        assert delta.norm() > 1e-3 * start.norm()  # stage 3 did train this matrix
        left, right = earlier[name.removesuffix(".weight")]
        assert left.shape[0] == right.shape[0] == 8  # stages 1 and 2, update_rank 4 each
        worst_earlier = max(worst_earlier, _components(delta, left, right))
        u, _, vh = torch.linalg.svd(start, full_matrices=False)
        top = int(0.5 * min(start.shape))
        worst_top = max(worst_top, _components(delta, u[:, :top].T, vh[:top]))
    assert worst_top < 1e-4, worst_top
    if preserve_updates:
        assert worst_earlier < 1e-4, worst_earlier
        assert len(read_updates(tmp_path / "s3")[name.removesuffix(".weight")][0]) == 12  # its own 4 appended
    else:  # plain OSF re-decomposes the new weights: earlier updates' directions are not all in its top
        assert worst_earlier > 1e-2, worst_earlier
