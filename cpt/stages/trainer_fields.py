"""The settings a TRL config class accepts, as plain JSON, cached per installed TRL and transformers.

    fields = trainer_fields(_sft_config_class)   # {"learning_rate": {"type": "float"}, ...}
    trainer_defaults(_dpo_config_class)["beta"]  # 0.1: TRL's own default, from DPOConfig's fields

Checking a recipe's `train:` keys needs only the config's field names and outer types, but importing
`trl.SFTConfig` imports transformers' training args, PEFT and their models: about 8 s of a 10 s
`cpt plan` on a 2-core CPU (measured with `python -X importtime -m cpt plan recipes/quickstart.yaml`).
So the fields are described once as JSON (a descriptor per annotation: a simple type, a union, a
literal's or an enum's values) under ~/.cache/cpt/trainer-fields/ (or $CPT_CACHE_DIR), keyed on the
versions of TRL and transformers, and later checks read that file. The cache is rebuilt whenever
either library changes version; a damaged file is ignored and rewritten.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import os
import types
import typing
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # bump when the descriptor format changes (2: the fields' plain defaults too)


def cache_root() -> Path:
    configured = os.environ.get("CPT_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "cpt"


def trainer_fields(load_config_class: Callable[[], type]) -> dict[str, dict]:
    """Field name -> type descriptor of the class `load_config_class()` returns (imported only on a cache miss)."""
    return _described(load_config_class)["fields"]


def trainer_defaults(load_config_class: Callable[[], type]) -> dict[str, Any]:
    """Field name -> TRL's own default, for the fields whose default is a plain value (a number, a string,
    a bool or None), read from the config class (`dataclasses.fields`) and cached with the fields: our code
    asks TRL what it does when a recipe says nothing, instead of keeping a copy that drifts."""
    return _described(load_config_class)["defaults"]


def _described(load_config_class: Callable[[], type]) -> dict[str, dict]:
    path = _cache_file(load_config_class)
    try:
        cached = json.loads(path.read_text())
        if cached.get("schema") == SCHEMA_VERSION:
            return {"fields": cached["fields"], "defaults": cached["defaults"]}
    except (OSError, ValueError, KeyError, AttributeError):
        pass  # no cache yet, or a damaged one: describe the class again
    config_cls = load_config_class()
    described = {"fields": describe_fields(config_cls), "defaults": plain_defaults(config_cls)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")  # concurrent plans each rename their own
        partial.write_text(json.dumps({"schema": SCHEMA_VERSION, **described}))
        os.replace(partial, path)
    except OSError:
        pass  # a read-only home still validates, only slower
    return described


def _cache_file(load_config_class: Callable[[], type]) -> Path:
    versions = "-".join(_version(name) for name in ("trl", "transformers"))
    name = f"{load_config_class.__module__}.{load_config_class.__name__}-{versions}.json"
    return cache_root() / "trainer-fields" / name


@functools.cache  # importlib.metadata scans site-packages on each call: ~10 ms, twice per stage
def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "none"


def describe_fields(config_cls: type) -> dict[str, dict]:
    hints = typing.get_type_hints(config_cls)
    return {f.name: describe(hints.get(f.name, Any)) for f in dataclasses.fields(config_cls)}


def plain_defaults(config_cls: type) -> dict[str, Any]:
    """The declared defaults that JSON holds as they are (a default_factory's list or dict is left out)."""
    plain = (bool, int, float, str, type(None))
    return {f.name: f.default for f in dataclasses.fields(config_cls)
            if f.default is not dataclasses.MISSING and type(f.default) in plain}


def describe(annotation: Any) -> dict:
    """A JSON descriptor of the outer type (deliberately shallow: anything exotic accepts any value)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"union": [describe(arg) for arg in typing.get_args(annotation)]}
    if origin is typing.Literal:
        values = [v for v in typing.get_args(annotation) if isinstance(v, (str, int, float, bool, type(None)))]
        return {"literal": values}
    if annotation is type(None):
        return {"type": "null"}
    for simple in (bool, int, float, str):
        if annotation is simple:
            return {"type": simple.__name__}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [m.value for m in annotation]}
    if origin in (list, tuple) or annotation in (list, tuple):
        return {"type": "list"}
    if origin is dict or annotation is dict:
        return {"type": "dict"}
    return {"type": "any"}
