"""The forgetting benchmark's methods: what each adds to the stage that trains one task (benchmarks/forgetting.py
builds the recipes from them, so each method is a recipe line a team could write).

    method_stage("replay", 2, tasks, setting)   # {"replay": {"stages": ["t0_...", "t1_..."], "ratio": 0.2}}
    stage_steps("replay_50_added", 2, 50)       # 100: the replayed rows come on top of the stage's own
"""

from __future__ import annotations

import re
from pathlib import Path

# `freezeN_replay_added`: replay on top, and the embeddings and the bottom N of SmolLM2's 30 decoder layers frozen
# (`freeze2_mlp_replay_added`: and every layer's MLP, so only attention trains above the bottom 2)
# (`freeze2_d10_replay_added`: and only 10% of each weight above trains, the guard's `density: 0.1`; d01: 1%)
FREEZE_VARIANTS = (*(f"freeze{layers}_replay_added" for layers in (2, 8, 16)), "freeze2_mlp_replay_added",
                   "freeze2_d10_replay_added", "freeze2_d01_replay_added")
FREEZE_METHOD = re.compile(r"freeze(\d+)(_mlp)?(?:_d(\d\d))?_replay_added")
# The same steps as freeze2_replay_added (so multitask_long is its bound too), two thirds of them the stage's own rows:
# on SmolLM2 the accuracy each task reaches at its own stage ("learned") bounds what replay on top keeps at the end
# (docs/forgetting.md), so this trades some replay for more training on the new task.
OWN_HEAVY = "freeze2_replay33_added"
OWN_HEAVY_REPLAY_SHARE = 1 / 3
# Learn, then replay: each later task first trains alone for the stage's steps (stage `w<i>_<task>`, as naive training
# does, which learns each task best), then as many steps with half of them replayed (`t<i>_<task>`, the row the
# accuracy matrix reads), the freeze on both: 350 steps in all, so multitask_long is its bound too.
LEARN_THEN_REPLAY = "freeze2_learn_then_replay"
# General rehearsal under the freeze: in every stage a fifth of the rows are the stage's starting model continuing
# plain general-knowledge text starts (a prompt file of the benchmark, no geography), the rest of the on-top half
# replay, so general knowledge is rehearsed from the first stage on without any of the model's own training data.
GENERAL_REHEARSAL = "freeze2_general_ssr_replay_added"
GENERAL_TEXT_STARTS = Path(__file__).resolve().parent / "data" / "general_text_starts.txt"
GENERAL_REHEARSAL_SHARE = 0.2
# Replay on top under a KL anchor on general text (each of GENERAL_TEXT_STARTS continued by the stage's start): the
# model's output on text it already handles kept, the stage's rows learned unanchored. `10` in the name: weight 10.
# `kl_facts`: the same on one-shot questions (one line each) of facts outside the general tasks' geography, each continued by the
# start with its own short answer (8 tokens): what the general tasks lose is mostly the base's least confident
# answers (benchmarks/forgetting_fragile.py), so this anchors the model's factual answers rather than its prose.
GENERAL_KL = re.compile(r"kl_(general|facts)(\d*)_replay_added")
GENERAL_KL_VARIANTS = ("kl_general_replay_added", "kl_general3_replay_added", "kl_general10_replay_added",
                       "kl_facts10_replay_added")
GENERAL_FACT_QUESTIONS = Path(__file__).resolve().parent / "data" / "general_fact_questions.txt"
GENERAL_KL_TEXTS = {"general": {"text": str(GENERAL_TEXT_STARTS)},
                    "facts": {"text": str(GENERAL_FACT_QUESTIONS), "continue_tokens": 8}}
