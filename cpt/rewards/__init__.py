"""Rewards for GRPO and the RFT filter: a registry of verifiable rewards and custom ones by dotted path.

    rewards:
      - {name: exact_match, weight: 1.0}
      - {name: regex, weight: 0.2, args: {pattern: '^\\s*\\d+$', full: true}}
      - {name: my_pkg.rewards:brevity, weight: 0.5}       # your function, same signature as TRL's

`load_rewards(specs)` gives TRL-ready functions (named, checked) and their weights. A reward that raises,
or returns the wrong number of values, stops the stage with `RewardError` naming it.
"""

from __future__ import annotations

import functools
import importlib
import math

from cpt.errors import UserError
from cpt.rewards.builtin import BUILTIN_REWARDS


class RewardError(UserError):
    """A reward function failed or broke its contract; the message names the reward."""


def resolve_reward(name: str):
    """The function behind a registry name or a `package.module:function` path."""
    if name in BUILTIN_REWARDS:
        return BUILTIN_REWARDS[name]
    module_name, colon, attr = name.partition(":")
    if not (colon and module_name and attr):
        raise UserError(f"reward '{name}': not one of {', '.join(BUILTIN_REWARDS)} and not a package.module:function")
    module = _import_reward_module(name, module_name)
    function = getattr(module, attr, None)
    if function is None:
        raise UserError(f"reward '{name}': cannot import it: {module_name} ({getattr(module, '__file__', '?')}) "
                        f"has no function '{attr}'")
    if not callable(function):
        raise UserError(f"reward '{name}': {attr} is not a function")
    return function


def _import_reward_module(name: str, module_name: str):
    """The user's reward module; whatever goes wrong while it loads becomes one message naming it."""
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}"
        raise UserError(f"reward '{name}': cannot import it: {where}: SyntaxError: {exc.msg}") from None
    except ImportError as exc:
        raise UserError(f"reward '{name}': cannot import it ({exc})") from None
    except Exception as exc:  # noqa: BLE001 -- a module may raise anything at import time
        raise UserError(f"reward '{name}': cannot import it: loading {module_name} raised {type(exc).__name__}: "
                        f"{str(exc)[:300]}") from None


def checked_reward(name: str, function, args: dict):
    """`function` with `args` bound, checked on every call: one finite float (or None) per completion."""

    @functools.wraps(function)
    def reward(prompts, completions, **kwargs):
        try:
            values = function(prompts, completions, **{**kwargs, **args})
        except Exception as exc:  # a user's reward may raise anything; stop with its name
            raise RewardError(f"reward '{name}' raised {type(exc).__name__}: {exc}") from exc
        values = list(values) if values is not None else []
        if len(values) != len(completions):
            raise RewardError(f"reward '{name}' returned {len(values)} values for {len(completions)} completions")
        bad = [v for v in values if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v))]
        if bad:
            raise RewardError(f"reward '{name}' returned {bad[0]!r}; expected a finite number or None")
        return values

    reward.__name__ = name.replace(":", ".")  # TRL logs rewards/<__name__>/mean
    return reward


def load_rewards(specs) -> tuple[list, list[float]]:
    """(checked reward functions, weights) for a stage's `rewards:` list."""
    return [checked_reward(s.name, resolve_reward(s.name), s.args) for s in specs], [s.weight for s in specs]


def training_call_extras() -> dict:
    """The keyword arguments TRL 1.16's GRPOTrainer._calculate_rewards gives every reward besides prompts,
    completions, completion_ids and the dataset columns; outside training (the RFT filter) a fresh trainer
    state (step 0, where training starts) and logging hooks that drop what they are given."""
    from transformers import TrainerState

    return {"trainer_state": TrainerState(), "log_extra": _ignore, "log_metric": _ignore}


def _ignore(*_args, **_kwargs) -> None:
    """Stands in for the trainer's completion-table and metric logging, which exist only while training."""


def reward_values(rewards, prompts, completions, completion_ids=None, **columns) -> list[list[float | None]]:
    """Each reward's values on the completions, called with the keywords GRPO training calls it with."""
    extras = training_call_extras()
    return [list(reward(prompts=prompts, completions=completions, completion_ids=completion_ids, **columns, **extras))
            for reward in rewards]


def combined_rewards(rewards, weights, prompts, completions, completion_ids=None, **columns) -> list[float]:
    """The weighted sum of every reward per completion (None counts as 0), as GRPO's sum_then_normalize does."""
    total = [0.0] * len(completions)
    for values, weight in zip(reward_values(rewards, prompts, completions, completion_ids, **columns), weights):
        for i, value in enumerate(values):
            total[i] += weight * (value or 0.0)
    return total
