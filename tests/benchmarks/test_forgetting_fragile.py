"""benchmarks/forgetting_fragile.py: the base's right answers split into quarters by its confidence, each quarter's
share of lost (checkpoint, question) pairs, and the probability of an answer read teacher-forced from a real model.
Run: pytest tests/benchmarks/test_forgetting_fragile.py"""

from __future__ import annotations

import pytest
import torch
from forgetting_fragile import answer_probability, quarter_table
from transformers import AutoModelForCausalLM, AutoTokenizer


def test_quarters_rank_the_base_answers_by_confidence_and_count_each_checkpoints_losses():
    """8 right answers, two a quarter; the two least confident lost by both checkpoints, one of the most confident
    by one: 100% of the first quarter's pairs, 25% of the last's, none between."""
    confidence = {doc: p for doc, p in zip([7, 3, 5, 1, 0, 2, 4, 6], [0.9, 0.1, 0.5, 0.3, 0.95, 0.2, 0.6, 0.4])}
    lost_by = {"run/t0": {3, 2}, "run/t1": {3, 2, 0}}
    table = quarter_table(confidence, lost_by)
    assert [row["questions"] for row in table] == [2, 2, 2, 2]
    assert [row["lost_share"] for row in table] == [100.0, 0.0, 0.0, 25.0]
    assert (table[0]["probability_min"], table[-1]["probability_max"]) == (0.1, 0.95)


def test_answer_probability_is_the_models_own_teacher_forced_probability(toy_dir):
    """On the toy: the product of the answer tokens' softmax probabilities after the prompt, recomputed by hand."""
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model", dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    prompt, answer = "Question: what is 2 + 3?\nAnswer:", " 5"
    prompt_ids, ids = tokenizer(prompt)["input_ids"], tokenizer(prompt + answer)["input_ids"]
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([ids])).logits[0], dim=-1)
    expected = 1.0
    for position in range(len(prompt_ids), len(ids)):
        expected *= probs[position - 1, ids[position]].item()
    assert 0 < expected < 1
    assert answer_probability(model, tokenizer, prompt, answer) == pytest.approx(expected, rel=1e-4)
