"""Files written whole or not at all: a kill at any moment never leaves a half-written result.

    atomic_write_json(Path("eval/matrix.json"), {...})
    with atomic_open(Path("report/heatmap.png"), "wb") as handle:
        figure.savefig(handle, format="png")
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary sibling of `path` ("w" text is UTF-8); on success it replaces `path`, on error it goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; results are for everyone who can read the run
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_json(path: Path, obj: Any, default=None) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=default) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@contextmanager
def sibling_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `.NAME.lock` beside `path`: processes building the same folder take turns."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.lock")):
        yield


def replace_folder(final: Path, built: Path) -> None:
    """Rename the finished folder `built` to `final`; an existing `final` is moved aside first (into a
    `.NAME.stale-*` sibling) and deleted once the new one is in place, so `final` is missing only between
    two renames. The one folder swap of the project (cached folders, stage models, merged models)."""
    stale = None
    if final.exists():
        stale = Path(tempfile.mkdtemp(prefix=f".{final.name}.stale-", dir=final.parent))
        os.rename(final, stale / "old")
    os.rename(built, final)
    if stale is not None:
        shutil.rmtree(stale, ignore_errors=True)
