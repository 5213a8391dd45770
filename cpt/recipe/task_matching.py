"""Which stage trains each eval task, so the metrics know R[stage_i][i]; and what to tell the user when none does.

    matching = match_tasks(recipe.stages, recipe.eval.tasks)
    matching.task_stage            # {"maxof": "sft_maxof", ...}
    matching.unmatched             # {"sortnums": ["sft_a", "sft_b"]}: the stages that matched equally well
    unmatched_lines(matching, recipe.stages, recipe.eval.tasks)   # the run summary's explanation

The rule, first that applies:
  1. `trained_in: STAGE` on the eval task.
  2. An embedded toy task (and any `general: true` task): the first stage whose data is `{toy: NAME}`. A
     general task is old knowledge; nothing else ties it to a stage.
  3. Any other task (`path:` or lm-eval), by the first of these tiers that finds a stage:
     a. file name: a stage's data file is named NAME (data/NAME.jsonl) or lies in a folder named NAME
        (tasks/NAME/train.jsonl);
     b. stage name: the stage's name contains NAME (case ignored), e.g. sft_NAME;
     c. same folder: a stage's data file lies in the folder of the task's own `path:` file.
     The tier decides only when it finds one stage; with several it is ambiguous and the task stays
     unmatched: a guess between two stages would put the wrong row under BWT. Stages that train on the
     very same data count once, as the first of them (later ones revisit the task, as with toy data).
A task no rule matches is left out of the averages, BWT and forgetting; `unmatched_lines` names it with
the `trained_in:` to add. Toy and general tasks are never reported: a toy task no stage trains on is held out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TaskMatching:
    task_stage: dict[str, str] = field(default_factory=dict)  # eval task -> the stage that trains it
    unmatched: dict[str, list[str]] = field(default_factory=dict)  # task -> equally good stages ([] = none)


def match_tasks(stages: list, tasks: list) -> TaskMatching:
    """Match each eval task (EvalTaskSpec) to the stage (stage spec) that trains it, by the module's rule."""
    matching = TaskMatching()
    for task in tasks:
        if task.trained_in is not None:
            matching.task_stage[task.name] = task.trained_in
        elif task.toy is not None or task.general:
            stage = _first_on_toy(stages, task.toy) if task.toy else None
            if stage is not None:
                matching.task_stage[task.name] = stage
        else:
            candidates = _candidates(stages, task)
            if len(candidates) == 1:
                matching.task_stage[task.name] = candidates[0]
            else:
                matching.unmatched[task.name] = candidates
    return matching


def unmatched_lines(matching: TaskMatching, stages: list, tasks: list) -> list[str]:
    """The summary's lines on tasks no stage was matched to, each with the eval entry that fixes it."""
    if not matching.unmatched:
        return []
    by_name = {t.name: t for t in tasks}
    leftover = [s.name for s in stages if _sources(s) and s.name not in matching.task_stage.values()]
    unplaced = [t for t, c in matching.unmatched.items() if not c]
    paired = dict(zip(unplaced, leftover)) if len(unplaced) == len(leftover) else {}
    lines = [
        "  not matched to the stage that trains them (so left out of average accuracy, BWT and forgetting): "
        + ", ".join(matching.unmatched),
    ]
    for name, candidates in matching.unmatched.items():
        if candidates:
            why = f"stages {', '.join(candidates)} match it equally well"
        else:
            why = "no stage's data file is named or placed like it, and no stage name contains it"
        stage = candidates[0] if candidates else paired.get(name, "<stage>")
        if stage == "<stage>":
            why += f" (stages: {', '.join(s.name for s in stages)})"
        lines.append(f"    {name}: {why}; name the stage that trains it in its eval entry, e.g.")
        lines.append(f"      - {_entry(by_name[name], stage)}")
    lines.append("    (a task no stage trains is held out: mark it `general: true` to see its change from the base)")
    return lines


def _first_on_toy(stages: list, toy: str) -> str | None:
    return next((s.name for s in stages if any(src.toy == toy for src in _sources(s))), None)


def _candidates(stages: list, task) -> list[str]:
    """The stages the first tier that finds any matches (duplicates by data collapsed to the first)."""
    name = task.name.casefold()
    own_folder = _folder(task.path) if task.path else None
    tiers = [
        lambda s: any(_named(src.path, name) for src in _sources(s) if src.path),
        lambda s: name in s.name.casefold(),
        lambda s: own_folder is not None and any(_folder(src.path) == own_folder for src in _sources(s) if src.path),
    ]
    for matches in tiers:
        found, seen_data = [], set()
        for stage in stages:
            data = tuple(src.describe() for src in _sources(stage))
            if matches(stage) and data not in seen_data:
                found.append(stage.name)
                seen_data.add(data)
        if found:
            return found
    return []


def _sources(stage) -> list:
    """The stage's own training data (not replay), as its spec states it."""
    return list(stage.training_sources())


def _named(path: str, name: str) -> bool:
    file = Path(path)
    return file.stem.casefold() == name or file.parent.name.casefold() == name


def _folder(path: str) -> str:
    return os.path.normcase(os.path.dirname(os.path.abspath(path)))


def _entry(task, stage: str) -> str:
    """The task's eval entry in YAML flow style, with `trained_in: stage` added."""
    keys = {"name": task.name, "path": task.path, "lm_eval": task.lm_eval if task.lm_eval != task.name else None,
            "metric": task.metric, "chance": task.chance, "trained_in": stage}
    return "{" + ", ".join(f"{k}: {v}" for k, v in keys.items() if v is not None) + "}"
