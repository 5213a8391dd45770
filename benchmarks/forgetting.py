"""Forgetting benchmark: a sequence of new tasks trained in turn with each anti-forgetting method.

    python benchmarks/forgetting.py [--mode quick|full] [--setting toy|smollm2] [--seeds 0 1 2] [--steps 150]
                                    [--order a|b] [--methods naive olora ...] [--workdir DIR] [--out benchmarks/results]

--mode quick (the default): seed 0 and naive, replay, olora, multitask (the toy: ~7 min on 2 CPU cores);
full: every method (not the variants), seeds 0 1 2 (the toy: ~8-12 min per seed). --setting defaults to toy.

Methods: naive full fine-tuning, sequential LoRA, O-LoRA, OSF (and OSF with adaptive ranks), replay (20% of
each stage's rows from the earlier stages' data), a KL anchor, and multi-task training on all tasks at
once (one stage, as many steps as the sequence; the usual upper bound). Variants (--methods): OSF over the
sequence (a growing preserved share, or clear of earlier updates), the merge guard (budget 2 points, alone
and with replay), self-synthesized rehearsal (the starting model answers earlier stages' prompts, 25%),
O-LoRA over every linear layer with replay (`olora_all_*`), twice or half the learning rate on every stage (the
multi-task bound's too: `*_lr2`, `*_lr05`; `*_lr025`: a quarter), larger replay shares (`replay_30`, `replay_50`, `replay_70`;
`replay_balanced`: every task seen so far an equal share of each stage;
`replay_50_added`: the replayed rows on top of the stage's own, so a stage with replay runs twice the steps;
`replay_50_added_recent`: the same, each earlier task's part of the replayed rows weighted by its place, 1, 2, 3;
`ssr_replay_added`: the same steps, the on-top half split between replay and self-synthesized rehearsal;
`freezeN_replay_added` (N = 2, 8, 16): replay on top with the embeddings and the bottom N decoder layers frozen
(`freeze2_mlp_replay_added`: every layer's MLP too, only attention trains; `freeze2_general_ssr_replay_added`: a fifth
of every stage the starting model continuing general text starts, benchmarks/data/general_text_starts.txt);
`kl_general_replay_added` / `kl_general3_...` / `kl_general10_...`: replay on top under a KL anchor of weight 1 / 3 / 10 on those
starts continued by the stage's start (`guard: {method: kl_anchor, text: ...}`); `kl_facts10_replay_added`: the
same, weight 10, on one-shot questions of facts outside geography (benchmarks/data/general_fact_questions.txt);
`freeze2_d10_replay_added` / `freeze2_d01_...`: the bottom-2 freeze with only 10% / 1% of each weight above trained
(`density`); `gpm_general_replay_added`: replay on top under the GPM guard on the general text starts
(`guard: {method: gpm, text: ...}`), `gpm_heldout_replay_added` on the general tasks' held-out rows
(benchmarks/data/general_held_out.txt); and `multitask_long`, multi-task at that sequence's total steps), and RL:
each task learned by GRPO (exact-match reward, KL 0.04 to the stage's start, an RFT filter) after a short SFT
warm-up, since the base model scores 0-14% on these tasks and GRPO gets little reward from that; `rl_sft` (list
it after `rl`) runs SFT from each of `rl`'s own warm-up models, so the two compare from one start at equal
new-task gain (rl_against_sft).

--order: `a` trains the setting's tasks in their listed order (the order settings are chosen on), `b` in
the reverse order (the order they are reported on: "Hyperparameters in Continual Learning: a Reality
Check"). Forgetting is the pipeline's own, counted above each task's chance level (docs/metrics.md). Each method is a recipe run
through the real runner from the same base: on `toy`, the embedded model after the quickstart's
pretraining (which teaches the `capitals` facts: the general knowledge here); on `smollm2`,
SmolLM2-135M-Instruct (general knowledge: world capitals and world regions; before 2026-12-05, capitals alone).

Reported per method (mean and spread over seeds): the accuracy matrix, average accuracy after the last
task, what it learned (each task's accuracy right after its own stage), BWT, forgetting (each task's best minus
final), the change on the general-knowledge tasks from the base (their mean, and each task's), and training time
relative to naive. JSON goes to benchmarks/results/forgetting_<setting>.json (its
`table`: each method's final average accuracy and forgetting against naive) and a markdown table to
docs/forgetting_<setting>.md (full mode; a quick run's goes beside its JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from common import add_common_args, machine, parse_with_mode, run_recipe_dict, write_result
from forgetting_methods import METHODS, VARIANTS, learning_stage, method_stage, rate_decay, scaled_rate, stage_steps
from forgetting_summary import (
    aggregate,
    base_scores,
    general_change_cell,
    merge_alphas_cell,
    rl_against_sft,
    summarise,
    summarise_from_warmups,
    table,
    time_vs_naive_cell,
)

from cpt.core.layout import RunLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
LOGGING = {"logging_steps": 25, "disable_tqdm": True}
# quick: the baseline, replay (the guard that helped most on the toy), O-LoRA (the cheapest adapter guard) and the
# multi-task upper bound. Their training times relative to naive (docs/forgetting_toy.md) sum to 3.5 of all eight
# methods' 8.8: with the base's pretraining, ~7 min on 2 CPU cores at the toy's 150 steps.
QUICK_METHODS = ("naive", "replay", "olora", "multitask")
MODE_DEFAULTS = {"quick": {"seeds": [0], "methods": list(QUICK_METHODS)},
                 "full": {"seeds": [0, 1, 2], "methods": list(METHODS)}}
SETTINGS = {
    "toy": {
        "tasks": ["date_format", "sorting", "counting", "reversal"],
        "general": ["capitals"],
        "train": {"per_device_train_batch_size": 32, "max_length": 64, "learning_rate": 1.0e-3,
                  "lr_scheduler_type": "cosine", "warmup_steps": 10, "weight_decay": 0.0},
        "adapter_lr": 3.0e-3,  # LoRA-type methods train fewer weights and need a larger step
        # From the pretrained toy, 75 SFT steps at 1e-3 and 100 at 3e-3 (the GRPO test's start, from the toy without
        # pretraining: tests/cpt/stages/test_grpo.py) left no correct date_format rollout (the RFT filter dropped
        # every prompt), and 200 at 3e-3 leave 0% greedy: RL is measured on SmolLM2 (docs/forgetting.md).
        # 32 prompts x 8 rollouts per step, since 8 prompts per step at this rate collapse.
        "rl": {"warmup_steps": 200, "warmup_lr": 3.0e-3, "sft_steps": 50, "prompts": 2000,
               "grpo": {"max_steps": 60, "per_device_train_batch_size": 256, "num_generations": 8,
                        "max_completion_length": 12, "learning_rate": 3.0e-4, "warmup_steps": 5, "beta": 0.04}},
        "eval_examples": 100,
        "steps": 150,
    },
    "smollm2": {
        "tasks": ["date_format", "sorting", "counting", "addition"],  # letter reversal is not learned here (stack notes)
        "general": ["world_capitals", "world_regions"],  # world_regions by its default metric, acc
        "train": {"per_device_train_batch_size": 8, "max_length": 64, "learning_rate": 1.0e-4,
                  "lr_scheduler_type": "cosine", "warmup_steps": 5, "weight_decay": 0.0},
        "adapter_lr": 1.0e-3,  # O-LoRA's paper rate
        # Half the task's SFT steps as warm-up (naive SFT's 50 take date_format and sorting to 77-100%), then 8 prompts
        # x 4 rollouts per step: a CPU samples SmolLM2 slowly, so the RFT filter reads 200 prompts, not 2000.
        "rl": {"warmup_steps": 25, "warmup_lr": 1.0e-4, "sft_steps": 25, "prompts": 200,
               "grpo": {"max_steps": 25, "per_device_train_batch_size": 32, "num_generations": 4,
                        "max_completion_length": 16, "learning_rate": 1.0e-5, "warmup_steps": 2, "beta": 0.04}},
        "eval_examples": 50,
        "steps": 50,
    },
}


def ordered_tasks(setting: dict, order: str) -> list[str]:
    return list(setting["tasks"]) if order == "a" else list(reversed(setting["tasks"]))


def rl_stages(index: int, task: str, setting: dict) -> list[dict]:
    """An SFT warm-up on the task (evaluated, so the matrix shows where it left each task), then GRPO with an
    RFT filter (prompts whose rollouts all fail or all solve give no advantage). The second stage keeps the
    task's `t{index}_{task}` name, the row the accuracy matrix reads."""
    rl = setting["rl"]
    warmup = rl["warmup_steps"]
    sft = {"name": f"w{index}_{task}", "kind": "sft", "data": {"toy": task},
           "train": {**setting["train"], "max_steps": warmup, "save_steps": warmup, "learning_rate": rl["warmup_lr"]}}
    grpo_train = {**rl["grpo"], "save_steps": rl["grpo"]["max_steps"]}
    grpo = {"name": f"t{index}_{task}", "kind": "grpo", "data": {"toy": task, "max_examples": rl["prompts"]},
            "train": grpo_train, "filter": {"rollouts": 4, "drop_all_succeeded": True}}
    return [sft, grpo]


