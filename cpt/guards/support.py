"""Which guard runs with which stage kind under which launcher: the one table of refusals.

    refusal("osf", "sft", Launch(2, 3))            # -> the message `cpt plan` gives, or None: it runs
    launch_refusals(stage, launch_of(recipe))       # what preflight raises for one stage (runner/preflight.py)

`cpt plan` and `cpt run` (preflight) enforce the launch rules from here; the recipe schema enforces the rules
that hold whatever the launch (a stage spec takes its message from here, or has no such key at all); the
support matrix (cpt/recipe/support_matrix.py: docs/support_matrix.md and the tests' combination matrix)
crosses every guard with every stage kind and launcher through `refusal`. A guard is a `guard:` method or
a stage key of its own (STAGE_KEY_GUARDS); a new one joins the matrix by being added to either list.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cpt.core.distributed import zero_stage
from cpt.guards.config import GUARD_METHODS, WHOLE_WEIGHT_GUARDS

# Guards that are stage keys rather than a `guard:` method: old data replayed, the starting model's own
# answers rehearsed (SSR), the stage's update merged back within a forgetting budget. They combine with any
# `guard:` method; the matrix crosses them one at a time.
STAGE_KEY_GUARDS = ("replay", "rehearsal", "merge")
GUARDS = ("none", *GUARD_METHODS, *STAGE_KEY_GUARDS)
DATA_GUARDS = ("replay", "rehearsal")  # keys of sft and cpt stages only (stages/sft_config.py, cpt_config.py)


@dataclass(frozen=True)
class Launch:
    """How a run is launched: processes, and the DeepSpeed ZeRO stage (None: DDP or one process)."""

    processes: int = 1
    zero: int | None = None

    def describe(self) -> str:
        if self.zero is not None:
            return f"ZeRO-{self.zero}"
        return "DDP" if self.processes > 1 else "one process"


@dataclass(frozen=True)
class Rule:
    """Combinations refused: `guards` on `kinds` (None: any) under `zero` stages (None: any launch)."""

    guards: tuple[str, ...]
    message: str  # {guard} and {kind} are filled in
    kinds: tuple[str, ...] | None = None
    zero: tuple[int, ...] | None = None
    checked_at: str = "preflight"  # "schema": the recipe loader refuses it, whatever the launch

    def applies(self, guard: str, kind: str, launch: Launch) -> bool:
        return (guard in self.guards and (self.kinds is None or kind in self.kinds)
                and (self.zero is None or launch.zero in self.zero))


RULES = (
    Rule(guards=("kl_anchor",), kinds=("dpo", "grpo"), checked_at="schema",
         message="guard: kl_anchor is for sft and cpt stages; a {kind} stage anchors to its reference already "
                 "(train.beta)"),
    Rule(guards=DATA_GUARDS, kinds=("dpo", "grpo"), checked_at="schema",  # the recipe loader's unknown key
         message="{guard}: unknown key: a {kind} stage has none ({guard} is for sft and cpt stages; DPO trains "
                 "on preference pairs, GRPO on the model's own samples)"),
    Rule(guards=WHOLE_WEIGHT_GUARDS, zero=(3,),
         message="guard.method {guard} does not run under DeepSpeed ZeRO-3 (it needs each weight whole on every "
                 "rank); launch with recipes/launch/zero2.yaml or ddp.yaml"),
)


def refusal(guard: str, kind: str, launch: Launch) -> str | None:
    """Why `guard` on a `kind` stage under `launch` is refused (the message), or None when it runs."""
    for rule in RULES:
        if rule.applies(guard, kind, launch):
            return rule.message.format(guard=guard, kind=kind)
    return None


def schema_refusal(guard: str, kind: str) -> str | None:
    """The refusal that holds under every launch (what the recipe schema checks), or None."""
    for rule in RULES:
        if rule.checked_at == "schema" and rule.applies(guard, kind, Launch()):
            return rule.message.format(guard=guard, kind=kind)
    return None


def stage_guards(stage) -> list[str]:
    """The guards a stage section sets: its `guard:` method and its guard keys."""
    method = [stage.guard.method] if getattr(stage, "guard", None) is not None else []
    return method + [key for key in STAGE_KEY_GUARDS if getattr(stage, key, None) is not None]


# An option's rule beside the table: the freeze guard runs under ZeRO-3, its `density` does not.
DENSITY_UNDER_ZERO3 = ("guard.density does not run under DeepSpeed ZeRO-3 (it picks entries of each whole weight "
                       "on every rank); launch with recipes/launch/zero2.yaml or ddp.yaml, or drop density")


def launch_refusals(stage, launch: Launch) -> list[str]:
    """The launch rules `stage` breaks under `launch` (the schema has checked the rest)."""
    found = [refusal(guard, stage.kind, launch) for guard in stage_guards(stage)]
    if getattr(getattr(stage, "guard", None), "density", None) is not None and launch.zero == 3:
        found.append(DENSITY_UNDER_ZERO3)
    return [message for message in found if message]


def launch_of(recipe) -> Launch:
    """The launch to check against: this process's own when a launcher started it (accelerate's and
    torchrun's environment), else the one the recipe's `launch:` section states (what `cpt plan` shows and
    `cpt slurm` launches)."""
    processes, zero = int(os.environ.get("WORLD_SIZE", "1")), zero_stage()
    if zero is not None:
        return Launch(processes, zero)
    if processes > 1:
        return Launch(processes)
    deepspeed = recipe.launch.deepspeed
    return Launch(recipe.launch.num_processes, int(deepspeed[-1]) if deepspeed else None)
