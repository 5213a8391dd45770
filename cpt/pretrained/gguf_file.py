"""Checks on a GGUF file before anything is imported from it, and its content digest.

    check_gguf_header(Path("model.gguf"))   # cheap: exists, is a file, starts with the GGUF magic
    read_gguf_metadata(Path("model.gguf"))  # parses every header and tensor entry: catches truncated files
    gguf_digest(Path("model.gguf"))         # sha256 of the bytes, computed once per (path, size, mtime)

Each problem is a `UserError` naming the file and what was expected.
"""

from __future__ import annotations

import functools
from pathlib import Path

from cpt.errors import UserError
from eval.digest import file_digest

GGUF_MAGIC = b"GGUF"
EXPECTED = "expected a GGUF model file, e.g. one exported by llama.cpp"


def is_gguf_name(name: str) -> bool:
    """Whether a recipe's `model.name_or_path` names a GGUF file (by its extension)."""
    return name.lower().endswith(".gguf")


def check_gguf_header(path: Path) -> None:
    """Raise UserError unless `path` is an existing file that starts with the GGUF magic bytes."""
    if not path.exists():
        raise UserError(f"GGUF file {path} not found ({EXPECTED})")
    if not path.is_file():
        raise UserError(f"{path} is not a file ({EXPECTED})")
    with path.open("rb") as handle:
        magic = handle.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise UserError(f"{path} is not a GGUF file: it starts with {magic!r}, not {GGUF_MAGIC!r} ({EXPECTED})")


def read_gguf_metadata(path: Path) -> dict:
    """The architecture and tensor count of a GGUF file, after checking the whole file is readable.

    A file cut short (an interrupted copy or download) fails here with a message, not later inside
    transformers with a numpy reshape error.
    """
    check_gguf_header(path)
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
        architecture = reader.fields["general.architecture"].contents()
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise UserError(f"{path} is not a readable GGUF file ({exc}): {EXPECTED}; was it cut short?") from None
    size = path.stat().st_size
    if end > size:
        raise UserError(f"{path} is truncated: its tensors need {end} bytes, the file has {size} ({EXPECTED})")
    return {"architecture": str(architecture), "tensors": len(reader.tensors), "size": size}


def gguf_digest(path: Path) -> str:
    """sha256 of the file's bytes; remembered per (path, size, mtime) within this process."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return file_digest(path)
