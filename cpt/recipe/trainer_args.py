"""Validate a stage's `train:` mapping against the TRL config class it is passed to.

TRL/transformers configs are dataclasses that accept wrong types silently (a string learning
rate is only noticed deep inside the optimizer), so we check names and simple types here, at
plan time, and name the key. Keys the runner owns are refused with the reason.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any

# Set by the runner for every stage: a recipe that sets them would break lineage or resume.
RUNNER_OWNED_KEYS = {
    "output_dir": "the runner places checkpoints in the run directory",
    "resume_from_checkpoint": "the runner resumes from the last complete checkpoint itself",
    "save_total_limit": "the runner keeps the last complete checkpoints (see `keep_checkpoints`)",
    "push_to_hub": "outputs stay in the run directory",
}

# Numbers the configs take without a word but that fail (or silently do something else) only once
# training has started, after the run directory has changed: setting -> (test, what it must be).
_AT_LEAST_1 = (lambda v: v >= 1, "at least 1")
_AT_LEAST_0 = (lambda v: v >= 0, "at least 0")
_POSITIVE = (lambda v: v > 0, "more than 0")
_FRACTION = (lambda v: 0 <= v < 1, "in [0, 1)")
VALUE_RANGES = {
    "max_steps": (lambda v: v > 0 or v == -1, "a positive number of steps, or -1 to train num_train_epochs"),
    "num_train_epochs": _POSITIVE,
    "learning_rate": _AT_LEAST_0,
    "per_device_train_batch_size": _AT_LEAST_1,
    "per_device_eval_batch_size": _AT_LEAST_1,
    "gradient_accumulation_steps": _AT_LEAST_1,
    "warmup_steps": _AT_LEAST_0,
    "weight_decay": _AT_LEAST_0,
    "adam_beta1": _FRACTION,
    "adam_beta2": _FRACTION,
    "adam_epsilon": _AT_LEAST_0,
    "logging_steps": _POSITIVE,
    "save_steps": _POSITIVE,
    "max_length": _AT_LEAST_1,
    "max_prompt_length": _AT_LEAST_1,
    "max_completion_length": _AT_LEAST_1,
    "temperature": _POSITIVE,
    "seed": (lambda v: 0 <= v < 2**32, "in 0 .. 2**32 - 1"),
}


def check_trainer_args(config_cls: type, values: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (key, problem) pairs for `values` that do not fit `config_cls`; empty when all fit."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    problems = []
    for key, value in values.items():
        if key in RUNNER_OWNED_KEYS:
            problems.append((key, f"cannot be set in a recipe: {RUNNER_OWNED_KEYS[key]}"))
        elif key not in fields:
            problems.append((key, _unknown_key_message(key, fields)))
        elif not _matches(value, _field_type(config_cls, key)):
            expected = _describe(_field_type(config_cls, key))
            problems.append((key, f"expected {expected}, got {type(value).__name__} {_short_repr(value)}"))
        elif _out_of_range(key, value):
            problems.append((key, f"must be {VALUE_RANGES[key][1]}; got {value!r}"))
    return problems


def _out_of_range(key: str, value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and key in VALUE_RANGES and not VALUE_RANGES[key][0](value)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:60] + "..."


def _unknown_key_message(key: str, fields: dict) -> str:
    close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown trainer setting{hint}"


def _field_type(config_cls: type, name: str) -> Any:
    hints = typing.get_type_hints(config_cls)
    return hints.get(name, Any)


def _matches(value: Any, annotation: Any) -> bool:
    """A deliberately shallow check: the outer type only, permissive for anything exotic."""
    if annotation is Any:
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return isinstance(value, str) and value in {m.value for m in annotation}
    if origin in (list, tuple) or annotation in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return True


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))
