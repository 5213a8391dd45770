"""The first N rows of a dataset, read as a stream and written once to `datasets`' Arrow cache.

    rows = first_rows({"path": "HuggingFaceFW/fineweb-edu", "name": "sample-10BT", "split": "train"}, 2_000_000)
    rows = first_rows({"path": "parquet", "data_files": [...], "split": "train"}, 10_000, identity={...})

`load_dataset(..., split="train[:N]")` still downloads and converts the whole split before slicing it;
a stream with `take(N)` reads only the files (or remote shards) that hold the first N rows. What we add:
the rows are written to an Arrow file in the datasets cache under a fingerprint of the request (plus
`identity`, e.g. the local files' sizes and mtimes), so a second call, in this process or the next
job, memory-maps that file instead of streaming again.
"""

from __future__ import annotations

import hashlib
import json
import logging

logger = logging.getLogger(__name__)


def first_rows(request: dict, n: int, identity: dict | None = None, columns: list[str] | None = None):
    """The first `n` rows of `load_dataset(**request, streaming=True)` (only `columns`, if given) as a
    memory-mapped `datasets.Dataset`."""
    from datasets import Dataset

    key = json.dumps({"request": request, "n": n, "columns": columns, **(identity or {})}, sort_keys=True)
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
    logger.info("reading the first %d rows of %s (fingerprint %s)", n, request.get("path"), fingerprint)
    # The request travels as one JSON string: a list in gen_kwargs would be split into generator shards.
    return Dataset.from_generator(_streamed_rows, gen_kwargs={"request": json.dumps(request), "n": n,
                                                              "columns": columns},
                                  features=_features(request, columns), fingerprint=fingerprint)


def open_stream(request: dict, columns: list[str] | None = None):
    """`load_dataset(**request, streaming=True)`, only `columns` if given: nothing is read but metadata."""
    from datasets import load_dataset

    stream = load_dataset(**request, streaming=True)
    return stream.select_columns(columns) if columns else stream


def _features(request: dict, columns: list[str] | None):
    """The stream's column types when its metadata gives them (Parquet does), so the rows keep them."""
    return open_stream(request, columns).features


def _streamed_rows(request: str, n: int, columns: list[str] | None):
    yield from open_stream(json.loads(request), columns).take(n)
