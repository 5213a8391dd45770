"""Tiny models for the merge-guard tests: a small Llama on the toy tokenizer that has learned task A's
held-out rows by heart (the stage's start), then trained on task B (the stage's output).

Memorising 8 rows of `counting` (one-token answers) takes 80 Adam steps at 5e-3 on this 2-layer model;
80 steps on 8 `sorting` rows at 1e-3 then leave none of A's answers, and the interpolation keeps all of
them up to alpha 0.25 (measured: 100% at 0.25, 25% at 0.375, 0% from 0.5). Both fits take ~3 s on one
thread; on a 2-core machine shared with other work, two threads took over 100 s (spinning threads).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from cpt.toy.tasks import task_validation
from tests.helpers import one_thread


def small_model(tokenizer) -> LlamaForCausalLM:
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return LlamaForCausalLM(config)


def fit(model, tokenizer, rows: list[dict], steps: int, lr: float) -> float | None:
    """Train on the rows' completions (then EOS) with Adam; return the last loss (None for 0 steps)."""
    ids, labels = [], []
    for row in rows:
        prompt = tokenizer(row["prompt"])["input_ids"]
        completion = tokenizer(row["completion"])["input_ids"] + [tokenizer.eos_token_id]
        ids.append(prompt + completion)
        labels.append([-100] * len(prompt) + completion)
    width = max(map(len, ids))
    pad = tokenizer.pad_token_id
    inputs = torch.tensor([x + [pad] * (width - len(x)) for x in ids])
    targets = torch.tensor([x + [-100] * (width - len(x)) for x in labels])
    mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in ids])
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    loss = None
    for _ in range(steps):
        loss = model(input_ids=inputs, labels=targets, attention_mask=mask).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    return None if loss is None else loss.item()


def save(model, tokenizer, folder: Path) -> Path:
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def start_and_trained(toy_dir: Path, out: Path, task_a: str, task_b: str, rows: int, b_steps: int, b_lr: float):
    """(start, trained): A's first `rows` held-out rows learned; then `b_steps` on B's at `b_lr`."""
    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    model = small_model(tokenizer)
    with one_thread():
        fit(model, tokenizer, task_validation(task_a, 0)[:rows], steps=80, lr=5e-3)
        start = save(model, tokenizer, out / "start")
        fit(model, tokenizer, task_validation(task_b, 0)[:rows], steps=b_steps, lr=b_lr)
    return start, save(model, tokenizer, out / "trained")
