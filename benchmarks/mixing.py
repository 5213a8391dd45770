"""Learned vs static data mixing for continual pretraining on the embedded toy domains.

    python benchmarks/mixing.py [--setting two|four] [--mode quick|full] [--steps 200] [--pretrain-steps 400]
                                [--seeds 0 1 2] [--methods uniform odm ...] [--result NAME.json]
                                [--out benchmarks/results]

--mode quick (the default): 200 pretraining steps, 100 mixing steps, seed 0; full: 400, 200, seeds 0 1 2.

A toy Llama is first pretrained on the "general" domain (the source, once, seed 0). From it, one `cpt`
stage per method and seed continues on a mixture, all at the same token budget (steps x batch x
max_length), through the real runner. `--setting two` (writes mixing.json): {general, code}, "code" the
new target domain. `--setting four` (mixing_four.json): {general, code, recipes, legal}, a stage for code
whose corpus also holds two other new domains; with four domains uniform leaves the source a quarter,
so a mix learned while training has more to win or lose than on two.

    two:   uniform 1:1 | target_only 0:1 | static_30_70 0.3:0.7 (hand-picked: 30% of the source replayed)
    four:  uniform | static 0.3/0.4/0.15/0.15 (general/code/recipes/legal, hand-picked: 30% of the source
           replayed, the target the largest share)
    both:  doremi   learned: online DoReMi, reference = the stage's start (the pretrained model)
           odm      learned: Online Data Mixing (EXP3 bandit)
    extra (`--methods`, not run by default): odm_every_step (one bandit pull per training step, as the
           paper pulls one per batch); doremi_uniform_ref (reference: the base trained REFERENCE_STEPS on
           the uniform mix, as the paper's reference is trained on uniform; its steps are not counted)

Every method learns or holds its weights every 10 steps (EVERY) from 16 held-out sequences per domain
(the same rows for every method). Reported, mean +- std over seeds: each domain's loss at the end on the
toy's validation split (never trained on), the steps each method needs before its worst-domain loss on
the held-out sequences (every domain scored every 10 steps, for every method: ODM itself scores only
the domain it draws) reaches uniform's final worst-domain loss with the same seed, the final weights
and how far the weights went from uniform (total variation, the largest over the run). Prints a
markdown table and writes the JSON, whose `table` compares each learned method with uniform.

On a machine shared with other jobs run it with OMP_NUM_THREADS=1: on these 2 cores, with another
process busy on one of them, two torch threads took 5.8 s per toy step against 0.16 s for one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common import add_common_args, machine, parse_with_mode, run_recipe_dict, write_result
from mixing_summary import UNIFORM, compact, markdown, summarise, table

from cpt.core.layout import RunLayout, StageLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SOURCE = "general"
BATCH, LENGTH, EVERY, HELD_OUT = 16, 64, 10, 16
REFERENCE_STEPS = 50  # doremi_uniform_ref: a quarter of the full mode's stage
LEARNED = ("doremi", "odm", "odm_every_step", "doremi_uniform_ref")


def _mix(domains: tuple[str, ...], learner: str, weights=None, **mixing) -> dict:
    return {"learner": learner, "weights": dict(zip(domains, weights or [1.0] * len(domains))), **mixing}


def _learned(domains: tuple[str, ...]) -> dict[str, dict]:
    return {"doremi": _mix(domains, "doremi"), "odm": _mix(domains, "odm"),
            "odm_every_step": _mix(domains, "odm", update_every=1),
            "doremi_uniform_ref": _mix(domains, "doremi", reference_steps=REFERENCE_STEPS)}


TWO, FOUR = (SOURCE, "code"), (SOURCE, "code", "recipes", "legal")
SETTINGS = {
    "two": {
        "domains": TWO, "result": "mixing.json", "label": "", "reference": "uniform (static 1:1)",
        "methods": {UNIFORM: _mix(TWO, "static"), "target_only": _mix(TWO, "static", [0.0, 1.0]),
                    "static_30_70": _mix(TWO, "static", [0.3, 0.7]), **_learned(TWO)},
        "default": (UNIFORM, "target_only", "static_30_70", "doremi", "odm"),
    },
    "four": {
        "domains": FOUR, "result": "mixing_four.json", "label": "four domains: ",
        "reference": "uniform (static 1:1:1:1)",
        "methods": {UNIFORM: _mix(FOUR, "static"), "static": _mix(FOUR, "static", [0.3, 0.4, 0.15, 0.15]),
                    **_learned(FOUR)},
        "default": (UNIFORM, "static", "doremi", "odm"),
    },
}
MODE_DEFAULTS = {"quick": {"steps": 100, "pretrain_steps": 200, "seeds": [0]},
                 "full": {"steps": 200, "pretrain_steps": 400, "seeds": [0, 1, 2]}}


def _train(steps: int, lr: float) -> dict:
    return {"max_steps": steps, "per_device_train_batch_size": BATCH, "max_length": LENGTH, "learning_rate": lr,
            "lr_scheduler_type": "cosine", "warmup_steps": max(1, steps // 20), "weight_decay": 0.0,
            "save_steps": 10_000, "logging_steps": 50, "disable_tqdm": True}


def _run(workdir: Path, name: str, model: str, stage: dict, seed: int) -> StageLayout:
    recipe = {"run": {"name": name, "output_dir": str(workdir), "seed": seed}, "model": {"name_or_path": model},
              "stages": [stage]}
    return RunLayout(run_recipe_dict(recipe, workdir / f"{name}.json")[0]).stage(stage["name"])


def _stage(method: dict, steps: int, reference: Path | None = None) -> dict:
    mixing = {"learner": method["learner"], "update_every": method.get("update_every", EVERY),
              "held_out_sequences": HELD_OUT}
    if reference is not None:
        mixing["reference"] = str(reference)
    return {"name": "mix", "kind": "cpt", "mixing": mixing, "train": _train(steps, 1e-3),
            "domains": [{"name": d, "data": {"toy": d}, "weight": w} for d, w in method["weights"].items()]}


def pretrain_base(workdir: Path, steps: int) -> Path:
    stage = {"name": "source", "kind": "cpt", "domains": [{"name": SOURCE, "data": {"toy": SOURCE}}],
             "train": _train(steps, 2e-3)}
    return _run(workdir, "base", "toy", stage, seed=0).model


def uniform_reference(workdir: Path, base: Path, domains: tuple[str, ...], steps: int) -> Path:
    """DoReMi's reference as in the paper: the model trained on the uniform mix (here briefly, from the base)."""
    return _run(workdir, "reference", str(base), _stage(_mix(domains, "static"), steps), seed=0).model


