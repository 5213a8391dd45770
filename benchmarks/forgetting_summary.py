"""The forgetting benchmark's numbers from its runs: each run's summary (accuracy matrix, average after the
last task, BWT, forgetting, general change, the RL methods' phases), their mean and spread over seeds, RL
against SFT, and the rows of `python -m benchmarks`.

    from forgetting_summary import summarise, aggregate, rl_against_sft, table
    per_seed = [summarise(run_dir, tasks, ["world_capitals", "world_regions"], base_scores(first_run_dir))]  # a seed
    result = aggregate(per_seed, naive_seconds)
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from common import row

from cpt.core.layout import RunLayout


def base_scores(run_dir: Path) -> dict[str, float]:
    matrix = json.loads(RunLayout(run_dir).matrix.read_text())
    return next(r for r in matrix["rows"] if r["checkpoint"] == "base")["scores"]


def summarise(run_dir: Path, tasks: list[str], general: list[str], base: dict[str, float]) -> dict:
    """Accuracy matrix (%), final average, BWT, forgetting, general-knowledge change, train seconds; for the RL
    methods also what the warm-ups and the stages after them gained and cost (`phase_one_*`, `phase_two_*`)."""
    all_rows = _rows(run_dir)
    rows = [r for r in all_rows if not r["checkpoint"].startswith("w")]  # w*: the RL methods' warm-ups
    acc = [[100 * r["scores"][t] for t in tasks] for r in rows]
    final = acc[-1]
    summary = {"matrix": acc, "checkpoints": [r["checkpoint"] for r in rows],
               "final_average": statistics.mean(final), **general_change(base, rows[-1]["scores"], general)}
    if len(rows) == len(tasks):  # a sequence: row i is after task i
        summary["bwt"] = statistics.mean(final[j] - acc[j][j] for j in range(len(tasks) - 1))
        # Each task's accuracy right after its own stage: what the method learned. Forgetting is read beside
        # it, so a method that forgets little only because it learns little (merge, RL) shows as such.
        summary["learned"] = statistics.mean(acc[j][j] for j in range(len(tasks)))
        summary["forgetting"] = _pipeline_forgetting(run_dir, tasks[:-1])
    warmups = [r for r in all_rows if r["checkpoint"].startswith("w")]
    if len(warmups) == len(tasks) == len(rows):
        starts = [{"checkpoint": "base", "scores": base}, *rows[:-1]]
        for name, pair in (("phase_one", (starts, warmups)), ("phase_two", (warmups, rows))):
            summary.update({f"{name}_{key}": value for key, value in phase(*pair, tasks, general).items()})
    manifest = _manifest(run_dir)
    summary["train_seconds"] = _train_seconds(manifest)
    alphas = [s["merge"]["alpha"] for s in manifest["stages"].values() if s.get("merge", {}).get("alpha") is not None]
    if alphas:
        summary["merge_alphas"] = alphas
    return summary


def summarise_from_warmups(rl_run: Path, sft_runs: list[Path], tasks: list[str], general: list[str],
                           base: dict[str, float]) -> dict:
    """`rl_sft`'s summary: row i of its matrix is after SFT from `rl`'s warm-up model of task i (run i of
    `sft_runs`), and its second phase is measured from those warm-ups, as `rl`'s is. Not a sequence, so no
    BWT or forgetting; the final average is that of SFT after the last warm-up."""
    warmups = [r for r in _rows(rl_run) if r["checkpoint"].startswith("w")]
    ends = [_rows(run)[-1] for run in sft_runs]
    acc = [[100 * r["scores"][t] for t in tasks] for r in ends]
    summary = {"matrix": acc, "checkpoints": [r["checkpoint"] for r in ends], "final_average": statistics.mean(acc[-1]),
               **general_change(base, ends[-1]["scores"], general),
               "train_seconds": sum(_train_seconds(_manifest(run)) for run in sft_runs)}
    summary.update({f"phase_two_{key}": value for key, value in phase(warmups, ends, tasks, general).items()})
    return summary


def general_change(base: dict[str, float], final: dict[str, float], general: list[str]) -> dict[str, float]:
    """General knowledge from `base` to `final` scores, in %: the mean over the general tasks (`general_base`,
    `general_final`, `general_change`) and, with more than one, each task's change (`general_change_TASK`)."""
    changes = {task: 100 * (final[task] - base[task]) for task in general}
    summary = {"general_base": 100 * statistics.mean(base[t] for t in general),
               "general_final": 100 * statistics.mean(final[t] for t in general),
               "general_change": statistics.mean(changes.values())}
    if len(general) > 1:
        summary.update({f"general_change_{task}": change for task, change in changes.items()})
    return summary