# Replay on top under the GPM guard (cpt/guards/gpm.py): each linear layer's output kept on the inputs of a protected
# text. `gpm_general`: the general text starts (no geography); `gpm_heldout`: the general tasks' held-out rows (those
# after the 200 that forgetting_general.py scores, as the merge guard holds rows out), one line each, the answer after.
GPM_METHOD = re.compile(r"gpm_(general|heldout)_replay_added")
GPM_VARIANTS = ("gpm_general_replay_added", "gpm_heldout_replay_added")
GENERAL_HELD_OUT = Path(__file__).resolve().parent / "data" / "general_held_out.txt"
GPM_TEXTS = {"general": GENERAL_TEXT_STARTS, "heldout": GENERAL_HELD_OUT}
GENERAL_SCORED_ROWS = 200  # forgetting_general.py's --rows: the rows never protected
FREEZE2 = {"method": "freeze", "layers": 2}  # the guard of the methods above
METHODS = ("naive", "lora", "olora", "osf", "osf_adaptive", "replay", "kl_anchor", "multitask")
# Variants tried on SmolLM2 after the defaults (run them with --methods; a --workdir reuses finished runs).
VARIANTS = ("replay_30", "replay_50", "replay_70", "olora_replay", "kl_anchor_01", "osf_grow", "osf_updates",
            "merge", "merge_replay", "ssr", "ssr_replay", "ssr_replay_lr2", "replay_lr2", "olora_all_replay",
            "olora_all_ssr_replay", "olora_all_l005_replay", "replay_balanced", "replay_50_added",
            "ssr_replay_added", "replay_50_added_recent", *FREEZE_VARIANTS, "multitask_long",
            *(f"{method}{suffix}" for suffix in ("_lr2", "_lr05", "_lr025")
              for method in ("freeze2_replay_added", "multitask_long")),
            "freeze8_replay_added_lr05", "freeze2_mlp_replay_added_lr2", GENERAL_REHEARSAL, *GENERAL_KL_VARIANTS,
            *GPM_VARIANTS,
            "freeze2_replay_added_decay07", "freeze2_replay_added_decay05", OWN_HEAVY, LEARN_THEN_REPLAY,
            "rl", "rl_sft")
# Every linear layer of a Llama-type block: sequential LoRA over these learned sorting on SmolLM2 (82%) where O-LoRA
# over the paper's q/v did not (6%), so the O-LoRA variants that ask for more capacity adapt all of them.
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
REPLAY_SHARES = {"replay": 0.2, "replay_30": 0.3, "replay_50": 0.5, "replay_70": 0.7}
# Experience replay as the continual-learning papers run it (ER: each step's batch is the new task's batch plus a
# memory batch of the same size): the replayed rows come on top of the stage's own, so a stage with replay runs
# 1 / (1 - share) times the steps, and the new task keeps every row naive training gives it. `multitask_long` is the
# upper bound at the same total steps.
ADDED_REPLAY_SHARE = REPLAY_SHARES["replay_50"]  # replay_50_added is replay_50 with the steps raised
# The methods whose stages after the first run 1 / (1 - ADDED_REPLAY_SHARE) times the steps (stage_steps).
ADDED_STEP_METHODS = ("replay_50_added", "ssr_replay_added", "replay_50_added_recent", *FREEZE_VARIANTS,
                      OWN_HEAVY, GENERAL_REHEARSAL, *GENERAL_KL_VARIANTS, *GPM_VARIANTS, "multitask_long")
MERGE_BUDGET = 2.0  # points: the target for general knowledge, so not a tuned setting


# Methods that are two others on the same stage: a guard and a data mix.
PAIRS = {"olora_replay": ("olora", "replay"), "merge_replay": ("merge", "replay"), "ssr_replay": ("ssr", "replay")}