@contextmanager
def every_domain_scored():
    """Record every domain's held-out loss every EVERY steps for every method, outside the learner.

    The learners' own records do not serve: ODM scores only the domain its bandit draws (as the paper
    observes one arm per round), and odm_every_step updates every step. So the benchmark wraps the
    callback's step hook (in this process only) and, at each EVERY-th step, scores the domains the
    learner did not just score; the learner never sees these losses. Yields {trajectory path: curve}."""
    from data_mixing.callback import MixingCallback

    curves: dict[str, list] = {}
    original = MixingCallback.on_step_end

    def on_step_end(self, args, state, control, model=None, **kwargs):
        result = original(self, args, state, control, model=model, **kwargs)
        if state.global_step % EVERY == 0 and self.evaluate:  # the base's pretraining holds nothing out
            last = self.trajectory[-1]
            known = last.get("held_out_loss", {}) if last["step"] == state.global_step else {}
            missing = [n for n in self.learner.names if n not in known]
            scored = self.evaluate(model, domains=missing, **self._autocast()) if missing else {}
            curves.setdefault(str(self.trajectory_path), []).append((state.global_step, {**known, **scored}))
        return result

    MixingCallback.on_step_end = on_step_end
    try:
        yield curves
    finally:
        MixingCallback.on_step_end = original


def run_method(workdir: Path, base: Path, setting: dict, method: str, seed: int, steps: int,
               curves: dict, reference: Path | None = None) -> dict:
    spec = setting["methods"][method]
    started = time.perf_counter()
    stage = _run(workdir, f"{method}-s{seed}", str(base), _stage(spec, steps, reference), seed)
    seconds = time.perf_counter() - started
    trajectory = json.loads(stage.mixture_log.read_text())
    run = {"method": method, "seed": seed, "seconds": round(seconds, 1),
           "curve": curves[str(stage.mixture_log)],
           "weights": [(e["step"], e["weights"]) for e in trajectory], "final_weights": trajectory[-1]["weights"],
           "validation_loss": validation_losses(stage.model, setting["domains"])}
    if "average_weights" in trajectory[-1]:  # DoReMi's output for a larger run: the mean over its updates
        run["final_average_weights"] = trajectory[-1]["average_weights"]
    return run


