"""The local files a recipe's `path:` names: one data file, or many Parquet files as one dataset.

    local_files(DataSource(path="data/sft.jsonl"))            # [data/sft.jsonl]
    local_files(DataSource(path="corpus/"))                   # every corpus/*.parquet, sorted by name
    local_files(DataSource(path="corpus/part-*.parquet"))     # the files a glob pattern matches, sorted

A directory or a pattern is read as Parquet only: a corpus of several GB is loaded as memory-mapped
Arrow (cpt/data/parquet.py), while a JSONL file is read row by row in Python to name a broken line.
"""

from __future__ import annotations

import glob
from pathlib import Path

from cpt.core.recipe_base import DataSource
from cpt.data.toy_sources import toy_path
from cpt.errors import UserError

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet", ".txt")
PARQUET = ".parquet"
_PATTERN_CHARACTERS = ("*", "?", "[")


def local_files(source: DataSource) -> list[Path]:
    """The files of a `path` or `toy` source, checked to exist and to be of a type we read."""
    if source.toy is not None:
        return [toy_path(source.toy, source.split)]
    path = Path(source.path)
    if any(c in source.path for c in _PATTERN_CHARACTERS):
        return _pattern_files(source.path)
    if path.is_dir():
        files = sorted(path.glob(f"*{PARQUET}"))
        if not files:
            raise UserError(f"{path}: is a directory, not a data file, and holds no {PARQUET} files to read as one "
                            f"dataset (a directory is read as Parquet files)")
        return files
    if not path.is_file():
        raise UserError(f"{path}: data file not found")
    if path.suffix not in LOCAL_SUFFIXES:
        raise UserError(f"{path}: unsupported data file type '{path.suffix}' (expected {', '.join(LOCAL_SUFFIXES)})")
    return [path]


def stamps(files: list[Path]) -> list[list]:
    """Each file's resolved path, size and mtime: how `datasets` tells a changed local file, without reading it."""
    return [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]


def folder_stamps(name: str) -> list[list] | None:
    """`stamps` of every file under `name` when it is a local folder (a `datasets` source may be one), else None."""
    folder = Path(name)
    return stamps(sorted(p for p in folder.rglob("*") if p.is_file())) if folder.is_dir() else None


def is_parquet(files: list[Path]) -> bool:
    return files[0].suffix == PARQUET


def _pattern_files(pattern: str) -> list[Path]:
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise UserError(f"{pattern}: matches no files")
    other = [f for f in files if f.suffix != PARQUET]
    if other:
        raise UserError(f"{pattern}: matches {other[0]}; a pattern is read as Parquet files only "
                        f"(match only {PARQUET} files, e.g. {Path(pattern).parent / ('*' + PARQUET)})")
    return files