def _rows(run_dir: Path) -> list[dict]:
    """The run's accuracy matrix rows after each stage (the base row left out)."""
    matrix = json.loads(RunLayout(run_dir).matrix.read_text())
    return [r for r in matrix["rows"] if r["checkpoint"] != "base"]


def _manifest(run_dir: Path) -> dict:
    return json.loads(RunLayout(run_dir).manifest.read_text())


def _train_seconds(manifest: dict) -> float:
    """The trainer's own train_runtime, kept in the manifest: a rerun that skips finished stages keeps it."""
    return sum(s["metrics"].get("train_runtime", 0.0) for s in manifest["stages"].values())


def phase(starts: list[dict], ends: list[dict], tasks: list[str], general: list[str]) -> dict:
    """What the stage from each start to each end did (points, mean over tasks): `gain` on its own task, `loss`
    on the earlier tasks (from the second task on) and on general knowledge (the mean over its tasks). For the RL
    methods the warm-ups (phase one: from the previous task's end) and the stages after them (phase two) are such
    pairs; `rl_sft` starts from `rl`'s own warm-ups (summarise_from_warmups), so their second phases compare from
    one start."""
    def points(row, task):
        return 100 * row["scores"][task]
    gain = [points(end, task) - points(start, task) for start, end, task in zip(starts, ends, tasks)]
    loss = [statistics.mean(points(start, t) - points(end, t) for t in tasks[:i])
            for i, (start, end) in enumerate(zip(starts, ends)) if i]
    general_loss = [statistics.mean(points(start, g) - points(end, g) for g in general)
                    for start, end in zip(starts, ends)]
    return {"gain": statistics.mean(gain), "loss": statistics.mean(loss), "general_loss": statistics.mean(general_loss)}


def _pipeline_forgetting(run_dir: Path, earlier_tasks: list[str]) -> float:
    """Mean forgetting of the tasks before the last, as the run's metrics.json counts it: above each task's
    chance level (eval/metrics.py), so a task that falls to guessing forgets only what it had above that."""
    forgetting = json.loads(RunLayout(run_dir).metrics.read_text())["forgetting"]
    return 100 * statistics.mean(forgetting[t] for t in earlier_tasks)


def aggregate(per_seed: list[dict], naive_seconds: float) -> dict:
    keys = ("final_average", "learned", "bwt", "forgetting", "general_change", "general_final", "train_seconds",
            *(f"{name}_{key}" for name in ("phase_one", "phase_two") for key in ("gain", "loss", "general_loss")),
            *(key for key in per_seed[0] if key.startswith("general_change_")))
    result = {}
    for key in keys:
        values = [s[key] for s in per_seed if key in s]
        if values:
            result[key] = statistics.mean(values)
            result[f"{key}_std"] = statistics.pstdev(values)
    result["time_vs_naive"] = result["train_seconds"] / naive_seconds if naive_seconds else None
    result["matrix_mean"] = [[statistics.mean(s["matrix"][i][j] for s in per_seed)
                              for j in range(len(per_seed[0]["matrix"][0]))] for i in range(len(per_seed[0]["matrix"]))]
    return result


