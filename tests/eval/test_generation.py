"""Generation-based scoring: batching with left padding changes nothing, and exact match is exact."""

from __future__ import annotations

import pytest

from eval.generation import evaluate_checkpoint, first_line, generate, is_exact_match
from eval.matrix import format_matrix


def test_exact_match_uses_first_line_stripped():
    assert is_exact_match(" 42\nadd 1+1 = 2", "42")
    assert not is_exact_match("421", "42")
    assert first_line("\n  x y \n z") == "x y"


def test_batched_generation_equals_one_at_a_time(toy_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model")
    prompts = ["add 1+2 =", "reverse a b c d e f =", "sort 9 =", "capital of X ="]
    batched = generate(model, tokenizer, prompts, batch_size=4, max_new_tokens=6)
    single = [generate(model, tokenizer, [p], batch_size=1, max_new_tokens=6)[0] for p in prompts]
    assert batched == single


def test_scores_count_matches(toy_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy_dir / "model")
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(toy_dir / "model")
    prompts = [f"add {i}+{i} =" for i in range(8)]
    predictions = generate(model, tokenizer, prompts, batch_size=8, max_new_tokens=4)
    # Answers equal to the model's own first lines for half the prompts, impossible for the rest.
    rows = [{"prompt": p, "answer": first_line(pred) if i < 4 else "never-generated"}
            for i, (p, pred) in enumerate(zip(prompts, predictions))]
    scores = evaluate_checkpoint(toy_dir / "model", {"half": rows}, batch_size=3, max_new_tokens=4)
    assert scores == {"half": pytest.approx(0.5)}


def test_matrix_table():
    table = format_matrix([("base", {"a": 0.0, "b": 0.5}), ("sft_a", {"a": 0.9})], ["a", "b"])
    lines = table.splitlines()
    assert lines[0].split() == ["checkpoint", "a", "b"]
    assert lines[2].split() == ["base", "0.0", "50.0"]
    assert lines[3].split() == ["sft_a", "90.0", "-"]
