"""Content digests of files and checkpoint folders, for caches that must notice any change.

    file_digest("data/test.jsonl")                    # sha256 of the bytes
    folder_digest(Path("runs/x/stages/sft/model"))    # sha256 over every file's name and bytes

A folder's digest is remembered in a small memo file keyed by each file's size and mtime, so a
multi-gigabyte checkpoint is read once, not on every evaluation.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from eval.files import atomic_write_text


def file_digest(path: str | Path) -> str:
    """sha256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(folder: Path, memo: Path | None = None, ignore: tuple[str, ...] = ()) -> str:
    """sha256 over the relative names and contents of the files under `folder` (names in `ignore` skipped).

    With `memo`, the result is stored there with each file's (size, mtime_ns) and reused while they match.
    """
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in ignore)
    stamps = {str(p.relative_to(folder)): [p.stat().st_size, p.stat().st_mtime_ns] for p in files}
    remembered = _read_memo(memo)
    if remembered.get("stamps") == stamps and remembered.get("digest"):
        return remembered["digest"]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + file_digest(path).encode())
    result = digest.hexdigest()
    if memo is not None:
        atomic_write_text(memo, json.dumps({"digest": result, "stamps": stamps}))  # a kill leaves the old memo or none
    return result


def _read_memo(memo: Path | None) -> dict:
    try:
        return json.loads(memo.read_text()) if memo else {}
    except (OSError, ValueError):
        return {}
