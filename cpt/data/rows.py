"""Read a recipe's `DataSource` into a `datasets.Dataset`, checking every row's shape.

Local JSONL, JSON and text files are read by us (not `load_dataset`) so that a broken line is reported
as `FILE:LINE: what is wrong`, before any training starts. Parquet (a file, a directory or a glob of
many) is checked from its schema and loaded as memory-mapped Arrow (cpt/data/parquet.py), and a
`datasets` source with `max_examples` is streamed up to that many rows (cpt/data/streamed.py): a
corpus of several GB costs bounded memory.

    rows = load_rows(DataSource(path="data.jsonl"), SFT_SHAPES)
    rows = load_rows(DataSource(path="corpus/*.parquet", max_examples=100_000), TEXT_SHAPES)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from datasets import Dataset

from cpt.core.recipe_base import DataSource
from cpt.data.encoding import decode_utf8
from cpt.data.files import folder_stamps, is_parquet, local_files
from cpt.data.shapes import (  # noqa: F401  (re-exported: the stages import the shapes from here)
    EVAL_SHAPES,
    PREFERENCE_SHAPES,
    PROMPT_SHAPES,
    SFT_SHAPES,
    TEXT_OR_CHAT_FIELDS,
    TEXT_SHAPES,
    shape_of_columns,
    shapes_text,
)
from cpt.errors import UserError

MAX_LISTED_NAME = 40  # a field name longer than this is cut in messages (a broken line can have a huge one)


def load_rows(source: DataSource, shapes: tuple[tuple[str, ...], ...]) -> Dataset:
    """All rows of `source` (its first `max_examples`) as a Dataset; every row has the fields of one shape."""
    if source.hf is not None:
        return _load_hub(source, shapes)
    files = local_files(source)
    if is_parquet(files):
        from cpt.data.parquet import load_parquet

        return load_parquet(files, shapes, source.max_examples)
    dataset = Dataset.from_list(list(_checked_rows(files[0], shapes)))
    if source.max_examples is not None:
        dataset = dataset.select(range(min(source.max_examples, len(dataset))))
    return dataset


def check_source(source: DataSource, shapes: tuple[tuple[str, ...], ...]) -> None:
    """Preflight: check a local source without keeping it (Parquet: every file's schema; others: every row).
    Hub sources are not fetched."""
    if source.hf is not None:
        return
    files = local_files(source)
    if is_parquet(files):
        from cpt.data.parquet import check_parquet

        check_parquet(files, shapes)
        return
    for _ in _checked_rows(files[0], shapes):
        pass


def _checked_rows(path: Path, shapes) -> Iterator[dict[str, Any]]:
    shape = None
    kinds: dict[str, tuple[str, str]] = {}  # field -> (kind of value, where first seen)
    count = 0
    for where, row in _raw_rows(path):
        if not isinstance(row, dict):  # checked on every row: the first one fixes the shape only
            raise UserError(f"{where}: expected a JSON object with {shapes_text(shapes)}, got {type(row).__name__}")
        shape = shape or _shape_of(row, shapes, where)
        _check_fields(row, shape, where, kinds)
        count += 1
        yield {f: row[f] for f in shape}
    if count == 0:
        raise UserError(f"{path}: no rows (expected rows with {shapes_text(shapes)})")


def _check_fields(row: dict, shape: tuple[str, ...], where: str, kinds: dict[str, tuple[str, str]]) -> None:
    """Every field of `shape` present, of a usable type, and of the same kind as on earlier rows
    (a column cannot mix text and numbers, or text and chat messages)."""
    missing = [f for f in shape if not _present(row.get(f))]
    if missing:
        raise UserError(f"{where}: missing or empty field '{missing[0]}' (rows here have {', '.join(shape)})")
    for field in shape:
        problem = _field_problem(field, row[field])
        if problem:
            raise UserError(f"{where}: {problem}")
        kind = _kind(row[field])
        first_kind, first_where = kinds.setdefault(field, (kind, where))
        if kind != first_kind:
            raise UserError(f"{where}: field '{field}' is {kind} here but {first_kind} at {first_where}; "
                            "give every row the same kind")


def _kind(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    return "a list of chat messages" if isinstance(value, list) else "a number"


def _raw_rows(path: Path) -> Iterator[tuple[str, Any]]:
    if path.suffix == ".json":
        yield from _json_array_rows(path, decode_utf8(path.read_bytes(), str(path)))
        return
    with path.open("rb") as handle:  # bytes, decoded line by line: a bad byte is reported with its line
        for lineno, raw in enumerate(handle, start=1):
            line = decode_utf8(raw, str(path), first_line=lineno)
            if line.strip():
                yield f"{path}:{lineno}", _parse_line(path, lineno, line)


def _parse_line(path: Path, lineno: int, line: str) -> Any:
    if path.suffix == ".txt":
        return {"text": line.rstrip("\r\n")}
    return _json(line, path, lineno)


def _json(text: str, path: Path, lineno: int | None = None) -> Any:
    """Parsed JSON of line `lineno` (None: the whole file). An error names the line and column, never
    the text: a line can be megabytes."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{path}:{lineno or exc.lineno}"
        raise UserError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise UserError(f"{path}:{lineno or 1}: JSON nested too deeply") from None


def _json_array_rows(path: Path, text: str) -> Iterator[tuple[str, Any]]:
    rows = _json(text, path)
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON array of rows")
    for i, row in enumerate(rows):
        yield f"{path}: row {i + 1}", row


def _shape_of(row: dict, shapes, where: str) -> tuple[str, ...]:
    for shape in shapes:  # by keys, so an empty value is reported as such below
        if all(f in row for f in shape):
            return shape
    found = ", ".join(_short_name(str(key)) for key in list(row)[:10]) + (", ..." if len(row) > 10 else "")
    raise UserError(f"{where}: expected fields {shapes_text(shapes)}; found {found or 'none'}")


def _short_name(name: str) -> str:
    return name if len(name) <= MAX_LISTED_NAME else f"{name[:MAX_LISTED_NAME]}... ({len(name)} characters)"


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _field_problem(field: str, value: Any) -> str | None:
    """Why `value` cannot be row field `field` (a number where text belongs, a broken chat), or None.
    Caught here, the row is named; past here it fails inside a trainer after the run has started."""
    if field == "answer":
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        return None if ok else f"field 'answer' must be a string or a number; got {type(value).__name__}"
    if field == "messages" or (field in TEXT_OR_CHAT_FIELDS and isinstance(value, list)):
        return _chat_problem(field, value)
    if not isinstance(value, str):
        chat = " or a list of chat messages" if field in TEXT_OR_CHAT_FIELDS else ""
        return f"field '{field}' must be text (a string){chat}; got {type(value).__name__}"
    return None


def _chat_problem(field: str, messages: Any) -> str | None:
    if not isinstance(messages, list):
        return f"field '{field}' must be a list of {{role, content}} messages; got {type(messages).__name__}"
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            return f"field '{field}': message {number} is not a {{role, content}} object"
    return None


def _load_hub(source: DataSource, shapes) -> Dataset:
    """A `datasets` source; with `max_examples`, only the first that many rows are read (streamed)."""
    from datasets import load_dataset

    from cpt.data.streamed import first_rows, open_stream

    label = f"dataset '{source.hf}'"
    request = {"path": source.hf, "name": source.subset, "split": source.split}
    try:
        if source.max_examples is None:
            dataset = load_dataset(**request)
            _check_columns(dataset.column_names, shapes, label)
            return dataset
        columns = list(open_stream(request).features or {})
        shape = _check_columns(columns, shapes, label) if columns else None
        return first_rows(request, source.max_examples, identity={"files": folder_stamps(source.hf)},
                          columns=list(shape) if shape else None)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 -- network, missing split, unknown name: one user message
        raise UserError(f"{label} (split {source.split}): could not be loaded ({str(exc)[:300]})") from None


def _check_columns(columns: list[str], shapes, label: str) -> tuple[str, ...]:
    shape = shape_of_columns(columns, shapes)
    if shape is None:
        raise UserError(f"{label}: expected columns {shapes_text(shapes)}; found {', '.join(columns)}")
    return shape