def rl_sft_recipes(rl_run: Path, seed: int, setting: dict, workdir: Path, order: str = "a") -> list[dict]:
    """`rl_sft`: for each task, one run of SFT (the RL setting's `sft_steps`) from `rl`'s own warm-up model of
    that task, so each SFT stage starts exactly where the matching GRPO stage started. (A chained run of
    warm-ups and SFT would share only the first warm-up with `rl`: its later warm-ups start after SFT.)"""
    tasks = ordered_tasks(setting, order)
    steps = setting["rl"]["sft_steps"]
    recipes = []
    for index, task in enumerate(tasks):
        stage = {"name": f"t{index}_{task}", "kind": "sft", "data": {"toy": task},
                 "train": {**setting["train"], "max_steps": steps, "save_steps": steps, **LOGGING}}
        warmup_model = RunLayout(rl_run).stage(f"w{index}_{task}").model
        recipes.append({"run": {"name": f"{run_name('rl_sft', seed, order)}-t{index}", "output_dir": str(workdir),
                                "seed": seed},
                        "model": {"name_or_path": str(warmup_model)}, "stages": [stage],
                        "eval": eval_spec(setting, tasks, evaluate_base=False)})
    return recipes


def run_name(method: str, seed: int, order: str) -> str:
    return f"{method}-s{seed}" + ("" if order == "a" else f"-{order}")


