"""Each guard's mechanism on the toy model, with real PEFT adapters and real optimizer steps (no trainer):
O-LoRA's penalty pulls the new A off the earlier ones, OSF's update stays out of the preserved subspace
(with our after-step projection; PEFT's gradient hook alone lets Adam leak into it), the adaptive option
gives important layers more preserved rank, and the KL anchor is zero at the start and grows away from it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import AutoModelForCausalLM

from cpt.guards.config import AdaptiveRankSpec, KLAnchorSpec, OLoRASpec, OSFSpec
from cpt.guards.kl_anchor import KLAnchorGuard
from cpt.guards.olora import SUBSPACES_FILE, OLoRAGuard
from cpt.guards.osf import OSFGuard
from cpt.guards.osf_ranks import preserved_shares, rank_pattern

# ~30 s together (real optimizer steps on the toy): kept out of the quick loop, which is at its 2-min budget.
pytestmark = pytest.mark.slow

TARGET = "model.layers.0.self_attn.q_proj"


@pytest.fixture
def toy_model(toy_dir):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)


def _batches(model, steps: int):
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        ids = torch.randint(0, model.config.vocab_size, (8, 24), generator=generator)
        yield {"input_ids": ids, "labels": ids}


def _adam_steps(model, steps: int, extra_loss=None, after_step=None, lr=1e-3):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    for batch in _batches(model, steps):
        loss = model(**batch).loss + (extra_loss() if extra_loss else 0)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if after_step:
            after_step()


def test_olora_penalty_makes_the_new_adapter_orthogonal_to_the_earlier_ones(toy_model, tmp_path):
    from safetensors.torch import save_file

    earlier = torch.randn(16, toy_model.config.hidden_size)  # two earlier stages of rank 8
    save_file({TARGET: earlier, TARGET.replace("q_proj", "v_proj"): earlier.clone()}, str(tmp_path / SUBSPACES_FILE))
    guard = OLoRAGuard(OLoRASpec(method="olora"), tmp_path)
    model = guard.prepare_model(toy_model)
    assert len(guard.pairs) == 2  # q_proj and v_proj of layer 0 have earlier subspaces
    before = guard.orthogonality().item()
    _adam_steps(model, 30, extra_loss=lambda: guard.penalty(model, None, None))
    assert guard.orthogonality().item() < 0.5 * before
    from safetensors.torch import load_file

    (tmp_path / "out").mkdir()
    guard.write_files(model, tmp_path / "out")

    saved = load_file(str(tmp_path / "out" / SUBSPACES_FILE))
    assert saved[TARGET].shape == (16 + 8, toy_model.config.hidden_size)  # earlier + this stage's A
    assert torch.equal(saved[TARGET][:16], earlier)


def _preserved_components(start: torch.Tensor, end: torch.Tensor, share: float) -> tuple[float, float]:
    """The update's relative norm along the top `share` left and right singular directions of `start`."""
    u, _, vh = torch.linalg.svd(start, full_matrices=False)
    k = int(share * min(start.shape))
    delta = end - start
    return ((u[:, :k].T @ delta).norm() / delta.norm()).item(), ((delta @ vh[:k].T).norm() / delta.norm()).item()


@pytest.mark.parametrize("project", [True, False])
def test_osf_update_has_no_component_in_the_preserved_subspace(toy_model, project):
    starts = {n: p.detach().clone() for n, p in toy_model.named_parameters() if n.endswith("proj.weight")}
    guard = OSFGuard(OSFSpec(method="osf", preserved=0.5))
    model = guard.prepare_model(toy_model)
    _adam_steps(model, 20, after_step=(lambda: guard.projector.on_optimizer_step(None, None, None)) if project else None)
    merged = model.merge_and_unload()
    worst = max(max(_preserved_components(starts[n], p.detach(), 0.5))
                for n, p in merged.named_parameters() if n in starts)
    if project:
        assert worst < 1e-4
    else:  # PEFT's gradient projection alone: Adam's per-coordinate scaling leaks into the preserved part
        assert worst > 0.01


def test_adaptive_osf_preserves_more_of_the_important_layers(toy_model):
    spec = AdaptiveRankSpec(path="x.jsonl", min_preserved=0.2, max_preserved=0.8)
    shares = preserved_shares([0.1, 0.4, 0.25, 0.1], spec)
    assert shares == pytest.approx([0.2, 0.8, 0.5, 0.2])
    guard = OSFGuard(OSFSpec(method="osf"))
    from peft import OSFConfig, get_peft_model

    model = get_peft_model(toy_model, OSFConfig(target_modules=["q_proj"], rank_pattern=rank_pattern(shares)))
    ranks = [m.effective_rank["default"] for m in model.modules() if hasattr(m, "osf_svd_params")]
    hidden = toy_model.config.hidden_size
    assert ranks == [int(s * hidden) for s in shares]
    assert guard.shares is None  # no earlier sample given: one preserved share for every layer


