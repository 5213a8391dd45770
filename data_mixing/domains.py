"""Domains for the mixture stream: each domain's text tokenised once and split into training
documents and a held-out set of packed sequences that is never trained on.

    domains = build_domains({"general": ds_a, "code": ds_b}, tokenizer, max_length=128, held_out_sequences=8)
    domains[0].doc(i)          # token ids of training document i (numpy, EOS-terminated); len(domains[0]) of them
    domains[0].held_out        # LongTensor [8, 128]: held-out sequences, packed like training ones

The held-out rows are the smallest tail of the domain (in a fixed shuffled order, so a sorted
file does not hold out only its last topic) that fills `held_out_sequences` full sequences;
the split does not depend on the run's seed, so every run and every rank holds out the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset

from cpt.errors import UserError

SPLIT_SEED = 1234  # fixed: the held-out split is a property of the data, not of the run


@dataclass
class TokenDomain:
    """One domain: its documents' token ids (EOS-terminated), which of them train, its held-out sequences."""

    name: str
    tokens: pa.ChunkedArray  # list<int> per document, all of the domain's rows
    rows: np.ndarray  # indices into `tokens` of the training documents
    held_out: torch.Tensor  # [n, max_length], int64; n may be 0

    def __post_init__(self):
        # Documents are read straight from the Arrow buffers (zero-copy, memory-mapped when the
        # dataset is on disk): `datasets` row access costs ~50 us per document, this about 1 us.
        self._chunks = [(chunk.values.to_numpy(), chunk.offsets.to_numpy()) for chunk in self.tokens.chunks if len(chunk)]
        self._starts = np.cumsum([0] + [len(offsets) - 1 for _, offsets in self._chunks])

    def __len__(self) -> int:
        return len(self.rows)

    def doc(self, index: int) -> np.ndarray:
        """The token ids of training document `index` (EOS-terminated)."""
        row = int(self.rows[index])
        chunk = int(np.searchsorted(self._starts, row, side="right")) - 1
        values, offsets = self._chunks[chunk]
        local = row - self._starts[chunk]
        return values[offsets[local] : offsets[local + 1]]


def tokenize_texts(rows: Dataset, tokenizer, name: str, cache_file: Path | None = None) -> Dataset:
    """`{"text"}` rows -> `{"input_ids"}` rows (int32), each ending with EOS (the document separator).

    With `cache_file`, the ids are written there in batches (to a temporary file, renamed when complete)
    and come back memory-mapped: memory stays bounded whatever the domain's size."""
    if len(rows) == 0:
        raise UserError(f"domain '{name}': no rows (an empty domain cannot be sampled)")
    from datasets import Features, List, Value

    eos = tokenizer.eos_token_id

    def encode(batch):
        encoded = tokenizer(batch["text"])["input_ids"]
        return {"input_ids": [ids if ids[-1:] == [eos] else ids + [eos] for ids in encoded]}

    features = Features({"input_ids": List(Value("int32"))})  # half of int64's bytes; any vocabulary fits
    if cache_file is None:
        return rows.map(encode, batched=True, remove_columns=rows.column_names, features=features)
    # The cache file's name is the fingerprint: `datasets` would otherwise hash the tokenizer to make one.
    return rows.map(encode, batched=True, remove_columns=rows.column_names, features=features,
                    cache_file_name=str(cache_file), new_fingerprint=cache_file.stem, desc=f"tokenising {name}")


def split_held_out(name: str, docs: Dataset, max_length: int, sequences: int) -> TokenDomain:
    """Hold out the fewest documents that fill `sequences` sequences of `max_length` tokens."""
    tokens = docs.data.column("input_ids")
    lengths = np.asarray(pc.list_value_length(tokens))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(lengths))[::-1]  # the held-out tail first
    if sequences == 0:
        return TokenDomain(name, tokens, np.arange(len(lengths)), torch.zeros((0, max_length), dtype=torch.long))
    needed = sequences * max_length
    taken = int(np.searchsorted(np.cumsum(lengths[order]), needed) + 1)  # documents until enough tokens
    if taken >= len(lengths) or lengths[order[:taken]].sum() > lengths.sum() // 2:
        raise UserError(
            f"domain '{name}': too small to hold out {sequences} sequences of {max_length} tokens "
            f"({int(lengths.sum())} tokens in {len(lengths)} rows); lower mixing.held_out_sequences or add data"
        )
    domain = TokenDomain(name, tokens, np.sort(order[:taken]), torch.zeros(0))
    held_ids = np.concatenate([domain.doc(i) for i in range(taken)])[:needed].astype(np.int64)
    return TokenDomain(name, tokens, np.sort(order[taken:]), torch.from_numpy(held_ids.reshape(sequences, max_length)))


def build_domains(
    rows: dict[str, Dataset], tokenizer, max_length: int, held_out_sequences: int
) -> list[TokenDomain]:
    """Tokenise every domain once and split off its held-out sequences, in the order given."""
    return split_domains({name: tokenize_texts(texts, tokenizer, name) for name, texts in rows.items()},
                         max_length, held_out_sequences)


def split_domains(docs: dict[str, Dataset], max_length: int, held_out_sequences: int) -> list[TokenDomain]:
    """Domains from `{"input_ids"}` rows already tokenised (e.g. read from a token cache), in the order given."""
    return [split_held_out(name, tokens, max_length, held_out_sequences) for name, tokens in docs.items()]