def eval_spec(setting: dict, tasks: list, evaluate_base: bool) -> dict:
    """Every task (a name, or {name, trained_in}) and the general-knowledge tasks after each stage."""
    spec = {"tasks": [*tasks, *({"name": task, "general": True} for task in setting["general"])],
            "max_examples": setting["eval_examples"], "base": evaluate_base}
    if "world_capitals" in setting["general"]:
        spec["apply_chat_template"] = False  # 3-shot completions (README, general-knowledge tasks)
    return spec


def recipe_for(method: str, base: str, seed: int, steps: int, setting: dict, workdir: Path,
               evaluate_base: bool, order: str = "a") -> dict:
    """The recipe of one method's run (every method but `rl_sft`, which runs from `rl`'s warm-ups: rl_sft_recipes)."""
    if method == "rl_sft":
        raise ValueError("rl_sft starts from rl's warm-up models: use rl_sft_recipes")
    tasks = ordered_tasks(setting, order)
    stages = []
    run = run_name(method, seed, order)
    method, decay = rate_decay(method)
    method, setting = scaled_rate(method, setting)
    if method in ("multitask", "multitask_long"):
        total = sum(stage_steps(method, i, steps) for i in range(len(tasks)))
        train = {**setting["train"], "max_steps": total, "save_steps": total}
        stages.append({"name": "multitask", "kind": "sft", "data": {"path": str(multitask_file(tasks, workdir))},
                       "train": train})
    elif method == "rl":
        for index, task in enumerate(tasks):
            stages += rl_stages(index, task, setting)
    else:
        for index, task in enumerate(tasks):
            extra = method_stage(method, index, tasks, setting)
            own = stage_steps(method, index, steps)
            train = {**setting["train"], "max_steps": own, "save_steps": own, **extra.pop("train", {})}
            if decay != 1.0:
                train["learning_rate"] = float(f"{train['learning_rate'] * decay**index:.4g}")
            learning = learning_stage(method, index, task, train)  # learn-then-replay's first half
            if learning is not None:
                stages.append(learning)
            stages.append({"name": f"t{index}_{task}", "kind": "sft", "data": {"toy": task}, "train": train, **extra})
    for stage in stages:
        stage["train"].update(LOGGING)
    trained = (tasks if method.startswith("multitask")
               else [{"name": t, "trained_in": f"t{i}_{t}"} for i, t in enumerate(tasks)])
    return {"run": {"name": run, "output_dir": str(workdir), "seed": seed},
            "model": {"name_or_path": base}, "stages": stages, "eval": eval_spec(setting, trained, evaluate_base)}


