"""Resolve `{toy: NAME}` data sources to files of the embedded suite (built on first use)."""

from __future__ import annotations

from pathlib import Path

from cpt.errors import UserError
from cpt.toy import TOY_DOMAINS, TOY_TASKS, ensure_toy


def toy_path(name: str, split: str) -> Path:
    """The jsonl file of toy task or domain `name` for `split`; builds the suite if needed."""
    if name in TOY_TASKS:
        folder = "tasks"
    elif name in TOY_DOMAINS:
        folder = "domains"
    else:
        known = ", ".join((*TOY_TASKS, *TOY_DOMAINS))
        raise UserError(f"toy: unknown embedded task or domain '{name}' (known: {known})")
    path = ensure_toy() / folder / name / f"{split}.jsonl"
    if not path.is_file():
        splits = sorted(p.stem for p in path.parent.glob("*.jsonl"))
        raise UserError(f"toy:{name}: no split '{split}' (splits: {', '.join(splits)})")
    return path
