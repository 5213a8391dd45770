"""The mixture stream: an endless `torch.utils.data.IterableDataset` that picks a domain per packed
sequence by the current weights and fills the sequence from that domain's documents.

    stream = MixtureStream(domains, {"general": 0.5, "code": 0.5}, max_length=128, seed=0)
    batch = next(iter(DataLoader(stream, batch_size=8, collate_fn=default_data_collator)))
    stream.set_weights({"general": 0.3, "code": 0.7})     # a learner's update
    state = stream.state_dict(consumed=8)                 # JSON-serialisable, as of sequence 8
    MixtureStream(domains, ..., seed=0).load_state_dict(state)   # yields exactly what followed sequence 8

Why our own and not `datasets.interleave_datasets` + TRL packing: the weights change while
training and the position must be saved and restored exactly; interleaving fixes the
probabilities up front and TRL packs a static dataset.

Each domain is read in a fresh permutation per epoch (derived from seed, domain and epoch, so
only three integers per domain describe the position) and packed "wrapped": documents with
their EOS are concatenated and cut into `max_length` tokens, a document that does not fit
continuing in the domain's next sequence. Nothing is padded or dropped.

Trainers read ahead of what they train on (accelerate's loaders fetch one batch early; with
several processes rank 0 may fetch for all). So the stream keeps snapshots of its state before
each of the last `history` sequences, and `state_dict(consumed=N)` returns the state as of
sequence N plus the weight changes made after it, which are pinned to the sequence from which
they took effect: a restored stream repeats the read-ahead exactly.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from data_mixing.domains import TokenDomain

STATE_VERSION = 1


class MixtureStream(IterableDataset):
    """Packed `max_length` sequences, each from one domain drawn by weight. See the module doc."""

    def __init__(self, domains: list[TokenDomain], weights: dict[str, float], max_length: int, seed: int,
                 history: int = 4096):
        self.domains = domains
        self.names = [d.name for d in domains]
        self.max_length = max_length
        self.seed = seed
        self._rng = np.random.default_rng([seed, 0x5EED])  # not named `generator`: accelerate would reseed it
        self._position = 0  # sequences generated so far (read-ahead included)
        self._cursors = [[0, 0, 0] for _ in domains]  # per domain: epoch, index in its permutation, token offset
        self._counts = [0] * len(domains)  # sequences generated per domain
        self._digest = ""  # hash chain over the ids of the sequences generated
        self._initial = self._checked(weights)  # the weights before the first change
        self._changes: list[tuple[int, list[float]]] = []  # (from position on, weights), in order
        self._snapshots: deque[dict] = deque(maxlen=history)
        self._orders: dict[int, tuple[int, np.ndarray]] = {}  # domain -> (epoch, permutation), cached

    # -- weights ----------------------------------------------------------------------------
    @property
    def weights(self) -> dict[str, float]:
        """The weights the next sequence will be drawn with (the latest set)."""
        return dict(zip(self.names, self._changes[-1][1] if self._changes else self._initial))

    def set_weights(self, weights: dict[str, float]) -> None:
        """New sampling weights, in effect from the next sequence generated."""
        self._changes.append((self._position, self._checked(weights)))

    def _weights_at(self, position: int) -> list[float]:
        for start, weights in reversed(self._changes):
            if start <= position:
                return weights
        return self._initial

    def _checked(self, weights: dict[str, float]) -> list[float]:
        values = np.asarray([float(weights[name]) for name in self.names])
        if (values < 0).any() or values.sum() <= 0 or not np.isfinite(values).all():
            raise ValueError(f"mixture weights must be finite, >= 0 and not all zero: {weights}")
        return (values / values.sum()).tolist()

    # -- iteration --------------------------------------------------------------------------
    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self._next_sequence()

    def _next_sequence(self) -> dict[str, torch.Tensor]:
        self._snapshots.append(self._snapshot())
        domain = int(self._rng.choice(len(self.domains), p=self._weights_at(self._position)))
        cursor = self._cursors[domain]
        sample_id = (domain, *cursor)
        tokens = self._fill(domain, cursor)
        self._digest = hashlib.blake2b(f"{self._digest}{sample_id}".encode(), digest_size=8).hexdigest()
        self._counts[domain] += 1
        self._position += 1
        ids = torch.from_numpy(tokens)
        return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids)}

    def _fill(self, domain: int, cursor: list[int]) -> np.ndarray:
        """`max_length` tokens from the domain's cursor on, advancing the cursor in place."""
        parts, need = [], self.max_length
        while need > 0:
            epoch, index, offset = cursor
            doc = self.domains[domain].doc(self._order(domain, epoch)[index])
            piece = doc[offset : offset + need]
            parts.append(piece)
            need -= len(piece)
            offset += len(piece)
            if offset >= len(doc):
                index, offset = index + 1, 0
                if index == len(self.domains[domain]):
                    epoch, index = epoch + 1, 0
            cursor[:] = [epoch, index, offset]
        return np.concatenate(parts).astype(np.int64)

    def _order(self, domain: int, epoch: int) -> np.ndarray:
        cached = self._orders.get(domain)
        if cached is None or cached[0] != epoch:
            rng = np.random.default_rng([self.seed, domain, epoch])
            cached = (epoch, rng.permutation(len(self.domains[domain])))
            self._orders[domain] = cached
        return cached[1]

    # -- state ------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Sequences generated so far, read-ahead included."""
        return self._position

    def keep_history(self, sequences: int) -> None:
        """Keep the state before each of the last `sequences` sequences: more than the trainer reads ahead."""
        self._snapshots = deque(self._snapshots, maxlen=sequences)

    def consumed_per_domain(self, consumed: int) -> dict[str, int]:
        """How many of the first `consumed` sequences came from each domain."""
        return dict(zip(self.names, self._state_at(consumed)["counts"]))

    def _snapshot(self) -> dict:
        return {
            "position": self._position,
            "rng": self._rng.bit_generator.state,
            "cursors": [list(c) for c in self._cursors],
            "counts": list(self._counts),
            "digest": self._digest,
        }

    def _state_at(self, consumed: int) -> dict:
        if consumed == self._position:
            return self._snapshot()
        for snapshot in reversed(self._snapshots):
            if snapshot["position"] == consumed:
                return snapshot
        oldest = self._snapshots[0]["position"] if self._snapshots else self._position
        raise RuntimeError(
            f"mixture stream: no state kept for sequence {consumed} (kept {oldest}..{self._position}); "
            "the trainer read further ahead than the stream's history"
        )

    def state_dict(self, consumed: int | None = None) -> dict:
        """JSON-serialisable state as of sequence `consumed` (default: everything generated so far).

        Weight changes made after that sequence are kept with the position they took effect at.
        """
        consumed = self._position if consumed is None else consumed
        return {
            "version": STATE_VERSION, "names": self.names, "seed": self.seed, "max_length": self.max_length,
            **self._state_at(consumed),
            "weights": list(self._weights_at(consumed)),
            "changes": [[start, list(w)] for start, w in self._changes if start > consumed],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where the stream that wrote `state` was at its `consumed` sequence."""
        mine = {"names": self.names, "seed": self.seed, "max_length": self.max_length}
        theirs = {key: state.get(key) for key in mine}
        if theirs != mine or state.get("version") != STATE_VERSION:
            raise ValueError(f"mixture state does not fit this stream: saved {theirs}, stream {mine}")
        self._rng.bit_generator.state = state["rng"]
        self._position = state["position"]
        self._cursors = [list(c) for c in state["cursors"]]
        self._counts = list(state["counts"])
        self._digest = state["digest"]
        self._initial = list(state["weights"])
        self._changes = [(int(p), list(w)) for p, w in state["changes"]]
        self._snapshots.clear()