def multitask_file(tasks: list[str], data_dir: Path) -> Path:
    """All tasks' training rows in one prompt/completion file, for the multi-task upper bound."""
    from cpt.toy import ensure_toy
    from cpt.toy.tasks import task_splits

    path = data_dir / "multitask.jsonl"
    if not path.exists():
        ensure_toy()
        rows = [row for task in tasks for row in task_splits(task, seed=0)[0]]
        path.write_text("".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n" for r in rows))
    return path


def toy_base(seed: int, out: Path) -> str:
    """The toy model after the quickstart's pretraining stage (its recipe, this seed)."""
    import yaml

    quickstart = yaml.safe_load((REPO / "recipes" / "quickstart.yaml").read_text())
    pretrain = quickstart["stages"][0]
    pretrain["train"]["disable_tqdm"] = True
    recipe = {"run": {"name": f"base-s{seed}", "output_dir": str(out), "seed": seed},
              "model": {"name_or_path": "toy"}, "stages": [pretrain]}
    run_dir, _ = run_recipe_dict(recipe, out / f"base-s{seed}.json")
    return str(RunLayout(run_dir).stage(pretrain["name"]).model)


def drop_checkpoints(run_dir: Path) -> None:
    """A finished run's resume checkpoints: SmolLM2's, with Adam's state, are 1.6 GB per stage (~50 GB
    for all methods). The stage models stay, so a rerun with the same --workdir still skips them."""
    for folder in RunLayout(run_dir).stages.glob("*/checkpoints"):
        shutil.rmtree(folder)


def _methods_flag(methods: list[str]) -> str:
    return "" if list(methods) == list(METHODS) else " --methods " + " ".join(methods)


def markdown(setting_name: str, setting: dict, results: dict, args) -> str:
    tasks = ordered_tasks(setting, args.order)
    lines = [f"# Forgetting benchmark: {setting_name}, order {args.order}", "",
             (f"`python benchmarks/forgetting.py --mode {args.mode} --setting {setting_name} --seeds {' '.join(map(str, args.seeds))} "
              f"--steps {args.steps} --order {args.order}{_methods_flag(args.methods)}"
              f"{' --label ' + args.label if args.label else ''}` on {machine()}. Tasks in order: "
              f"{', '.join(tasks)}; general knowledge: "
              f"{', '.join(setting['general'])}. Accuracy in %, mean ± std over {len(args.seeds)} seed(s)."), "",
             "| method | avg acc after last | learned | BWT | forgetting | general change | time vs naive | merge alpha |",
             "|---|---|---|---|---|---|---|---|"]
    for method, r in results.items():
        def cell(key, r=r):
            return f"{r[key]:.1f} ± {r[key + '_std']:.1f}" if key in r else "n/a"
        lines.append(f"| {method} | {cell('final_average')} | {cell('learned')} | {cell('bwt')} | {cell('forgetting')} | "
                     f"{general_change_cell(r)} | {time_vs_naive_cell(r)} | {merge_alphas_cell(r)} |")
    lines += rl_against_sft(results)
    lines += ["", "Accuracy matrices (row: after stage; columns: " + ", ".join(tasks) + "):", ""]
    for method, r in results.items():
        rows = "; ".join("/".join(f"{v:.0f}" for v in row) for row in r["matrix_mean"])
        lines.append(f"- {method}: {rows}")
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_args(parser, out_default=REPO / "benchmarks" / "results")
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="toy")
    parser.add_argument("--seeds", type=int, nargs="+", help="quick: 0; full: 0 1 2")
    parser.add_argument("--steps", type=int, default=None, help="steps per task (default: the setting's)")
    parser.add_argument("--methods", nargs="+", choices=METHODS + VARIANTS, help="quick: " + " ".join(QUICK_METHODS)
                        + "; full: all but the variants")
    parser.add_argument("--order", choices=("a", "b"), default="a",
                        help="a: the setting's task order (choose settings here); b: reversed (report here)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the runs here (default: a temp folder)")
    parser.add_argument("--label", default="", help="appended to the output names (forgetting_SETTING[_order_b][_LABEL]"
                        ".json/.md), so a run over other methods or seeds keeps an earlier table")
    return parse_with_mode(parser, MODE_DEFAULTS)


