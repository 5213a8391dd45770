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


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[tuple, str]:
    """Apply each override to `raw` in place, in order; schema validation runs afterwards.
    Returns where each one landed, as a location like pydantic's (`('stages', 0, 'train')`) -> the
    override's text, so that a validation error there can name the override as well as the key."""
    landed = {}
    for override in overrides:
        path, value = _parse(override)
        landed[_set(raw, path, value, override)] = override
    return landed


def _parse(override: str) -> tuple[list[str], Any]:
    key, sep, text = override.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UserError(f"override '{override}': expected key.path=value, e.g. run.seed=1")
    try:
        value = safe_load(text) if text else ""
    except yaml.YAMLError as exc:
        raise UserError(f"override '{override}': value is not valid YAML ({exc.problem})") from None
    return key.split("."), value


def _set(node: Any, path: list[str], value: Any, override: str) -> tuple:
    """Set `value` at `path`; return the location it was set at, list items by index."""
    location = []
    for depth, part in enumerate(path):
        last = depth == len(path) - 1
        where = ".".join(path[: depth + 1])
        if isinstance(node, list):
            index = _list_index(node, part, where, override)
            location.append(index)
            if last:
                node[index] = value
                return tuple(location)
            node = node[index]
        elif isinstance(node, dict):
            location.append(part)
            if last:
                node[part] = value
                return tuple(location)
            node = node.setdefault(part, {})
        else:
            raise UserError(f"override '{override}': '{where}' is inside a value that is not a mapping")


def _list_index(items: list, part: str, where: str, override: str) -> int:
    if part.lstrip("-").isdigit():
        index = int(part)
        if -len(items) <= index < len(items):
            return index % len(items)
        raise UserError(f"override '{override}': '{where}' is out of range (the list has {len(items)} items)")
    names = [item.get("name") if isinstance(item, dict) else None for item in items]  # aligned with items
    if part in names:
        return names.index(part)
    listed = ", ".join(str(name) for name in names if name is not None)
    raise UserError(f"override '{override}': no item named '{part}' at '{where}' (names: {listed})")
