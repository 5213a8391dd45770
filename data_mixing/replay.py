"""Replay for row-level stages (SFT): old rows added to a dataset at a fixed share.

    mixed = with_replay(new_rows, old_rows, ratio=0.2, seed=0)   # 20% of `mixed` are old rows
    mixed = with_shares(new_rows, [(old_rows, 0.2), (rehearsal_rows, 0.25)], seed=0)   # 20% and 25%

The share is exact, not sampled: len(new) * ratio / (1 - ratio) old rows (a seeded shuffle of
them, cycled if there are too few) are appended, and the trainer's shuffling sampler spreads them
through every epoch. An epoch still sees each new row once. `datasets.interleave_datasets` with
probabilities would give the share only in expectation and stop (or oversample) at the first or
last exhausted source, which changes how much new data an epoch holds.

Row shapes are matched by `as_columns`: prompt/completion rows replayed into a text stage become
prompt + completion; text rows replayed into a prompt/completion stage become a completion with an
empty prompt (trained on in full, as they were when they were text).
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset, concatenate_datasets


def with_replay(dataset: Dataset, replay: Dataset, ratio: float, seed: int) -> Dataset:
    """`dataset` plus round(len(dataset) * ratio / (1 - ratio)) rows of `replay`."""
    return with_shares(dataset, [(replay, ratio)], seed)


def with_shares(dataset: Dataset, parts: list[tuple[Dataset, float]], seed: int) -> Dataset:
    """`dataset` plus rows of each (rows, share) in `parts` (replay, self-synthesized rehearsal) so that
    each makes up its share of the result: round(len(dataset) * share / (1 - sum of shares)) rows."""
    if not parts:
        return dataset
    shares = [share for _, share in parts]
    if not all(0.0 < share < 1.0 for share in shares) or sum(shares) >= 1.0:
        raise ValueError(f"replay shares must be in (0, 1) and sum to less than 1, got {shares}")
    free = 1.0 - sum(shares)
    added = []
    for index, (rows, share) in enumerate(parts):
        count = round(len(dataset) * share / free)
        # The first part's stream is the one plain replay always had: its rows stay the same.
        order = np.random.default_rng([seed, 0x2E9] + ([index] if index else [])).permutation(len(rows))
        picked = np.resize(order, count)  # cycles the permutation when there are fewer rows than needed
        added.append(rows.select(picked.tolist()))
    return concatenate_datasets([dataset, *added])


def as_columns(rows: Dataset, columns: tuple[str, ...]) -> Dataset | None:
    """`rows` in the shape `columns` ("text", or "prompt"/"completion", or "messages"); None if no sound mapping."""
    have = set(rows.column_names)
    if set(columns) <= have:
        return rows.select_columns(list(columns))
    if columns == ("text",) and {"prompt", "completion"} <= have:
        return rows.map(lambda r: {"text": r["prompt"] + r["completion"]}, remove_columns=rows.column_names)
    if columns == ("prompt", "completion") and "text" in have:
        return rows.map(lambda r: {"prompt": "", "completion": r["text"]}, remove_columns=rows.column_names)
    return None