def run_all(args: argparse.Namespace, setting: dict, workdir: Path) -> dict[str, list[dict]]:
    """Every method and seed from the same base per seed: each run's summary, per method."""
    if "rl_sft" in args.methods and "rl" not in args.methods[:args.methods.index("rl_sft")]:
        raise SystemExit("--methods: rl_sft starts from rl's warm-up models, so list rl before it")
    per_method: dict[str, list[dict]] = {m: [] for m in args.methods}
    tasks = ordered_tasks(setting, args.order)
    for seed in args.seeds:
        base = toy_base(seed, workdir) if args.setting == "toy" else "smollm2-135m-instruct"
        scores_of_base = None  # the base is evaluated once per seed, in the first method's run
        run_dirs = {}
        for method in args.methods:
            if method == "rl_sft":
                sft_runs = [run_and_tidy(recipe, workdir)
                            for recipe in rl_sft_recipes(run_dirs["rl"], seed, setting, workdir, args.order)]
                summary = summarise_from_warmups(run_dirs["rl"], sft_runs, tasks, setting["general"], scores_of_base)
            else:
                recipe = recipe_for(method, base, seed, args.steps, setting, workdir, scores_of_base is None, args.order)
                run_dirs[method] = run_and_tidy(recipe, workdir)
                scores_of_base = scores_of_base or base_scores(run_dirs[method])
                summary = summarise(run_dirs[method], tasks, setting["general"], scores_of_base)
            per_method[method].append(summary)
            print(method, seed, json.dumps({k: v for k, v in summary.items() if k != "matrix"}))
    return per_method


def run_and_tidy(recipe: dict, workdir: Path) -> Path:
    """Run a recipe (a finished run in `workdir` is reused) and drop its resume checkpoints."""
    run_dir, _ = run_recipe_dict(recipe, workdir / f"{recipe['run']['name']}.json")
    drop_checkpoints(run_dir)
    return run_dir


def main() -> None:
    args = parse_args()
    setting = SETTINGS[args.setting]
    args.steps = args.steps or setting["steps"]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="forgetting-"))
    workdir.mkdir(parents=True, exist_ok=True)
    per_method = run_all(args, setting, workdir)
    naive_seconds = statistics.mean(s["train_seconds"] for s in per_method["naive"]) if "naive" in per_method else 0
    results = {m: aggregate(runs, naive_seconds) for m, runs in per_method.items()}
    for m, runs in per_method.items():
        results[m]["per_seed"] = runs
    report = markdown(args.setting, setting, results, args)
    print(report)
    suffix = ("" if args.order == "a" else f"_order_{args.order}") + (f"_{args.label}" if args.label else "")
    write_result({"benchmark": f"forgetting_{args.setting}{suffix}", "machine": machine(), "mode": args.mode,
                  "table": table(results, args.setting), "setting": args.setting, "steps": args.steps,
                  "seeds": args.seeds, "order": args.order, "tasks": ordered_tasks(setting, args.order),
                  "results": results},
                 args.out, f"forgetting_{args.setting}{suffix}.json")
    # docs/ holds the full-mode tables the README quotes; a quick run's table stays beside its JSON
    (REPO / "docs" if args.mode == "full" else args.out).joinpath(f"forgetting_{args.setting}{suffix}.md").write_text(report)


if __name__ == "__main__":
    main()
