"""Replay for row-level stages (SFT): old rows added to a dataset at a fixed share.

    mixed = with_replay(new_rows, old_rows, ratio=0.2, seed=0)   # 20% of `mixed` are old rows

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
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"replay ratio must be in (0, 1), got {ratio}")
    count = round(len(dataset) * ratio / (1.0 - ratio))
    order = np.random.default_rng([seed, 0x2E9]).permutation(len(replay))
    picked = np.resize(order, count)  # cycles the permutation when replay has fewer rows than needed
    return concatenate_datasets([dataset, replay.select(picked.tolist())])


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