def test_adaptive_osf_measures_layer_importance_on_earlier_text(toy_model, toy_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    guard = OSFGuard(OSFSpec(method="osf", adaptive={"path": "x.jsonl", "min_preserved": 0.2, "max_preserved": 0.8}),
                     tokenizer, ["the capital of france is paris", "12 + 30 = 42"])
    guard.prepare_model(toy_model)
    assert len(guard.shares) == toy_model.config.num_hidden_layers
    assert min(guard.shares) == pytest.approx(0.2) and max(guard.shares) == pytest.approx(0.8)


@pytest.mark.parametrize("distance", ["kl", "l2"])
def test_kl_anchor_is_zero_at_the_start_and_grows_as_the_model_moves(toy_model, toy_dir, distance):
    reference = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    guard = KLAnchorGuard(KLAnchorSpec(method="kl_anchor", distance=distance), lambda: reference)

    class FakeTrainer:  # attach() needs only the device and the model
        args = type("Args", (), {"device": torch.device("cpu")})()
        model = toy_model

    guard.attach(FakeTrainer)
    batch = next(_batches(toy_model, 1))
    batch["labels"] = batch["labels"].clone()
    batch["labels"][:, :12] = -100  # prompt tokens: not anchored

    def anchor():
        return guard.penalty(toy_model, batch, toy_model(input_ids=batch["input_ids"])).item()

    assert anchor() == pytest.approx(0.0, abs=1e-6)
    _adam_steps(toy_model, 5, lr=1e-2)
    assert anchor() > 1e-3


def _text_guard(toy_dir, tmp_path, model, lines=("the capital of france is", "", "12 + 30 ="), step=0, rank=0,
                world=1, **spec):
    """A kl_anchor guard on passages of text (two by default), attached as a trainer would (device, batch size,
    tokenizer; `step`: the global step a resumed trainer has loaded; `rank` of `world` processes)."""
    from transformers import AutoTokenizer

    text = tmp_path / "general.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reference = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)
    guard = KLAnchorGuard(KLAnchorSpec(method="kl_anchor", text=str(text), **spec), lambda: reference)

    class FakeTrainer:
        args = SimpleNamespace(device=torch.device("cpu"), per_device_train_batch_size=2, gradient_accumulation_steps=1,
                               world_size=world, process_index=rank)
        state = SimpleNamespace(global_step=step)
        processing_class = AutoTokenizer.from_pretrained(toy_dir / "model")

    FakeTrainer.model = model
    guard.attach(FakeTrainer)
    return guard, reference, FakeTrainer.processing_class


def test_kl_anchor_on_text_reads_the_passages_continued_by_the_start(toy_model, toy_dir, tmp_path):
    """Each non-empty line, then the starting model's own greedy tokens; the stage's batch is not read."""
    guard, reference, tokenizer = _text_guard(toy_dir, tmp_path, toy_model, continue_tokens=6)
    assert not guard.needs_outputs and len(guard.passages) == 2
    for line, passage in zip(["the capital of france is", "12 + 30 ="], guard.passages, strict=True):
        prompt = tokenizer(line)["input_ids"]
        assert passage[:len(prompt)].tolist() == prompt and len(prompt) < len(passage) <= len(prompt) + 6
        greedy = reference.generate(passage[None, :len(prompt)], do_sample=False, max_new_tokens=6,
                                    pad_token_id=guard.pad_id)[0]
        assert torch.equal(greedy, passage)
    assert guard.penalty(toy_model, None, None).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_anchor_on_text_goes_on_where_a_resumed_stage_stopped_and_gives_each_rank_its_own(toy_model, toy_dir,
                                                                                             tmp_path):
    """Five passages, two a step: an uninterrupted stage reads 0-1, 2-3, 4-0; one resumed at step 2 starts at 4-0
    (not at 0-1 again); of two processes, rank 0 reads 0-1 and rank 1 reads 2-3 (not the same ones)."""
    lines = [f"passage {i} is" for i in range(5)]

    def read(**where):
        guard, _, _ = _text_guard(toy_dir, tmp_path, toy_model, lines=lines, continue_tokens=0, **where)
        index = {tuple(p.tolist()): i for i, p in enumerate(guard.passages)}
        return lambda: [index[tuple(p.tolist())] for p in guard.next_passages()]

    uninterrupted = read()
    assert [uninterrupted() for _ in range(3)] == [[0, 1], [2, 3], [4, 0]]
    assert read(step=2)() == [4, 0]
    assert (read(rank=0, world=2)(), read(rank=1, world=2)()) == ([0, 1], [2, 3])


def test_kl_anchor_on_text_keeps_the_output_on_the_text_where_training_moves_it(toy_model, toy_dir, tmp_path):
    """The same Adam steps on random tokens, with and without the text term: with it, the KL on the passages
    ends at less than a third of the KL without it."""
    guard, _, _ = _text_guard(toy_dir, tmp_path, toy_model)
    start = {name: p.detach().clone() for name, p in toy_model.named_parameters()}
    _adam_steps(toy_model, 10, lr=1e-2)
    unanchored = guard.text_kl(toy_model).item()
    with torch.no_grad():
        for name, p in toy_model.named_parameters():
            p.copy_(start[name])
    _adam_steps(toy_model, 10, lr=1e-2, extra_loss=lambda: 10 * guard.penalty(toy_model, None, None))
    anchored = guard.text_kl(toy_model).item()
    assert unanchored > 1e-2 and anchored < unanchored / 3
