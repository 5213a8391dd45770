"""Folder digests: they change with any byte, and a kill while the memo is written leaves the old memo."""

from __future__ import annotations

import json

import pytest

import eval.files
from eval.digest import folder_digest


def _folder(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    (folder / "config.json").write_text("{}")
    return folder


def test_digest_changes_with_one_byte_and_the_memo_follows(tmp_path):
    folder, memo = _folder(tmp_path), tmp_path / "eval" / ".digest.json"
    first = folder_digest(folder, memo=memo)
    assert json.loads(memo.read_text())["digest"] == first
    (folder / "weights.bin").write_bytes(b"\x00\x02")
    second = folder_digest(folder, memo=memo)
    assert second != first and json.loads(memo.read_text())["digest"] == second


def test_a_failure_while_the_memo_is_written_leaves_the_previous_memo_whole(tmp_path, monkeypatch):
    folder, memo = _folder(tmp_path), tmp_path / ".digest.json"
    folder_digest(folder, memo=memo)
    before = memo.read_text()
    (folder / "weights.bin").write_bytes(b"\x09")

    def interrupted(fd):  # stands in for a kill between writing the new memo and committing it
        raise OSError("interrupted")

    monkeypatch.setattr(eval.files.os, "fsync", interrupted)
    with pytest.raises(OSError):
        folder_digest(folder, memo=memo)
    assert memo.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