def method_stage(method: str, index: int, tasks: list[str], setting: dict) -> dict:
    """What `method` adds to the stage that trains tasks[index]."""
    earlier = [f"t{i}_{t}" for i, t in enumerate(tasks[:index])]
    if method in PAIRS:
        first, second = PAIRS[method]
        return {**method_stage(first, index, tasks, setting), **method_stage(second, index, tasks, setting)}
    if method in (LEARN_THEN_REPLAY, OWN_HEAVY):
        return {"guard": dict(FREEZE2), **data_mix(method, index, earlier)}
    if method == GENERAL_REHEARSAL:
        # Plain text continued: the answers seldom end in EOS within 48 tokens, so the cut ones are kept.
        rehearsal = {"prompts": {"path": str(GENERAL_TEXT_STARTS)}, "rows": 64, "ratio": GENERAL_REHEARSAL_SHARE,
                     "max_new_tokens": 48, "keep_unfinished": True}
        replay = {"replay": {"stages": earlier, "ratio": ADDED_REPLAY_SHARE - GENERAL_REHEARSAL_SHARE}} if earlier else {}
        return {"guard": dict(FREEZE2), "rehearsal": rehearsal, **replay}
    general_kl = GENERAL_KL.fullmatch(method)
    if general_kl:
        guard = {"method": "kl_anchor", "weight": float(general_kl[2] or 1), **GENERAL_KL_TEXTS[general_kl[1]]}
        return {"guard": guard, **data_mix("replay_50_added", index, earlier)}
    gpm = GPM_METHOD.fullmatch(method)
    if gpm:
        return {"guard": {"method": "gpm", "text": str(GPM_TEXTS[gpm[1]])}, **data_mix("replay_50_added", index, earlier)}
    frozen = FREEZE_METHOD.fullmatch(method)
    if frozen:  # spurious forgetting (Zheng et al. 2025): the bottom layers kept, under replay on top
        guard = {"method": "freeze", "layers": int(frozen[1]), **({"modules": ["mlp"]} if frozen[2] else {}),
                 **({"density": int(frozen[3]) / 100} if frozen[3] else {})}
        return {"guard": guard, **data_mix("replay_50_added", index, earlier)}
    if method.startswith("olora_all"):  # O-LoRA on every linear layer, with replay (and SSR)
        # Over all 7 matrices per layer the paper's lambda1 0.5 makes the orthogonality term hundreds of times the task loss
        # (docs/forgetting.md); l005 tries 0.05
        weight = {"lambda1": 0.05} if method.startswith("olora_all_l005") else {}
        guard = {"guard": {"method": "olora", "target_modules": ALL_LINEAR, **weight},
                 "train": {"learning_rate": setting["adapter_lr"]}}
        rest = method.removeprefix("olora_all_").removeprefix("l005_")
        return {**guard, **method_stage(rest, index, tasks, setting)}
    guard = model_guard(method, earlier, setting)
    return guard if guard is not None else data_mix(method, index, earlier)


def model_guard(method: str, earlier: list[str], setting: dict) -> dict | None:
    """The adapter, guard or merge `method` puts on every stage; None for a method that is a data mix or naive."""
    adapter_lr = {"learning_rate": setting["adapter_lr"]}
    if method == "lora":
        return {"peft": {"r": 8, "alpha": 32}, "train": adapter_lr}
    if method == "olora":
        return {"guard": {"method": "olora"}, "train": adapter_lr}  # the paper's defaults
    if method == "osf":
        return {"guard": {"method": "osf", "preserved": 0.5}}
    if method == "osf_grow":  # PEFT's continual example: 0.3, 0.5, 0.7 (then 0.9) over the tasks
        return {"guard": {"method": "osf", "preserved": 0.3, "grow": 0.2}}
    if method == "osf_updates":  # OSF 0.5, and each stage clear of the earlier stages' update directions
        return {"guard": {"method": "osf", "preserved": 0.5, "preserve_updates": True}}
    if method == "osf_adaptive":
        return {"guard": {"method": "osf", "adaptive": {"stages": earlier}} if earlier else {"method": "osf"}}
    if method in ("kl_anchor", "kl_anchor_01"):
        return {"guard": {"method": "kl_anchor", "weight": 0.1 if method == "kl_anchor_01" else 1.0}}
    if method == "merge":
        return {"merge": {"budget": MERGE_BUDGET}}
    return None


def data_mix(method: str, index: int, earlier: list[str]) -> dict:
    """The replayed and rehearsed rows `method` adds to the stage that trains task `index` (none on the first)."""
    if not earlier:
        return {}
    if method in REPLAY_SHARES:
        return {"replay": {"stages": earlier, "ratio": REPLAY_SHARES[method]}}
    if method in ("replay_50_added", LEARN_THEN_REPLAY):
        return data_mix("replay_50", index, earlier)
    if method == OWN_HEAVY:
        return {"replay": {"stages": earlier, "ratio": OWN_HEAVY_REPLAY_SHARE}}
    if method == "replay_50_added_recent":  # the same share, each earlier task weighted by its place: 1, 2, 3
        # Replay on top lost most on the task learned last before the stage (a sixth of each batch in the fourth
        # stage) and least on the first, replayed in every stage since (docs/forgetting.md).
        replay = data_mix("replay_50", index, earlier)
        replay["replay"]["weights"] = {name: place + 1 for place, name in enumerate(earlier)}
        return replay
    if method == "ssr_replay_added":  # the on-top share half old rows, half answered by the stage's start (SSR)
        half = ADDED_REPLAY_SHARE / 2
        return {"replay": {"stages": earlier, "ratio": half},
                "rehearsal": {"prompts": {"stages": earlier}, "rows": 64, "ratio": half}}
    if method == "replay_balanced":  # every task seen so far gets an equal share of the stage's rows
        return {"replay": {"stages": earlier, "ratio": index / (index + 1)}}
    if method == "ssr":  # the old data is gone: the starting model answers the earlier stages' prompts itself
        return {"rehearsal": {"prompts": {"stages": earlier}, "rows": 64, "ratio": 0.25}}
    return {}


