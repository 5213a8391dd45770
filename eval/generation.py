"""Generation + exact-match accuracy of one checkpoint on a set of tasks.

    scores = evaluate_checkpoint("runs/quickstart/stages/sft_a/model",
                                 {"addition": [{"prompt": "add 2+3 =", "answer": "5"}, ...]})

Greedy decoding, batched with left padding; the prediction is the first line of the generated
text, compared to the answer after stripping whitespace. Knows nothing of training.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def is_exact_match(prediction: str, answer: str) -> bool:
    return first_line(prediction) == answer.strip()


def evaluate_checkpoint(
    model_dir: str | Path,
    tasks: dict[str, list[dict]],
    batch_size: int = 64,
    max_new_tokens: int = 16,
    trust_remote_code: bool = False,
    tokenizer_dir: str | Path | None = None,
) -> dict[str, float]:
    """Task name -> exact-match accuracy in [0, 1] of the model saved at `model_dir`."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or model_dir, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    model.eval()
    scores = {}
    for name, rows in tasks.items():
        predictions = generate(model, tokenizer, [r["prompt"] for r in rows], batch_size, max_new_tokens)
        hits = sum(is_exact_match(p, r["answer"]) for p, r in zip(predictions, rows))
        scores[name] = hits / len(rows) if rows else 0.0
    return scores


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int) -> list[str]:
    """Greedy continuations of `prompts` (the new text only)."""
    outputs = []
    for start in range(0, len(prompts), batch_size):
        batch = tokenizer(prompts[start : start + batch_size], return_tensors="pt", padding=True)
        batch = batch.to(model.device)
        generated = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        new_tokens = generated[:, batch["input_ids"].shape[1] :]
        outputs.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    return outputs
