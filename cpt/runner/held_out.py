"""The held-out rows the merge guard scores a stage on, written as lm-eval tasks beside the stage.

    tasks = write_held_out_tasks(recipe, index, Path("runs/x/stages/b/merge/tasks"))
    tasks.groups        # {"earlier": ["date_format"], "general": ["capitals"]}: eval task names
    tasks.sources       # {"date_format": "toy:date_format validation rows 1-32", ...}

Rows come from the same task as its evaluation and are never its evaluation rows:
- an embedded toy task: its validation split (cpt/toy/tasks.py task_validation), in neither train nor test;
- world_capitals / world_regions: the rows after the first `eval.max_examples` (lm-eval's `limit` scores
  the first rows of these tasks, so the rest are held out);
- any task named in `merge.held_out`: that file's {prompt, answer} rows, checked against the task's
  evaluation rows when those are local (a toy task or an eval `path:` file).
Each task is written with the same YAML writer as its evaluation (same filters and metric), the first
`merge.rows` rows only, and named as the eval task.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from cpt.core.recipe_base import DataSource
from cpt.data.rows import EVAL_SHAPES, load_rows
from cpt.errors import UserError
from cpt.guards.merge_config import PACKAGE_GENERAL_TASKS, guarded_tasks
from cpt.toy import ensure_toy
from cpt.toy.build import MARKER
from cpt.toy.tasks import task_validation
from eval.general_data import REGIONS, capital_rows, region_rows
from eval.general_yaml import write_choice_task, write_generate_task
from eval.task_files import write_prompt_answer_task


@dataclass
class HeldOutTasks:
    folder: Path  # the lm-eval include path
    groups: dict[str, list[str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # task -> where its rows came from
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # task -> the eval's `metric:` where it applies

    @property
    def names(self) -> list[str]:
        return [task for tasks in self.groups.values() for task in tasks]


def write_held_out_tasks(recipe, index: int, folder: Path) -> HeldOutTasks:
    """Write the held-out tasks of stage `index`'s merge into `folder` (replaced); UserError where a task
    has no held-out rows."""
    merge = recipe.stages[index].merge
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    earlier, general = guarded_tasks(recipe, index)
    out = HeldOutTasks(folder, {"earlier": [t.name for t in earlier], "general": [t.name for t in general]})
    where = f"stage {recipe.stages[index].name}: merge"
    for task in earlier + general:
        count, source = _write_task(task, merge, recipe.eval.max_examples, folder / task.name, where)
        out.rows[task.name], out.sources[task.name] = count, source
        if task.metric and task.lm_eval in PACKAGE_GENERAL_TASKS and task.name not in merge.held_out:
            out.metrics[task.name] = task.metric  # e.g. acc_norm for world_regions; a held-out file has exact_match
    return out


def _write_task(task, merge, eval_limit: int | None, task_dir: Path, where: str) -> tuple[int, str]:
    if task.name in merge.held_out:
        path = merge.held_out[task.name]
        rows = load_rows(DataSource(path=path), EVAL_SHAPES).to_list()
        _check_disjoint(rows, _evaluation_prompts(task), f"{where}.held_out.{task.name} ({path})")
        rows = rows[: merge.rows]
        write_prompt_answer_task(task.name, rows, task_dir)
        return len(rows), f"{path} rows 1-{len(rows)}"
    if task.toy:
        rows = task_validation(task.toy, _toy_seed())[: merge.rows]
        write_prompt_answer_task(task.name, rows, task_dir)
        return len(rows), f"toy:{task.toy} validation rows 1-{len(rows)}"
    return _write_general_task(task, merge.rows, eval_limit, task_dir, where)


def _write_general_task(task, count: int, eval_limit: int | None, task_dir: Path, where: str) -> tuple[int, str]:
    every = capital_rows() if task.lm_eval == "world_capitals" else region_rows()
    rows = every[eval_limit : eval_limit + count]
    if not rows:
        raise UserError(f"{where}: eval task '{task.name}' has {len(every)} rows and eval.max_examples "
                        f"({eval_limit}) scores all of them, so none are held out: lower eval.max_examples")
    if task.lm_eval == "world_capitals":
        write_generate_task(task.name, rows, task_dir)
    else:
        write_choice_task(task.name, rows, REGIONS, task_dir)
    return len(rows), f"{task.lm_eval} rows {eval_limit + 1}-{eval_limit + len(rows)} (after the evaluated ones)"


def _evaluation_prompts(task) -> set[str]:
    """The prompts `task` is evaluated on, where they are local files (else empty: nothing to check)."""
    if task.path:
        return set(load_rows(DataSource(path=task.path), EVAL_SHAPES)["prompt"])
    if task.toy:
        return set(load_rows(DataSource(toy=task.toy, split="test"), EVAL_SHAPES)["prompt"])
    return set()


def _check_disjoint(rows: list[dict], evaluated: set[str], where: str) -> None:
    shared = [row["prompt"] for row in rows if row["prompt"] in evaluated]
    if shared:
        raise UserError(f"{where}: {len(shared)} of its prompts are evaluation rows of the task (first: "
                        f"{shared[0][:80]!r}); held-out rows must not be evaluation rows")


def _toy_seed() -> int:
    return int(json.loads((ensure_toy() / MARKER).read_text(encoding="utf-8")).get("seed", 0))
