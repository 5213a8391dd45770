"""Writes that are either complete or absent: a kill at any moment never leaves a half-written
file or folder that looks finished.

Files go to a temporary sibling then `os.replace`; folders are written under a temporary name,
get a `COMPLETE` marker last, and are renamed into place.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Whole-file writes and the folder swap live in eval.files (one implementation for the pipeline and eval).
from eval.files import atomic_write_text, replace_folder

COMPLETE_MARKER = "COMPLETE"


def mark_complete(folder: Path) -> None:
    """Write the marker that makes `folder` count as a finished checkpoint."""
    atomic_write_text(folder / COMPLETE_MARKER, "ok\n")


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


@contextmanager
def atomic_folder(final: Path) -> Iterator[Path]:
    """Yield a temporary folder to fill; on success it is marked complete and renamed to `final`.

    An existing `final` is replaced only after the new one is complete.
    """
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    yield tmp
    commit_folder(tmp, final)


def commit_folder(tmp: Path, final: Path) -> None:
    """Mark the filled folder `tmp` complete and move it to `final` (an older one is deleted last)."""
    mark_complete(tmp)
    replace_folder(final, tmp)


def remove_partials(folder: Path) -> None:
    """Delete leftovers of interrupted atomic writes directly inside `folder`."""
    if folder.is_dir():
        for leftover in [*folder.glob(".*.partial*"), *folder.glob(".*.stale-*")]:  # replace_folder's too
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in folder.glob(".*.tmp"):  # eval.files.atomic_open's temporary files
            leftover.unlink(missing_ok=True)
