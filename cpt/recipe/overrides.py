"""`key.path=value` overrides from the command line, applied to the raw recipe before validation.

    cpt run recipes/quickstart.yaml stages.sft_a.train.max_steps=20 run.name=try2

A list element is addressed by index (`stages.0`) or, for stages, by name (`stages.sft_a`).
Values are parsed as YAML scalars (`1e-4`, `true`, `[a, b]`).
"""

from __future__ import annotations

from typing import Any

import yaml

from cpt.errors import UserError
from cpt.recipe.yaml_io import safe_load


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return `raw` with each override applied in order; schema validation runs afterwards."""
    for override in overrides:
        path, value = _parse(override)
        _set(raw, path, value, override)
    return raw


def _parse(override: str) -> tuple[list[str], Any]:
    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"override '{override}': expected key.path=value, e.g. run.seed=1")
    try:
        value = safe_load(text) if text else ""
    except yaml.YAMLError as exc:
        raise UserError(f"override '{override}': value is not valid YAML ({exc.problem})") from None
    return key.split("."), value


def _set(node: Any, path: list[str], value: Any, override: str) -> None:
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part, where, override)
            if last:
                node[index] = value
                return
            node = node[index]
        elif isinstance(node, dict):
            if last:
                node[part] = value
                return
            node = node.setdefault(part, {})
        else:
            raise UserError(f"override '{override}': '{where}' is inside a value that is not a mapping")


def _list_index(items: list, part: str, where: str, override: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise UserError(f"override '{override}': '{where}' is out of range (the list has {len(items)} items)")
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return names.index(part)
    raise UserError(
        f"override '{override}': no item named '{part}' at '{where}' (names: {', '.join(map(str, names))})"
    )
