"""Parquet sources (one file, a directory or a glob of many) as memory-mapped Arrow, checked by column.

    check_parquet(files, TEXT_SHAPES)                  # preflight: each file's schema (footers only, no data)
    rows = load_parquet(files, TEXT_SHAPES, None)      # every row, through `datasets`' Arrow cache
    rows = load_parquet(files, TEXT_SHAPES, 10_000)    # the first 10k rows in file order, reading no further

Why not row by row as for JSONL: a corpus of several GB as Python dicts costs several times its size
in memory before the first step. `datasets` converts Parquet to Arrow files in its cache and
memory-maps them, so resident memory stays bounded and pages are shared with the OS page cache.
What we add: the columns and their types are checked from each file's schema (naming the file),
empty or missing values in one vectorised pass over the mapped columns (naming file and row), and
only the columns of the chosen shape are read.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from cpt.data.files import stamps
from cpt.data.shapes import TEXT_OR_CHAT_FIELDS, shape_of_columns, shapes_text
from cpt.data.streamed import first_rows
from cpt.errors import UserError


def check_parquet(files: list[Path], shapes) -> tuple[tuple[str, ...], list[int]]:
    """The shape every file has (the first file's, as for a JSONL file's first row) and each file's row
    count, from the files' footers alone."""
    import pyarrow.parquet as pq

    shape, counts = None, []
    for path in files:
        try:
            metadata = pq.read_metadata(path)
            schema = metadata.schema.to_arrow_schema()
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable Parquet file ({str(exc)[:200]})") from None
        shape = shape or _shape_of(schema, shapes, path)
        for field in shape:
            if field not in schema.names:
                raise UserError(f"{path}: no column '{field}' (the first file has {', '.join(shape)}; "
                                "give every file the same columns)")
            problem = _type_problem(field, schema.field(field).type)
            if problem:
                raise UserError(f"{path}: column '{field}' is {schema.field(field).type}; expected {problem}")
        counts.append(metadata.num_rows)
    if not sum(counts):
        raise UserError(f"{_label(files)}: no rows (expected rows with {shapes_text(shapes)})")
    return shape, counts


def load_parquet(files: list[Path], shapes, max_examples: int | None):
    """The rows of `files` (the shape's columns only) as a memory-mapped `datasets.Dataset`; with
    `max_examples`, the first that many rows, streamed so that the files after them are never read."""
    from datasets import load_dataset
    from datasets.exceptions import DatasetGenerationError

    shape, counts = check_parquet(files, shapes)
    request = {"path": "parquet", "data_files": [str(f.resolve()) for f in files], "split": "train",
               "columns": list(shape)}
    try:
        if max_examples is not None:
            rows = first_rows(request, max_examples, identity={"files": stamps(files)})
        else:
            rows = load_dataset(**request)
    except (pa.ArrowException, OSError, ValueError, DatasetGenerationError) as exc:
        raise UserError(f"{_label(files)}: not readable as Parquet ({str(exc)[:300]})") from None
    _check_values(rows, shape, files, counts)
    return rows


def _shape_of(schema: pa.Schema, shapes, path: Path) -> tuple[str, ...]:
    shape = shape_of_columns(schema.names, shapes)
    if shape is None:
        found = ", ".join(schema.names[:10]) + (", ..." if len(schema.names) > 10 else "")
        raise UserError(f"{path}: expected columns {shapes_text(shapes)}; found {found or 'none'}")
    return shape


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _type_problem(field: str, kind: pa.DataType) -> str | None:
    """What column `field` should be, if `kind` is not usable for it (None when it is)."""
    if field == "answer":
        number = pa.types.is_integer(kind) or pa.types.is_floating(kind)
        return None if _is_text(kind) or number else "text or a number"
    if field == "messages" or (field in TEXT_OR_CHAT_FIELDS and pa.types.is_list(kind)):
        return None if _is_chat(kind) else "a list of {role, content} structs"
    return None if _is_text(kind) else "text (a string)"


def _is_chat(kind: pa.DataType) -> bool:
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_struct(kind.value_type):
        return False
    names = [kind.value_type.field(i).name for i in range(kind.value_type.num_fields)]
    return "role" in names and "content" in names


def _check_values(rows, shape: tuple[str, ...], files: list[Path], counts: list[int]) -> None:
    """No null or empty value in the shape's columns: one vectorised pass over the mapped columns
    (a null is a validity bit, an empty text a zero length: only those buffers are touched)."""
    for field in shape:
        column = rows.data.column(field)
        bad = pc.is_null(column)
        if _is_text(column.type):
            bad = pc.or_kleene(bad, pc.equal(pc.binary_length(column), 0))
        elif pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            bad = pc.or_kleene(bad, pc.equal(pc.list_value_length(column), 0))
        first = pc.index(bad, True).as_py()
        if first >= 0:
            path, row = _locate(first, files, counts)
            raise UserError(f"{path}: row {row}: missing or empty field '{field}' (rows here have {', '.join(shape)})")


def _locate(index: int, files: list[Path], counts: list[int]) -> tuple[Path, int]:
    """File and 1-based row of row `index` of the files read in order."""
    for path, count in zip(files, counts):
        if index < count:
            return path, index + 1
        index -= count
    return files[-1], index + 1


def _label(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} Parquet files)"
