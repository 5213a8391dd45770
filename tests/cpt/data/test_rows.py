"""Reading data sources: every format, and a clear FILE:LINE message for every broken row."""

from __future__ import annotations

import json

import pytest

from cpt.core.recipe_base import DataSource
from cpt.data.rows import EVAL_SHAPES, SFT_SHAPES, TEXT_SHAPES, check_source, load_rows
from cpt.errors import UserError


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_prompt_completion_rows(tmp_path):
    path = _jsonl(tmp_path / "d.jsonl", [{"prompt": "p1", "completion": " c1", "extra": 1}, {"prompt": "p2", "completion": " c2"}])
    rows = load_rows(DataSource(path=str(path)), SFT_SHAPES)
    assert rows.column_names == ["prompt", "completion"] and len(rows) == 2


def test_messages_rows_and_max_examples(tmp_path):
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    path = _jsonl(tmp_path / "d.jsonl", [{"messages": chat}] * 5)
    rows = load_rows(DataSource(path=str(path), max_examples=3), SFT_SHAPES)
    assert len(rows) == 3 and rows[0]["messages"][1]["content"] == "hello"


def test_text_and_parquet_files(tmp_path):
    txt = tmp_path / "d.txt"
    txt.write_text("first line\n\nsecond line\n", encoding="utf-8")
    assert load_rows(DataSource(path=str(txt)), TEXT_SHAPES)["text"] == ["first line", "second line"]
    from datasets import Dataset

    Dataset.from_list([{"text": "a"}, {"text": "b"}]).to_parquet(tmp_path / "d.parquet")
    assert len(load_rows(DataSource(path=str(tmp_path / "d.parquet")), TEXT_SHAPES)) == 2


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"prompt": "a", "completion": " b"}\n{"prompt": "a", "completion"\n', r"d.jsonl:2: not valid JSON"),
        ('{"prompt": "a", "completion": " b"}\n{"prompt": "a"}\n', r"d.jsonl:2: missing or empty field 'completion'"),
        ('{"question": "a"}\n', r"d.jsonl:1: expected fields prompt/completion or messages or text; found question"),
        ('[1, 2]\n', r"d.jsonl:1: expected a JSON object"),
        ("\n\n", r"d.jsonl: no rows"),
    ],
)
def test_malformed_lines_named(tmp_path, content, expected):
    path = tmp_path / "d.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=expected):
        check_source(DataSource(path=str(path)), SFT_SHAPES)


def test_missing_file_wrong_suffix_and_encoding(tmp_path):
    with pytest.raises(UserError, match="data file not found"):
        check_source(DataSource(path=str(tmp_path / "nope.jsonl")), SFT_SHAPES)
    (tmp_path / "d.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(UserError, match="unsupported data file type '.csv'"):
        check_source(DataSource(path=str(tmp_path / "d.csv")), SFT_SHAPES)
    (tmp_path / "d.jsonl").write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(UserError, match="not UTF-8"):
        check_source(DataSource(path=str(tmp_path / "d.jsonl")), TEXT_SHAPES)


def test_toy_sources_resolve(toy_dir):
    rows = load_rows(DataSource(toy="addition", split="test"), EVAL_SHAPES)
    assert len(rows) > 10 and set(rows.column_names) == {"prompt", "answer"}
    with pytest.raises(UserError, match="unknown embedded task or domain 'additon'"):
        check_source(DataSource(toy="additon"), SFT_SHAPES)
