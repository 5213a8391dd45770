"""The KL anchor on an sft stage runs the policy once per step (cpt/guards/logits_loss.py): the loss it
computes from the full logits is TRL's SFT loss (value, gradient and the metrics TRL logs beside it), and the policy's forward count per loss
is one, where TRL's outputs path made it three (a real SFTTrainer on the toy model and the toy addition task)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

from cpt.guards.config import KLAnchorSpec
from cpt.guards.kl_anchor import KLAnchorGuard
from cpt.guards.logits_loss import covers, sft_loss_with_logits
from cpt.stages.bad_batches import BadBatchCheck
from cpt.stages.hooks import StageHooks, hooked_trainer_class


def _toy_model(toy_dir):
    return AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32)


@pytest.fixture(params=[False, True], ids=["rows", "packed"])
def anchored(request, tmp_path, toy_dir):
    """A hooked SFTTrainer with the KL anchor, and one prepared batch of prompt/completion rows (packed: one
    padding-free row of several, with position_ids and no attention mask)."""
    data = load_dataset("json", data_files=str(toy_dir / "tasks" / "addition" / "train.jsonl"), split="train")
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=8, bf16=False,
                     use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True, seed=0,
                     packing=request.param, max_length=128)
    guard = KLAnchorGuard(KLAnchorSpec(method="kl_anchor"), lambda: _toy_model(toy_dir))
    ctx = SimpleNamespace(spec=SimpleNamespace(name="a", keep_checkpoints=1), checkpoint_dir=tmp_path / "ck",
                          resume_from=None)
    hooks = StageHooks.for_stage(ctx, guard, BadBatchCheck("a", 0, tmp_path))
    trainer = hooked_trainer_class(SFTTrainer)(
        model=_toy_model(toy_dir), cpt_hooks=hooks, args=args,
        train_dataset=data.select_columns(["prompt", "completion"]).select(range(64)),
        processing_class=AutoTokenizer.from_pretrained(toy_dir / "model"))
    inputs = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    trainer.model.train()  # as in a training step: the metrics go to "train"
    assert (inputs["labels"] == -100).any() and (inputs["labels"] != -100).any()  # prompts are not trained on
    assert ("attention_mask" in inputs) != request.param
    return trainer, inputs


def _loss_grad_and_metrics(trainer, compute):
    """The loss, one weight's gradient, and what the call logged: entropy, token accuracy, tokens added."""
    trainer.model.zero_grad()
    tokens_before = trainer._total_train_tokens
    loss = compute()
    loss.backward()
    logged = trainer._metrics["train"]
    metrics = (logged["entropy"][-1], logged["mean_token_accuracy"][-1], trainer._total_train_tokens - tokens_before)
    return loss.item(), trainer.model.model.layers[0].mlp.down_proj.weight.grad.clone(), metrics


@pytest.mark.parametrize("num_items", [None, 37])
def test_the_loss_from_full_logits_is_trls_sft_loss(anchored, num_items):
    trainer, inputs = anchored
    model = trainer.model
    assert covers(trainer, inputs)
    theirs = _loss_grad_and_metrics(trainer, lambda: SFTTrainer.compute_loss(trainer, model, dict(inputs),
                                                                             num_items_in_batch=num_items))
    ours = _loss_grad_and_metrics(trainer, lambda: sft_loss_with_logits(trainer, model, dict(inputs), num_items)[0])
    assert ours[0] == pytest.approx(theirs[0], rel=1e-5)
    torch.testing.assert_close(ours[1], theirs[1], rtol=1e-4, atol=1e-7)
    assert ours[2] == pytest.approx(theirs[2], rel=1e-4) and ours[2][2] > 0


def test_the_anchored_loss_runs_the_policy_once(anchored):
    trainer, inputs = anchored
    forwards = []
    handle = trainer.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        loss = trainer.compute_loss(trainer.model, dict(inputs))
    finally:
        handle.remove()
    assert len(forwards) == 1
    assert loss.requires_grad and trainer._guard_log == [pytest.approx(0.0, abs=1e-6)]  # the start is its anchor
