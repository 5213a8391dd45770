"""Verifiable rewards in TRL's reward-function form: `f(prompts, completions, completion_ids, **columns)`
returns one float per completion. Dataset columns (e.g. `answer`) arrive as keyword lists.

    exact_match     1.0 if the completion's first line equals the row's `answer` (whitespace-stripped)
    numeric_match   1.0 if the first number in the completion is within `tolerance` of `answer`
    regex           1.0 if `pattern` matches the completion (a format reward); `full: true` for fullmatch
    length_penalty  -coef per completion token beyond `max_tokens` (0 within it)
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def completion_text(completion) -> str:
    """The generated text, for plain completions and for chat ones (a list of messages)."""
    if isinstance(completion, str):
        return completion
    return completion[-1]["content"] if completion else ""


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def exact_match(prompts, completions, answer, **_) -> list[float]:
    return [float(first_line(completion_text(c)) == str(a).strip()) for c, a in zip(completions, answer)]


def numeric_match(prompts, completions, answer, tolerance: float = 0.0, **_) -> list[float]:
    scores = []
    for completion, target in zip(completions, answer):
        found = _NUMBER.search(completion_text(completion))
        scores.append(float(found is not None and abs(float(found.group()) - float(target)) <= tolerance))
    return scores


def regex(prompts, completions, pattern: str, full: bool = False, **_) -> list[float]:
    compiled = re.compile(pattern)
    match = compiled.fullmatch if full else compiled.search
    return [float(match(completion_text(c).strip() if full else completion_text(c)) is not None) for c in completions]


def length_penalty(prompts, completions, completion_ids=None, max_tokens: int = 32, coef: float = 0.01, **_):
    lengths = [len(ids) for ids in completion_ids] if completion_ids else [len(completion_text(c)) for c in completions]
    return [-coef * max(0, n - max_tokens) for n in lengths]


# Rewards that shape how an answer looks rather than judge whether it is right: the RFT filter leaves them out
# of its success test by default (a length penalty is negative, and would turn every success into a failure).
SHAPING_REWARDS = ("regex", "length_penalty")

BUILTIN_REWARDS = {
    "exact_match": exact_match,
    "numeric_match": numeric_match,
    "regex": regex,
    "length_penalty": length_penalty,
}
