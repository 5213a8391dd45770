"""Recipe key `merge:` of a stage: after the stage, keep only as much of its update as the earlier tasks allow.

    merge: {budget: 2}                                   # lose at most 2 points of held-out accuracy
    merge: {budget: 2, rows: 64, steps: 4}               # rows per task; bisection steps (alpha to 1/16)
    merge: {budget: 2, held_out: {mine: data/mine_heldout.jsonl}}   # held-out rows of a file task

It is a stage key of its own, so it combines with `guard:` (olora, osf, kl_anchor, freeze) and with `replay:`.
What it guards (the recipe validator checks this before anything runs, `guarded_tasks`):
- earlier tasks: eval tasks trained in an earlier stage (`trained_in:`, or the first stage on that toy task);
- general tasks: eval tasks with `general: true`.
Each needs held-out rows that are not its evaluation rows: embedded toy tasks and the general-knowledge
tasks world_capitals / world_regions have them; any other task needs a `held_out:` file of
{prompt, answer} rows. The search and the interpolation are in cpt/guards/merge.py and merge_search.py.
"""

from __future__ import annotations

from pydantic import Field

from cpt.core.recipe_base import StrictModel

# The general-knowledge tasks built from package data (eval/general_tasks.py): their rows past the eval's
# max_examples are held out. Named here, not imported: the recipe schema stays free of eval imports.
PACKAGE_GENERAL_TASKS = ("world_capitals", "world_regions")


class MergeSpec(StrictModel):
    """Interpolate the stage's output towards its start: start + alpha * (trained - start)."""

    budget: float = Field(ge=0.0, le=100.0, description="points of held-out accuracy the earlier tasks' mean and "
                          "the general tasks' mean may each lose against the stage's start")
    rows: int = Field(32, gt=0, le=10_000, description="held-out rows scored per task")
    steps: int = Field(3, ge=1, le=10, description="bisection steps below alpha 1 (alpha found to 1/2**steps)")
    held_out: dict[str, str] = Field(default_factory=dict, description="eval task -> a .jsonl file of held-out "
                                     "{prompt, answer} rows (needed for tasks that are not toy or world_*)")


def guarded_tasks(recipe, index: int) -> tuple[list, list]:
    """(earlier, general): the recipe's eval tasks (EvalTaskSpec) whose held-out score the merge of stage
    `index` must keep. A general task that was also trained earlier counts as general only."""
    if recipe.eval is None:
        return [], []
    position = {stage.name: i for i, stage in enumerate(recipe.stages)}
    trained_in = recipe.task_stages()
    general = [t for t in recipe.eval.tasks if t.general]
    earlier = [t for t in recipe.eval.tasks
               if not t.general and t.name in trained_in and position[trained_in[t.name]] < index]
    return earlier, general


def merge_problem(recipe, index: int) -> str | None:
    """Why stage `index`'s `merge:` cannot run (a task without held-out rows, an unknown task), or None."""
    merge = recipe.stages[index].merge
    names = [t.name for t in recipe.eval.tasks] if recipe.eval else []
    for task in merge.held_out:
        if task not in names:
            return f"held_out: '{task}' is not an eval task (eval tasks: {', '.join(names) or 'none'})"
    earlier, general = guarded_tasks(recipe, index)
    for task in earlier + general:
        if task.name in merge.held_out or task.toy:
            continue
        why = "a general task" if task.general else "trained in an earlier stage"
        if task.lm_eval in PACKAGE_GENERAL_TASKS:
            if recipe.eval.max_examples is None:
                return (f"eval task '{task.name}' ({why}) is evaluated on all its rows (eval.max_examples: null), "
                        f"so none are held out: set eval.max_examples, or give held_out: {{{task.name}: FILE.jsonl}}")
            continue
        return (f"eval task '{task.name}' ({why}) has no held-out rows: give held_out: {{{task.name}: FILE.jsonl}}, "
                "a file of {prompt, answer} rows that are not its evaluation rows")
    return None
