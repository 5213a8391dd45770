"""Read a recipe's `DataSource` into a `datasets.Dataset`, checking every row's shape.

Local files are read by us (not `load_dataset`) so that a broken line is reported as
`FILE:LINE: what is wrong`, before any training starts.

    rows = load_rows(DataSource(path="data.jsonl"), SFT_SHAPES)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset

from cpt.errors import UserError
from cpt.recipe.base import DataSource

# A "shape" is a set of fields a row must have; a consumer accepts one of several shapes.
SFT_SHAPES = (("prompt", "completion"), ("messages",), ("text",))
TEXT_SHAPES = (("text",),)
EVAL_SHAPES = (("prompt", "answer"),)
PREFERENCE_SHAPES = (("prompt", "chosen", "rejected"), ("chosen", "rejected"))
PROMPT_SHAPES = (("prompt", "answer"), ("prompt",))
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")


def load_rows(source: DataSource, shapes: tuple[tuple[str, ...], ...]) -> Dataset:
    """All rows of `source` as a Dataset; every row has the fields of one shape (the first row's)."""
    if source.hf is not None:
        dataset = _load_hub(source)
        _check_columns(dataset.column_names, shapes, f"dataset '{source.hf}'")
    else:
        path = _local_path(source)
        dataset = Dataset.from_list(list(_checked_rows(path, shapes)))
    if source.max_examples is not None:
        dataset = dataset.select(range(min(source.max_examples, len(dataset))))
    return dataset


def check_source(source: DataSource, shapes: tuple[tuple[str, ...], ...]) -> None:
    """Preflight: read and check a local source fully without keeping it. Hub sources are not fetched."""
    if source.hf is None:
        for _ in _checked_rows(_local_path(source), shapes):
            pass


def _local_path(source: DataSource) -> Path:
    if source.toy is not None:
        from cpt.data.toy_sources import toy_path

        return toy_path(source.toy, source.split)
    path = Path(source.path)
    if not path.is_file():
        raise UserError(f"{path}: data file not found")
    if path.suffix not in LOCAL_SUFFIXES:
        raise UserError(f"{path}: unsupported data file type '{path.suffix}' (expected {', '.join(LOCAL_SUFFIXES)})")
    return path


def _checked_rows(path: Path, shapes) -> Iterator[dict[str, Any]]:
    shape = None
    count = 0
    for where, row in _raw_rows(path):
        shape = shape or _shape_of(row, shapes, where)
        missing = [f for f in shape if not _present(row.get(f))]
        if missing:
            raise UserError(f"{where}: missing or empty field '{missing[0]}' (rows here have {', '.join(shape)})")
        count += 1
        yield {f: row[f] for f in shape}
    if count == 0:
        raise UserError(f"{path}: no rows (expected rows with {_shapes_text(shapes)})")


def _raw_rows(path: Path) -> Iterator[tuple[str, Any]]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path}: row {i + 1}", row
        return
    try:
        with path.open(encoding="utf-8") as handle:
            if path.suffix == ".json":
                yield from _json_array_rows(path, handle.read())
                return
            for lineno, line in enumerate(handle, start=1):
                if line.strip():
                    yield f"{path}:{lineno}", _parse_line(path, lineno, line)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (bad byte at offset {exc.start})") from None


def _parse_line(path: Path, lineno: int, line: str) -> Any:
    if path.suffix == ".txt":
        return {"text": line.rstrip("\n")}
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from None


def _json_array_rows(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON array of rows")
    for i, row in enumerate(rows):
        yield f"{path}: row {i + 1}", row


def _shape_of(row: Any, shapes, where: str) -> tuple[str, ...]:
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with {_shapes_text(shapes)}, got {type(row).__name__}")
    for shape in shapes:  # by keys, so an empty value is reported as such below
        if all(f in row for f in shape):
            return shape
    raise UserError(f"{where}: expected fields {_shapes_text(shapes)}; found {', '.join(row) or 'none'}")


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _shapes_text(shapes) -> str:
    return " or ".join("/".join(shape) for shape in shapes)


def _check_columns(columns: list[str], shapes, label: str) -> None:
    if not any(all(f in columns for f in shape) for shape in shapes):
        raise UserError(f"{label}: expected columns {_shapes_text(shapes)}; found {', '.join(columns)}")


def _load_hub(source: DataSource) -> Dataset:
    from datasets import load_dataset

    try:
        return load_dataset(source.hf, source.subset, split=source.split)
    except Exception as exc:  # noqa: BLE001 -- network, missing split, unknown name: one user message
        raise UserError(f"dataset '{source.hf}' (split {source.split}): could not be loaded ({exc})") from None
