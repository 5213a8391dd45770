"""Recipes for the support matrix's combinations (cpt/recipe/support_matrix.py): every combination a
launcher runs, 2 steps each, in ONE recipe, so a launcher's start-up (~20 s on 2 cores) is paid once.

    recipe = launcher_recipe(Launch(2, 3), tmp_path, "z3")     # every combination ZeRO-3 runs, as stages
    stage = combination_stage(combination, prompts_file)       # one combination as a stage section

Combinations are packed into stages to keep a stage's fixed cost (trainer, engine, save: seconds) per
combination low: per stage kind, one stage without any guard, one per `guard:` method, and the guard keys
(replay, rehearsal, merge) together on one guard-method stage, a fully fine-tuned one where there is (its
save path differs from an adapter's), else a stage of their own, since a stage takes one guard method but
any guard keys beside it. So every guard
runs on every kind under every launcher that the table allows. Stage names are KIND_GUARDS
(grpo+filter -> grpo_filter), kind by kind in the table's order: each kind's unguarded stage comes first,
so replay and rehearsal have its data to draw on.
"""

from __future__ import annotations

import json
from pathlib import Path

from cpt.guards.config import ADAPTER_GUARDS
from cpt.guards.support import STAGE_KEY_GUARDS, Launch
from cpt.recipe.support_matrix import FILTERED, KINDS, Combination, combinations

STEPS, BATCH = 2, 2
ROWS = 16  # rows each stage reads of its toy data: the stage's fixed costs (tokenising, mixing) stay small
TRAIN = {"max_steps": STEPS, "per_device_train_batch_size": BATCH, "learning_rate": 1e-3, "logging_steps": 1,
         "save_steps": 100, "disable_tqdm": True, "bf16": False}
OLORA_R = 16
DENSITY = 0.25  # the freeze guard's share on sft stages: each rank must pick the same entries, or more would move
FILTER_PROMPTS = ["always 1 =", "never 2 =", "mixed 3 =", "always 4 =", "mixed 5 =", "never 6 ="]
FILTER_KEPT = [2, 4]  # by_prompt: the mixed prompts' rollouts differ, the others' all pass or all fail
BY_PROMPT = "tests.cpt.rewards.custom_rewards:by_prompt"


def stage_name(group: list[Combination]) -> str:
    return "_".join([group[0].kind.replace("+", "_"), *(c.guard for c in group)])


def runnable(launch: Launch) -> list[Combination]:
    """The combinations `launch` runs (hf rollouts: vLLM is planned only)."""
    return [c for c in combinations((launch,)) if c.rollout == "hf" and c.refusal is None]


def packed(launch: Launch) -> list[list[Combination]]:
    """The runnable combinations of `launch`, grouped into stages (see the module docstring)."""
    groups = []
    for kind in KINDS:
        mine = [c for c in runnable(launch) if c.kind == kind]
        kind_groups = [[c] for c in mine if c.guard not in STAGE_KEY_GUARDS]
        keys = [c for c in mine if c.guard in STAGE_KEY_GUARDS]
        methods = [g for g in kind_groups if g[0].guard != "none"]  # full fine-tuning first: its save differs
        carrier = min(methods, key=lambda g: g[0].guard in ADAPTER_GUARDS, default=None)
        if carrier is not None:
            carrier += keys
        elif keys:
            kind_groups.append(keys)
        groups += kind_groups
    return groups


def write_filter_prompts(folder: Path) -> Path:
    path = folder / "filter_prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "answer": "x"}) + "\n" for p in FILTER_PROMPTS))
    return path


