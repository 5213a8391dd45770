"""Where imported and fetched models live, and how a cache entry is written whole or not at all.

    models_root()                      # $CPT_MODELS_DIR, else ~/.cache/cpt/models
    build_once(final_dir, is_current, build, check_replaceable)   # eval/cached_folder.py
        # build(staging) writes the entry, write_marker(staging, {...}) last: a folder without its
        # marker is never taken as complete

A build holds a file lock beside the entry (`locked`), so two processes asking for the same model at once
build it once: the second waits, then finds it complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from cpt.errors import UserError
from eval.files import sibling_lock

MARKER = "IMPORT_INFO.json"


def models_root() -> Path:
    """The cache of fetched and imported models: $CPT_MODELS_DIR if set, else ~/.cache/cpt/models."""
    configured = os.environ.get("CPT_MODELS_DIR")
    return (Path(configured).expanduser() if configured else Path.home() / ".cache" / "cpt" / "models").absolute()


def read_marker(folder: Path) -> dict | None:
    """The marker of a complete entry, or None when `folder` is missing or unfinished."""
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def write_marker(folder: Path, info: dict) -> None:
    """Mark `folder` complete; call it after everything else is written."""
    (folder / MARKER).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


@contextlib.contextmanager
def locked(entry: Path) -> Iterator[None]:
    """Hold the lock of cache entry `entry` (a sibling file `.NAME.lock`) for the duration."""
    with sibling_lock(entry):
        yield


def check_replaceable(final: Path) -> None:
    """Raise unless `final` is absent, an earlier import (with its marker) or an empty folder: anything else
    there is the user's and is never touched."""
    # Imports are renamed into place whole, so a folder without our marker was never written by us: only an
    # empty one may be taken over.
    if not final.exists() or (final.is_dir() and (read_marker(final) is not None or not any(final.iterdir()))):
        return
    raise UserError(f"{final} exists and is not a model imported by cpt: remove it or choose another folder")
