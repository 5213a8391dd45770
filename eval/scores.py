"""Read scores out of lm-eval's results format, and cut one evaluation's output into per-task parts.

    part, samples = split_by_task(simple_evaluate_output, "mmlu")   # mmlu and its subtasks only
    key, score = primary_score(part, "mmlu")                         # ("acc,none", 0.41)
"""

from __future__ import annotations

# Per-task sections of lm-eval's output (each maps task name -> value).
_PER_TASK = ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "group_subtasks")
# Run-wide sections kept in every part.
_RUN_WIDE = ("config", "date", "lm_eval_version", "transformers_version", "model_source", "model_name")


def split_by_task(output: dict, task: str) -> tuple[dict, list[dict]]:
    """The part of `output` (from simple_evaluate) about `task` and its subtasks, and its samples."""
    names = _with_subtasks(task, output.get("group_subtasks") or {})
    part = {k: output[k] for k in _RUN_WIDE if k in output}
    for section in _PER_TASK:
        values = output.get(section) or {}
        part[section] = {n: values[n] for n in names if n in values}
    samples = [
        {"task": n, **sample} for n in names for sample in (output.get("samples") or {}).get(n, [])
    ]
    return part, samples


def primary_score(part: dict, task: str, metric: str | None = None) -> tuple[str, float | None]:
    """(results key, value) of the task's main metric: `metric` if given, else the first the task declares."""
    row = (part.get("results") or {}).get(task) or {}
    declared = list(((part.get("higher_is_better") or {}).get(task) or {}).keys())
    wanted = [metric] if metric else declared + ["acc", "exact_match", "acc_norm"]
    for name in wanted:
        for key, value in row.items():
            if key.split(",")[0] == name and isinstance(value, (int, float)) and not isinstance(value, bool):
                return key, float(value)
    return (metric or "?"), None


def _with_subtasks(task: str, group_subtasks: dict[str, list[str]]) -> list[str]:
    names, pending = [], [task]
    while pending:
        name = pending.pop(0)
        if name not in names:
            names.append(name)
            pending += group_subtasks.get(name, [])
    return names
