"""Small stand-ins for the stream tests: synthetic token documents and a character tokenizer,
so the stream, learners and callback are tested without loading a model or the toy suite."""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from data_mixing.domains import split_held_out

EOS = 1


def token_docs(base: int, count: int, seed: int = 0) -> Dataset:
    """`count` documents of 3..40 distinct-per-domain token ids (base + row*100 + position), each EOS-ended."""
    lengths = np.random.default_rng(seed).integers(3, 40, size=count)
    return Dataset.from_dict({"input_ids": [[base + row * 100 + i for i in range(n)] + [EOS]
                                            for row, n in enumerate(lengths.tolist())]})


def two_domains(max_length: int = 16, held_out: int = 2):
    return [split_held_out("a", token_docs(10_000_000, 200, seed=1), max_length, held_out),
            split_held_out("b", token_docs(20_000_000, 120, seed=2), max_length, held_out)]


def domain_of(token: int) -> str:
    return "a" if token < 20_000_000 else "b"


class CharTokenizer:
    """One id per character; no special tokens except EOS (like the toy's byte-level BPE, in miniature)."""

    eos_token_id = EOS

    def __call__(self, texts):
        return {"input_ids": [[2 + ord(c) % 200 for c in text] for text in texts]}
