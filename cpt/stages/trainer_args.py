"""Validate a stage's `train:` mapping against the TRL config class it is passed to.

TRL/transformers configs are dataclasses that accept wrong types silently (a string learning
rate is only noticed deep inside the optimizer), so we check names and simple types here, at
plan time, and name the key. Keys the runner owns are refused with the reason.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from cpt.stages.trainer_fields import trainer_fields

# Set by the runner for every stage (stages/defaults.py, runner_owned: one value for each of these keys), so
# a recipe that sets them is refused: its value would break lineage or resume, or be silently replaced.
RUNNER_OWNED_KEYS = {
    "output_dir": "the runner places checkpoints in the run directory",
    "resume_from_checkpoint": "the runner resumes from the last complete checkpoint itself",
    "save_total_limit": "the runner keeps the last complete checkpoints (see `keep_checkpoints`)",
    "push_to_hub": "outputs stay in the run directory",
    "seed": "the runner seeds every stage from the run's seed: set run.seed instead",
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
}


def check_trainer_args(load_config_class: Callable[[], type], values: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (key, problem) pairs for `values` that do not fit the config class `load_config_class()` returns
    (its fields come from a cache, stages/trainer_fields.py, so TRL is imported only the first time); empty when all fit."""
    fields = trainer_fields(load_config_class) if values else {}
    problems = []
    for key, value in values.items():
        if key in RUNNER_OWNED_KEYS:
            problems.append((key, f"cannot be set in a recipe: {RUNNER_OWNED_KEYS[key]}"))
        elif key not in fields:
            problems.append((key, _unknown_key_message(key, fields)))
        elif not _matches(value, fields[key]):
            problems.append((key, f"expected {_describe(fields[key])}, got {type(value).__name__} {_short_repr(value)}"))
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


_SIMPLE_CHECKS = {
    "null": lambda v: v is None,
    "bool": lambda v: isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, (list, tuple)),
    "dict": lambda v: isinstance(v, dict),
}


def _matches(value: Any, descriptor: dict) -> bool:
    """A deliberately shallow check of the outer type (trainer_fields.describe), permissive for anything exotic."""
    if "union" in descriptor:
        return any(_matches(value, arg) for arg in descriptor["union"])
    if "literal" in descriptor:
        return value in descriptor["literal"]
    if "enum" in descriptor:
        return isinstance(value, str) and value in descriptor["enum"]
    check = _SIMPLE_CHECKS.get(descriptor.get("type"))
    return check(value) if check else True


def _describe(descriptor: dict) -> str:
    if "union" in descriptor:
        return " or ".join(_describe(arg) for arg in descriptor["union"])
    if "enum" in descriptor:
        return "one of " + ", ".join(repr(v) for v in descriptor["enum"])
    if "literal" in descriptor:
        return "Literal[" + ", ".join(repr(v) for v in descriptor["literal"]) + "]"
    return descriptor.get("type", "any")