def rl_against_sft(results: dict) -> list[str]:
    """RL's two phases (the SFT warm-ups, then GRPO) and, with `rl_sft`, SFT from the same warm-up models: each
    phase's new-task gain, its loss on earlier tasks and general knowledge, and that loss per point gained,
    the forgetting at equal new-task gain; with `rl_sft`, also SFT's loss scaled to GRPO's gain (on the line
    from the warm-up to where SFT ended)."""
    rl, sft = results.get("rl"), results.get("rl_sft")
    if not (rl and "phase_two_gain" in rl):
        return []
    phases = [("SFT warm-ups (rl)", rl, "phase_one"), ("GRPO after them (rl)", rl, "phase_two")]
    phases += [("SFT after the warm-ups (rl_sft)", sft, "phase_two")] if sft and "phase_two_gain" in sft else []
    lines = ["", "RL's phases (points, mean over tasks; the loss on earlier tasks from the second task on):", "",
             "| phase | new-task gain | earlier-task loss | general loss | earlier-task loss per point gained |",
             "|---|---|---|---|---|"]
    for name, r, key in phases:
        gain, loss = r[f"{key}_gain"], r[f"{key}_loss"]
        per_point = f"{loss / gain:.2f}" if gain > 0 else "n/a"
        lines.append(f"| {name} | {gain:.1f} | {loss:.1f} | {r[f'{key}_general_loss']:.1f} | {per_point} |")
    if len(phases) == 3 and sft["phase_two_gain"] > 0:
        scale = max(rl["phase_two_gain"], 0.0) / sft["phase_two_gain"]
        lines += ["", (f"At GRPO's gain, SFT's line from the warm-up loses {scale * sft['phase_two_loss']:.1f} points of "
                  f"the earlier tasks and {scale * sft['phase_two_general_loss']:.1f} of general knowledge (GRPO: "
                  f"{rl['phase_two_loss']:.1f} and {rl['phase_two_general_loss']:.1f}).")]
    return lines


def time_vs_naive_cell(result: dict) -> str:
    """Training time relative to naive fine-tuning ('n/a' when naive was not among the methods run)."""
    return "n/a" if result["time_vs_naive"] is None else f"{result['time_vs_naive']:.2f}x"


def general_change_cell(result: dict) -> str:
    """The general-knowledge change, mean ± std over seeds; with several general tasks, each task's mean after it."""
    text = f"{result['general_change']:.1f} ± {result['general_change_std']:.1f}"
    each = [f"{key.removeprefix('general_change_')} {value:.1f}" for key, value in result.items()
            if key.startswith("general_change_") and not key.endswith("_std")]
    return f"{text} ({', '.join(each)})" if each else text


def merge_alphas_cell(result: dict) -> str:
    """The merge guard's alpha per stage, per seed ('' for a method without it)."""
    chosen = [run["merge_alphas"] for run in result.get("per_seed", []) if "merge_alphas" in run]
    return "; ".join("/".join(f"{a:g}" for a in alphas) for alphas in chosen)


def table(results: dict, setting_name: str) -> list[dict]:
    """Per method but naive: final average accuracy and forgetting against naive sequential fine-tuning."""
    naive = results.get("naive", {})
    rows = []
    for method, r in results.items():
        if method == "naive":
            continue
        note = "upper bound: all tasks at once, not a sequence" if method.startswith("multitask") else ""
        rows.append(row(f"{setting_name}: average accuracy after the last task, {method}", r["final_average"],
                        naive.get("final_average"), "naive fine-tuning", "%", note=note, difference=True))
        if "forgetting" in r:
            rows.append(row(f"{setting_name}: forgetting, {method}", r["forgetting"], naive.get("forgetting"),
                            "naive fine-tuning", "points", lower_is_better=True, difference=True,
                            note="mean over earlier tasks of best minus final accuracy"))
    return rows