def validation_losses(model_dir: Path, names: tuple[str, ...]) -> dict[str, float]:
    """Mean token loss of the model on each domain's toy validation split, packed like training."""
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cpt.data.toy_sources import toy_path
    from data_mixing.domains import TokenDomain, tokenize_texts
    from data_mixing.held_out import HeldOutEvaluator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    domains = []
    for name in names:
        rows = Dataset.from_list([json.loads(line) for line in toy_path(name, "validation").open()])
        tokens = tokenize_texts(rows, tokenizer, name).data.column("input_ids")
        ids = torch.tensor([t for doc in tokens.to_pylist() for t in doc])
        count = len(ids) // LENGTH
        domains.append(TokenDomain(name, tokens, np.arange(0), ids[: count * LENGTH].view(count, LENGTH)))
    return HeldOutEvaluator(domains, batch_size=64)(model)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(parser)
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="two")
    parser.add_argument("--steps", type=int, help="steps of the mixing stage, the same for every method "
                        "(quick: 100; full: 200)")
    parser.add_argument("--pretrain-steps", type=int, help="quick: 200; full: 400")
    parser.add_argument("--seeds", type=int, nargs="+", help="quick: 0; full: 0 1 2")
    parser.add_argument("--methods", nargs="+", help="the setting's methods to run (uniform always runs: it "
                        "sets the target); default: all but the extra ones")
    parser.add_argument("--result", help="JSON file name under --out (default: the setting's)")
    args = parse_with_mode(parser, MODE_DEFAULTS)
    setting = SETTINGS[args.setting]
    unknown = sorted(set(args.methods or []) - set(setting["methods"]))
    if unknown:
        parser.error(f"--methods: {', '.join(unknown)} not in setting {args.setting} "
                     f"({', '.join(setting['methods'])})")
    chosen = set(args.methods or setting["default"]) | {UNIFORM}
    args.methods = [m for m in setting["methods"] if m in chosen]
    args.result = args.result or setting["result"]
    return args


def main() -> None:
    args = parse_args()
    setting = SETTINGS[args.setting]
    from cpt.cli import _quiet_library_progress

    _quiet_library_progress()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mixing-bench-") as tmp, every_domain_scored() as curves:
        workdir = Path(tmp)
        base = pretrain_base(workdir, args.pretrain_steps)
        reference = None
        if any("reference_steps" in setting["methods"][m] for m in args.methods):
            reference = uniform_reference(workdir, base, setting["domains"], REFERENCE_STEPS)
        results = [run_method(workdir, base, setting, m, seed, args.steps, curves,
                              reference if "reference_steps" in setting["methods"][m] else None)
                   for seed in args.seeds for m in args.methods]
        base_loss = validation_losses(base, setting["domains"])
    rows, targets = summarise(results, args.methods, list(setting["domains"]), args.seeds)
    print(f"\nbase (after {args.pretrain_steps} steps on {SOURCE}): validation loss "
          + ", ".join(f"{d} {v:.3f}" for d, v in base_loss.items()))
    print("targets (uniform's final worst-domain held-out loss, per seed): "
          + ", ".join(f"seed {seed} {t:.3f}" for seed, t in targets.items()) + "\n")
    print(markdown(rows))
    learned = [m for m in args.methods if m in LEARNED]
    report = {
        "benchmark": "mixing", "setting": args.setting, "machine": machine(), "mode": args.mode,
        "table": table(results, learned, targets, args.steps, setting["label"], setting["reference"]),
        "settings": settings(args, setting), "platform": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "base_validation_loss": base_loss, "target_worst_loss_per_seed": targets, "methods_table": rows,
        "runs": results, "total_seconds": round(time.perf_counter() - started, 1),
    }
    write_result(report, args.out, args.result)
    write_result(compact(report), args.out, args.result.replace(".json", "_summary.json"))
    print(f"total {report['total_seconds']:.0f} s")


def settings(args: argparse.Namespace, setting: dict) -> dict:
    return {"setting": args.setting, "domains": list(setting["domains"]), "steps": args.steps,
            "pretrain_steps": args.pretrain_steps, "seeds": args.seeds, "batch": BATCH, "max_length": LENGTH,
            "tokens_per_run": args.steps * BATCH * LENGTH, "update_every": EVERY, "held_out_sequences": HELD_OUT,
            "doremi_uniform_reference_steps": REFERENCE_STEPS,
            "methods": {m: setting["methods"][m] for m in args.methods},
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


if __name__ == "__main__":
    main()
