"""Parquet sources (cpt/data/parquet.py, files.py) and `datasets` sources with max_examples (streamed.py):
a directory or glob of files loads as one memory-mapped dataset in file order with only the shape's
columns; schema problems name the file, empty values name file and row; max_examples reads only the
files that hold those rows. Run: python -m pytest tests/cpt/data/test_parquet.py"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets.table import MemoryMappedTable

from cpt.core.recipe_base import DataSource
from cpt.data.rows import SFT_SHAPES, TEXT_SHAPES, check_source, load_rows
from cpt.errors import UserError


def _shards(folder, texts_per_file, extra=True):
    """part-0.parquet, part-1.parquet, ... with `text` (and an `id` column nobody asked for)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, texts in enumerate(texts_per_file):
        columns = {"text": texts} | ({"id": list(range(len(texts)))} if extra else {})
        pq.write_table(pa.table(columns), folder / f"part-{index}.parquet", row_group_size=10)
    return folder


def _texts(file_index, count):
    return [f"document {file_index}-{i} " + "word " * (i % 7) for i in range(count)]


def test_directory_and_glob_load_as_one_memory_mapped_dataset_in_file_order(tmp_path):
    folder = _shards(tmp_path / "corpus", [_texts(0, 30), _texts(1, 20), _texts(2, 25)])
    expected = _texts(0, 30) + _texts(1, 20) + _texts(2, 25)

    for path in (folder, folder / "part-*.parquet"):
        rows = load_rows(DataSource(path=str(path)), TEXT_SHAPES)
        assert rows.column_names == ["text"]  # only the shape's column is read
        assert rows["text"] == expected
        assert isinstance(rows.data, MemoryMappedTable) and rows.cache_files  # on disk, mapped, not in memory
    check_source(DataSource(path=str(folder)), TEXT_SHAPES)  # preflight: footers only


def test_chat_rows_and_single_files_keep_their_shape(tmp_path):
    chats = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]] * 3
    pq.write_table(pa.table({"messages": chats}), tmp_path / "chat.parquet")
    rows = load_rows(DataSource(path=str(tmp_path / "chat.parquet")), SFT_SHAPES)
    assert len(rows) == 3 and rows[0]["messages"][1]["content"] == "hello"


@pytest.mark.parametrize("make, expected", [
    (lambda d: pq.write_table(pa.table({"text": [1, 2]}), d / "part-1.parquet"),
     r"part-1.parquet: column 'text' is int64; expected text \(a string\)"),
    (lambda d: pq.write_table(pa.table({"body": ["a"]}), d / "part-1.parquet"),
     r"part-1.parquet: no column 'text'"),
    (lambda d: (d / "part-1.parquet").write_bytes(b"PAR1 not really"), r"part-1.parquet: not a readable Parquet file"),
    (lambda d: pq.write_table(pa.table({"text": ["a", "b", ""]}), d / "part-1.parquet"),
     r"part-1.parquet: row 3: missing or empty field 'text'"),
    (lambda d: pq.write_table(pa.table({"text": ["a", None]}), d / "part-1.parquet"),
     r"part-1.parquet: row 2: missing or empty field 'text'"),
])
def test_a_bad_file_is_named(tmp_path, make, expected):
    folder = _shards(tmp_path / "corpus", [_texts(0, 5)], extra=False)
    make(folder)
    with pytest.raises(UserError, match=expected):
        load_rows(DataSource(path=str(folder)), TEXT_SHAPES)


def test_the_first_file_decides_the_shape(tmp_path):
    pq.write_table(pa.table({"question": ["a"]}), tmp_path / "q.parquet")
    with pytest.raises(UserError, match=r"q.parquet: expected columns prompt/completion or messages or text; "
                                        r"found question"):
        check_source(DataSource(path=str(tmp_path / "q.parquet")), SFT_SHAPES)


@pytest.mark.parametrize("path, expected", [
    ("corpus/*.parquet", r"corpus/\*.parquet: matches no files"),
    ("corpus", r"corpus: is a directory, not a data file, and holds no .parquet files"),
    ("corpus/*", r"corpus/\*: matches .*notes.jsonl; a pattern is read as Parquet files only"),
])
def test_directories_and_patterns_hold_parquet_files_only(tmp_path, monkeypatch, path, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    if path == "corpus/*":
        (tmp_path / "corpus" / "notes.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(UserError, match=expected):
        check_source(DataSource(path=path), TEXT_SHAPES)


def _arrow_bytes(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.arrow"))


def test_max_examples_streams_the_first_rows_only(tmp_path, datasets_cache):
    folder = _shards(tmp_path / "corpus", [_texts(0, 30), _texts(1, 400), _texts(2, 400)])

    head = load_rows(DataSource(path=str(folder), max_examples=40), TEXT_SHAPES)
    assert head["text"] == _texts(0, 30) + _texts(1, 10)
    assert isinstance(head.data, MemoryMappedTable)
    head_bytes = _arrow_bytes(datasets_cache)
    whole = load_rows(DataSource(path=str(folder)), TEXT_SHAPES)
    whole_bytes = _arrow_bytes(datasets_cache) - head_bytes
    assert len(whole) == 830 and head_bytes * 10 < whole_bytes  # the head's cache holds 40 rows, not 830

    again = load_rows(DataSource(path=str(folder), max_examples=40), TEXT_SHAPES)
    assert again.cache_files == head.cache_files  # a second load maps the same file


def test_hf_source_with_max_examples_reads_only_the_files_it_needs(tmp_path):
    """A local dataset folder through the `hf:` path (load_dataset, as for a hub name): with max_examples the
    rows come from the first file while the second is not even readable; the whole split cannot load."""
    folder = _shards(tmp_path / "dataset" / "data", [_texts(0, 50)]).parent
    (folder / "data" / "part-1.parquet").write_bytes(b"PAR1" + b"\0" * 4096 + b"PAR1")  # unreadable

    head = load_rows(DataSource(hf=str(folder), max_examples=12), TEXT_SHAPES)
    assert head["text"] == _texts(0, 12) and head.column_names == ["text"]
    with pytest.raises(UserError, match="could not be loaded"):
        load_rows(DataSource(hf=str(folder)), TEXT_SHAPES)


def test_hf_source_with_the_wrong_columns_is_named(tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    pq.write_table(pa.table({"body": ["a", "b"]}), folder / "train.parquet")
    with pytest.raises(UserError, match=r"dataset '.*dataset': expected columns text; found body"):
        load_rows(DataSource(hf=str(folder), max_examples=1), TEXT_SHAPES)