def launcher_recipe(launch: Launch, folder: Path, name: str) -> dict:
    """Every combination `launch` runs, as the stages of one recipe. Only under ZeRO-3 is a stage evaluated
    (the last; an evaluation there, on the main process alone, used to hang): the evaluation and the report
    it brings (a figure per stage) cost seconds each. The eval tasks stay, as the merge guard's held-out set."""
    prompts = write_filter_prompts(folder)
    stages = [group_stage(group, prompts) for group in packed(launch)]
    for stage in stages[:-1] if launch.zero == 3 else stages:
        stage["eval"] = False
    for stage in stages:
        if stage["name"] == "sft_none":  # one checkpoint, to see what the launcher writes into it
            stage["train"]["save_steps"] = STEPS
    deepspeed = {"deepspeed": f"zero{launch.zero}"} if launch.zero else {}
    return {"run": {"name": name, "output_dir": str(folder), "seed": 0}, "model": {"name_or_path": "toy"},
            "launch": {"num_processes": launch.processes, **deepspeed}, "stages": stages,
            # date_format is trained in sft_none: every later merge guards it on held-out rows
            "eval": {"tasks": ["date_format"], "max_examples": 4, "max_new_tokens": 12, "base": False}}


def combination_stage(combination: Combination, prompts_file: Path) -> dict:
    """One combination as a 2-step stage section."""
    return group_stage([combination], prompts_file)


def group_stage(group: list[Combination], prompts_file: Path) -> dict:
    """Combinations of one stage kind (at most one guard method) as one 2-step stage section."""
    stage = {"name": stage_name(group), **_kind_section(group[0].kind, prompts_file)}
    if group[0].rollout != "hf":
        stage["rollout"] = {"backend": group[0].rollout}
    for combination in group:
        stage.update(_guard_section(combination, prompts_file))
    return stage


def _kind_section(kind: str, prompts_file: Path) -> dict:
    short = {**TRAIN, "max_length": 32}
    if kind == "cpt":
        return {"kind": "cpt", "domains": [{"name": "general", "data": {"toy": "general", "max_examples": ROWS}}],
                "train": short}
    if kind in ("sft", "dpo"):
        return {"kind": kind, "data": {"toy": "date_format", "max_examples": ROWS}, "train": short}
    grpo = {**TRAIN, "num_generations": 2, "max_completion_length": 4}
    if kind == FILTERED:
        return {"kind": "grpo", "data": {"path": str(prompts_file)}, "rewards": [{"name": BY_PROMPT}],
                "filter": {"rollouts": 2, "drop_all_succeeded": True}, "train": grpo}
    return {"kind": "grpo", "data": {"toy": "date_format", "max_examples": 8}, "train": grpo}


def _guard_section(combination: Combination, prompts_file: Path) -> dict:
    guard = combination.guard
    earlier = stage_name([Combination("none", combination.kind, combination.launch)])
    if guard == "none":
        return {}
    if guard == "olora":
        return {"guard": {"method": "olora", "r": OLORA_R}}
    if guard == "freeze" and combination.kind == "sft" and combination.launch.zero != 3:  # and its density here
        return {"guard": {"method": "freeze", "layers": 1, "density": DENSITY, "calibration_batches": 1}}
    if guard == "freeze":
        return {"guard": {"method": "freeze", "layers": 2}}  # of the toy's 4
    if guard == "kl_anchor" and combination.kind == "sft":  # its `text` form here, the token form on cpt
        return {"guard": {"method": "kl_anchor", "text": str(_passages(prompts_file)), "continue_tokens": 4}}
    if guard == "gpm":
        return {"guard": {"method": "gpm", "text": str(_passages(prompts_file))}}
    if guard in ("osf", "kl_anchor"):
        return {"guard": {"method": guard}}
    if guard == "replay":
        return {"replay": {"stages": [earlier], "ratio": 0.5}}
    if guard == "rehearsal":
        return {"rehearsal": {"prompts": {"stages": [earlier]}, "rows": 4, "ratio": 0.25, "max_new_tokens": 8,
                              "keep_unfinished": True}}  # the untrained toy rarely stops
    if guard == "merge":
        return {"merge": {"budget": 5, "rows": 4, "steps": 1}}
    raise AssertionError(f"guard {guard} is in the support table but has no test stage here: add one")


def _passages(prompts_file: Path) -> Path:
    """A text file of passages beside the filter's prompts (the text guards': kl_anchor's `text`, gpm's)."""
    passages = prompts_file.with_name("general_text.txt")
    passages.write_text("".join(f"{prompt}\n" for prompt in FILTER_PROMPTS))
    return passages
