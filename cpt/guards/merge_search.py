"""Choose the merge guard's alpha: the largest share of a stage's update that keeps the held-out scores
of the earlier tasks and of the general tasks within a budget (in points) of the stage's start.

    choice = choose_alpha(score_at, {"earlier": ["date_format"], "general": ["capitals"]}, budget=2, steps=3)
    choice.alpha          # 0.625
    choice.to_record()    # what the manifest keeps: alpha, budget, the rule, every alpha tried with its scores

`score_at(alpha)` returns held-out accuracy in points (0-100) per task for start + alpha * (trained - start).

The rule: alpha passes when, for each group that has tasks (earlier, general), the group's mean score at
alpha is at least its mean at alpha 0 (the start) minus the budget. Only a loss counts: a group that gains
passes. The search: score alpha 0 and alpha 1; if alpha 1 passes, the trained model is kept. Otherwise
bisect [0, 1] `steps` times, keeping lo = the largest alpha seen to pass and hi = the smallest seen to
fail; the answer is lo, so it is always an alpha that was measured to pass (0, the start, at worst).
If the score is not monotone in alpha, bisection may miss a larger passing alpha; it never returns a
failing one. 2 + steps evaluations in all (5 with the default 3 steps, alpha to 1/8).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

RULE = ("largest alpha found by bisection whose mean held-out score over the earlier tasks and over the "
        "general tasks each stays within the budget (points) of the stage's start (alpha 0)")
_EPSILON = 1e-9  # scores are means of 0/100 values; equality within float noise passes


@dataclass
class Trial:
    alpha: float
    scores: dict[str, float]  # task -> held-out accuracy in points
    means: dict[str, float]  # group -> mean of its tasks' scores
    within: bool  # every group within the budget of the start


@dataclass
class MergeChoice:
    alpha: float
    budget: float
    groups: dict[str, list[str]]
    reason: str
    trials: list[Trial] = field(default_factory=list)
    rule: str = RULE

    def to_record(self) -> dict:
        return asdict(self)


def choose_alpha(score_at: Callable[[float], dict[str, float]], groups: dict[str, list[str]], budget: float,
                 steps: int) -> MergeChoice:
    """The largest alpha within `budget` (see the module docstring), with every trial behind it."""
    groups = {name: tasks for name, tasks in groups.items() if tasks}
    if not groups:
        return MergeChoice(1.0, budget, {}, "no earlier or general eval task to guard: the trained model is kept")
    trials: list[Trial] = []

    def trial(alpha: float) -> Trial:
        scores = score_at(alpha)
        means = {name: sum(scores[t] for t in tasks) / len(tasks) for name, tasks in groups.items()}
        start = trials[0].means if trials else means
        within = all(means[name] >= start[name] - budget - _EPSILON for name in groups)
        trials.append(Trial(alpha, scores, means, within))
        return trials[-1]

    trial(0.0)
    if trial(1.0).within:
        return MergeChoice(1.0, budget, groups, "alpha 1 is within the budget: the trained model is kept", trials)
    lo, hi = 0.0, 1.0
    for _ in range(steps):
        middle = (lo + hi) / 2
        if trial(middle).within:
            lo = middle
        else:
            hi = middle
    reason = (f"alpha 1 loses more than {budget:g} points; the largest alpha within the budget found is {lo:g}"
              if lo > 0 else f"every alpha tried down to {hi:g} loses more than {budget:g} points: the stage's "
              "start is kept (alpha 0)")
    return MergeChoice(lo, budget, groups, reason, trials)


def describe(record: dict) -> str:
    """One line for a manifest's merge record: alpha, budget, and each group's mean at start, full and chosen."""
    trials = {t["alpha"]: t for t in record.get("trials", [])}
    alpha = record.get("alpha")
    parts = [f"alpha {alpha:g} (budget {record.get('budget', 0):g} points)"]
    if 0.0 in trials and 1.0 in trials:
        for group in record.get("groups", {}):
            start, full = trials[0.0]["means"][group], trials[1.0]["means"][group]
            chosen = trials.get(alpha, trials[1.0])["means"][group]
            parts.append(f"{group} {start:.1f} at start, {full:.1f} trained, {chosen:.1f} merged")
    else:
        parts.append(record.get("reason", ""))
    return "; ".join(parts)
