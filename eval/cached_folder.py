"""Build a cached folder once, whole, and reuse it: the one routine behind the toy suite (cpt/toy), imported
models (cpt/pretrained) and the general-knowledge tasks (eval/general_tasks.py).

    root = build_once(root, is_current=lambda r: marker_ok(r), build=lambda staging: write_all(staging),
                      check_replaceable=refuse_foreign_folder)

A complete folder is returned at once. Otherwise, under a file lock beside it (two processes asking at once
build it once: the second waits, then finds it complete), the folder is built in a staging folder beside
`root` and renamed into place (an older build moved aside first, then deleted), so a kill at any moment
leaves either the old folder, the new one, or nothing: never a half-built folder under the final name.
`build` writes its completion marker last; `is_current` reads it. Lives in eval/ (which imports nothing
of cpt) so that eval and cpt can both use it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eval.files import replace_folder, sibling_lock


def build_once(root: Path, is_current: Callable[[Path], bool], build: Callable[[Path], Any],
               check_replaceable: Callable[[Path], None]) -> Path:
    """`root` (absolute), built first by `build(staging)` unless `is_current(root)`.

    `check_replaceable(root)` raises when what is at `root` may not be replaced (a folder that is not an
    earlier build is the user's); it is called under the lock, before building."""
    root = Path(root).absolute()
    if is_current(root):
        return root
    with sibling_lock(root):
        if is_current(root):  # built by another process while this one waited for the lock
            return root
        check_replaceable(root)
        with staged_folder(root) as staging:
            build(staging)
    return root


@contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """An empty folder beside `final` to build in, renamed to `final` when the block succeeds and removed
    whatever happens. Call it while holding `sibling_lock(final)`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging_root = Path(tempfile.mkdtemp(prefix=f".{final.name}.building-", dir=final.parent))
    try:
        staging = staging_root / final.name
        staging.mkdir()
        yield staging
        replace_folder(final, staging)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
