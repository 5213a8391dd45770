"""A full disk or an unwritable output folder: one clear message, and nothing half-written counts as done.

Every write of the run is atomic or committed by a COMPLETE marker (core/atomic.py), so a write
that fails midway leaves a temporary or unmarked folder that the rerun discards. What this module
adds is the message: the libraries report a failed write in their own words (OSError ENOSPC from
Python, "file write failed" from torch.save, "os error 28" from safetensors), and we turn each into
`StorageError` naming the run folder, which `cpt run` prints before exiting with STORAGE_EXIT (74).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cpt.errors import StorageError, UserError

_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES}
# How the libraries that do not raise OSError word the same failures.
_STORAGE_WORDS = ("No space left on device", "Disk quota exceeded", "File too large", "Read-only file system",
                  "Permission denied", "os error 28", "os error 27", "os error 122", "file write failed")


def storage_failure(exc: BaseException) -> str | None:
    """The reason, if `exc` (or an exception it came from) is a failed write for lack of space or rights."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
            return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
        text = str(exc)
        for words in _STORAGE_WORDS:
            if words in text:
                return text.splitlines()[0][:300] if text else words
        exc = exc.__cause__ or exc.__context__
    return None


@contextmanager
def reported_storage_errors(run_dir: Path) -> Iterator[None]:
    """Turn a failed write anywhere in the block into a StorageError that names `run_dir`."""
    try:
        yield
    except Exception as exc:
        reason = storage_failure(exc)
        if reason is None:
            raise
        raise StorageError(
            f"writing the run in {run_dir} failed ({reason}); free space or fix the folder's permissions, then "
            "rerun the same command: finished stages and complete checkpoints are kept, partial writes are discarded"
        ) from exc


def check_output_dir(output_dir: Path) -> None:
    """Preflight: `run.output_dir` is (or can be made) a writable folder. Raises UserError."""
    existing = output_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"run.output_dir: {output_dir} cannot be created, {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"run.output_dir: {existing} is not writable")