# `<method>_lr2`: twice the setting's learning rate; `_lr05`: half; `_lr025`: a quarter
RATE_SUFFIXES = {"_lr2": 2.0, "_lr05": 0.5, "_lr025": 0.25}


def scaled_rate(method: str, setting: dict) -> tuple[str, dict]:
    """`<method>_lr2` / `_lr05` / `_lr025`: the method at twice / half / a quarter of the setting's learning rate
    (every stage, the multi-task bound's too), as (method, setting); any other method as it is."""
    method, factor = _suffix_factor(method, RATE_SUFFIXES)
    if factor == 1.0:
        return method, setting
    return method, {**setting, "train": {**setting["train"], "learning_rate": factor * setting["train"]["learning_rate"]}}


# `<method>_decay07` / `_decay05`: the stage that trains task i at 0.7 ** i / 0.5 ** i times its rate.
# "Understanding the Role of Training Regimes in Continual Learning" (Mirzadeh et al., NeurIPS 2020; "stable SGD")
# finds that a rate decayed from task to task keeps the later tasks' updates small where they would move what the
# earlier tasks learned.
RATE_DECAYS = {"_decay07": 0.7, "_decay05": 0.5}


def rate_decay(method: str) -> tuple[str, float]:
    """`<method>_decay07` as (method, 0.7) (`_decay05`: 0.5): each stage's rate is the one before times the factor;
    any other method as (method, 1.0)."""
    return _suffix_factor(method, RATE_DECAYS)


def _suffix_factor(method: str, factors: dict[str, float]) -> tuple[str, float]:
    """(`method` without the suffix of `factors` it ends in, that suffix's factor); (method, 1.0) without one."""
    for suffix, factor in factors.items():
        if method.endswith(suffix):
            return method.removesuffix(suffix), factor
    return method, 1.0


def learning_stage(method: str, index: int, task: str, train: dict) -> dict | None:
    """The stage that trains task `index` alone before its replay stage (LEARN_THEN_REPLAY, from the second task on;
    its `w` prefix keeps it out of the accuracy matrix, as the RL warm-ups are); None for any other method."""
    if method != LEARN_THEN_REPLAY or index == 0:
        return None
    return {"name": f"w{index}_{task}", "kind": "sft", "data": {"toy": task}, "train": dict(train), "guard": dict(FREEZE2)}


def stage_steps(method: str, index: int, steps: int) -> int:
    """Steps of the stage that trains task `index`: `steps`, or more where replayed rows come on top of the stage's own
    (`replay_50_added`, `ssr_replay_added`; `multitask_long` sums the same steps into its one stage)."""
    if method in ADDED_STEP_METHODS and index > 0:
        return round(steps / (1 - ADDED_REPLAY_SHARE))
    return steps


def held_out_general_lines() -> list[str]:
    """GENERAL_HELD_OUT's lines: each world_capitals and world_regions row after the first GENERAL_SCORED_ROWS, its
    prompt with its answer (the first capital listed; the region's name), newlines as spaces (a line per passage)."""
    from eval.general_data import REGIONS, capital_rows, region_rows

    capitals = [f"{row['prompt']} {row['answers'][0]}" for row in capital_rows()[GENERAL_SCORED_ROWS:]]
    regions = [f"{row['prompt']} {REGIONS[row['label']]}" for row in region_rows()[GENERAL_SCORED_ROWS:]]
    return [line.replace("\n", " ") for line in capitals + regions]
