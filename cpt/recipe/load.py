"""Read a recipe file into a validated `Recipe`, or fail with one message that names the place.

    recipe = load_recipe("recipes/quickstart.yaml", ["stages.sft_a.train.max_steps=20"])
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from cpt.data.encoding import decode_utf8
from cpt.errors import UserError
from cpt.guards.config import GUARD_METHODS
from cpt.guards.support import STAGE_KEY_GUARDS, schema_refusal
from cpt.recipe.overrides import apply_overrides
from cpt.recipe.schema import Recipe
from cpt.recipe.yaml_io import safe_load
from cpt.stages.registry import STAGE_KINDS

RECIPE_KEYS = "run, model, stages, eval, launch"


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    """Parse, override and validate. Raises `UserError` naming the file and key on any problem
    (and the override, when a command-line override set the key)."""
    path = Path(path)
    raw = _read_yaml(path)
    set_by = apply_overrides(raw, list(overrides))
    try:
        return Recipe.model_validate(raw)
    except ValidationError as exc:
        lines = [line for err in exc.errors() for line in _format_error(err, raw, set_by).split("\n")]
        raise UserError(f"{path}: invalid recipe\n  " + "\n  ".join(lines)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a recipe file")
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found")
    try:
        raw = safe_load(decode_utf8(path.read_bytes(), str(path)))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a recipe") from None
    if raw is None:
        raise UserError(f"{path}: the recipe is empty (expected a mapping with keys {RECIPE_KEYS})")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping with keys {RECIPE_KEYS} at the top level, got {_a(raw)}")
    return raw


def _a(value: Any) -> str:
    """'a list', 'a string', ... for a YAML value of the wrong kind."""
    names = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}
    return names.get(type(value), type(value).__name__)


DISCRIMINATED = {"kind": STAGE_KINDS, "method": GUARD_METHODS}  # a union's tag field -> its valid values


# Pydantic's wording for a value of the wrong container type, in the recipe's (YAML) terms.
WRONG_CONTAINER = {
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
}


def _format_error(err: dict, raw: dict, set_by: dict[tuple, str]) -> str:
    """One line per problem; a line about a key an override set (or a key inside it, or above it) names it."""
    loc = _strip_union_tags(err["loc"], raw)
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "value_error" and ("\n" in msg or loc[-1:] == ("train",)):  # one line per trainer setting
        where = _loc_label(loc, raw)
        lines = [(loc + (line.partition(":")[0],), f"{where}.{line}") for line in msg.split("\n")]
    else:
        lines = [(loc, _describe_error(err, loc, raw))]
    return "\n".join(text + _overrides_at(at, set_by) for at, text in lines)


def _overrides_at(loc: tuple, set_by: dict[tuple, str]) -> str:
    """' (from override ...)' naming the overrides that set `loc`, a key inside it or a key above it."""
    hits = [text for path, text in set_by.items() if loc and (path[: len(loc)] == loc or loc[: len(path)] == path)]
    if not hits:
        return ""
    return f" (from override{'s' if len(hits) > 1 else ''} " + ", ".join(f"'{hit}'" for hit in hits) + ")"


def _describe_error(err: dict, loc: tuple, raw: dict) -> str:
    where = _loc_label(loc, raw)
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        refused = _refused_key(loc, raw)
        if refused:  # a guard key the stage's kind does not take: the support table says why
            return f"{_loc_label(loc[:-1], raw)}.{refused}{_suggestion(loc, raw)}"
        return f"{where}: unknown key{_suggestion(loc, raw)}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # stages' `kind`, a guard's `method`
        context = err.get("ctx", {})
        field = str(context.get("discriminator", "'kind'")).strip("'")
        expected = ", ".join(DISCRIMINATED[field])
        if kind == "union_tag_not_found":
            return f"{where}: missing '{field}' (expected one of: {expected})"
        what = "a stage kind" if field == "kind" else f"a valid {field}"
        return f"{where}.{field}: '{context.get('tag')}' is not {what} (expected one of: {expected})"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind in WRONG_CONTAINER:
        got = err.get("input")
        return f"{where}: {WRONG_CONTAINER[kind]}" + (f", got {_a(got)} {got!r}" if _short_scalar(got) else "")
    return f"{where}: {msg}" + (f" (got {err['input']!r})" if _short_scalar(err.get("input")) else "")


def _refused_key(loc: tuple, raw: dict) -> str | None:
    """For a stage key its kind does not have, the support table's refusal (guards/support.py), or None."""
    stages = raw.get("stages") if isinstance(raw, dict) else None
    if len(loc) != 3 or loc[0] != "stages" or loc[2] not in STAGE_KEY_GUARDS or not _has(stages, loc[1]) \
            or not isinstance(stages[loc[1]], dict):
        return None
    kind = stages[loc[1]].get("kind")
    return schema_refusal(str(loc[2]), kind) if isinstance(kind, str) else None


def _strip_union_tags(loc: tuple, raw: dict) -> tuple:
    """Pydantic puts the discriminator value in the location ('stages', 1, 'sft', 'data'); drop it."""
    out, node = [], raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and \
                any(node.get(tag) == part for tag in DISCRIMINATED):
            continue
        out.append(part)
        node = node[part] if _has(node, part) else None
    return tuple(out)


def _has(node: Any, part: Any) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(node, list) and isinstance(part, int) and part < len(node)


def _loc_label(loc: tuple, raw: dict) -> str:
    """('stages', 1, 'train') -> 'stages[1] (sft_a).train'."""
    label, node = "", raw
    for part in loc:
        if isinstance(part, int):
            label += f"[{part}]"
            item = node[part] if _has(node, part) else None
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                label += f" ({item['name']})"
        else:
            label += f".{part}" if label else str(part)
        node = node[part] if _has(node, part) else None
    return label or "recipe"


def _suggestion(loc: tuple, raw: dict) -> str:
    """The nearest valid key at the location of an unknown one."""
    allowed = _allowed_keys(loc[:-1], raw)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{close[0]}'?"
    return f" (valid keys: {', '.join(allowed)})" if allowed else ""


def _allowed_keys(loc: tuple, raw: dict) -> list[str]:
    """Field names of the schema model at `loc`, found by walking the annotations; where a union's
    members are told apart by a tag (a stage's `kind`, a guard's `method`), only the member the
    recipe's own tag names counts, so a dpo stage is not offered an sft stage's keys."""
    candidates: list[type[BaseModel]] = [Recipe]
    node: Any = raw
    for part in loc:
        node = node[part] if _has(node, part) else None
        if not isinstance(part, int):
            fields = [model.model_fields.get(part) for model in candidates]
            candidates = [m for field in fields if field is not None for m in _models_in(field.annotation)]
        candidates = _tagged(candidates, node) or candidates
    return sorted({name for model in candidates for name in model.model_fields})


def _tagged(models: list[type[BaseModel]], node: Any) -> list[type[BaseModel]]:
    """The union members whose tag field's literal value equals the tag in the recipe's `node`."""
    if not isinstance(node, dict):
        return []
    for tag in DISCRIMINATED:
        if tag in node:
            return [m for m in models if tag in m.model_fields
                    and node[tag] in typing.get_args(m.model_fields[tag].annotation)]
    return []


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _short_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool)) and len(repr(value)) < 60
