"""GRPO step time split into generation, reward and update, and generated tokens/s of the rollout
backends on the toy model after a short SFT on sorting: `hf` at 8, 64 and 256 completions per generate
call with the KV cache, and at 256 without it; `vllm` where vLLM and a CUDA GPU exist.

    python benchmarks/grpo_step.py [--mode quick|full] [--steps 20] [--out benchmarks/results]

Both modes time the same (the toy is small); --mode is recorded. The split is measured inside TRL's
GRPOTrainer with our stage's settings: the model's `generate` and each reward function are wrapped with
timers; update = step time - generation - reward. The rollout measurement samples 64 prompts x 8
completions x up to 32 new tokens through cpt.rollouts (HFRollouts, VLLMRollouts); tokens are the
completions re-tokenized, + 1 for the end of sequence. Batch 8 (one prompt's 8 samples per call) is the
unbatched reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path

from common import add_common_args, machine, row, run_recipe_dict, write_result
from hardware import on_gpu

from cpt.core.layout import RunLayout

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TASK = "sorting"
PROMPTS, SAMPLES, NEW_TOKENS = 64, 8, 32  # the rollout measurement: 512 completions of up to 32 tokens
BATCH_SIZES = (8, 64, 256)  # completions per generate call; the first is the reference
SWEEP = [(size, True) for size in BATCH_SIZES] + [(BATCH_SIZES[-1], False)]  # (batch size, KV cache)


class Timer:
    def __init__(self):
        self.seconds = 0.0

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        timed.__name__ = getattr(function, "__name__", "timed")
        return timed


def sft_checkpoint(workdir: Path) -> Path:
    recipe = {"run": {"name": "sft", "output_dir": str(workdir)}, "stages": [
        {"name": "sft", "kind": "sft", "data": {"toy": TASK},
         "train": {"max_steps": 150, "per_device_train_batch_size": 32, "learning_rate": 3e-3, "max_length": 64,
                   "disable_tqdm": True}}]}
    return RunLayout(run_recipe_dict(recipe, workdir / "r.json")[0]).stage("sft").model


def grpo_split(model_dir: Path, workdir: Path, steps: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from cpt.core.recipe_base import DataSource
    from cpt.data.rows import PROMPT_SHAPES, load_rows
    from cpt.rewards import load_rewards
    from cpt.stages.grpo_config import DEFAULT_BETA, RewardSpec

    generation, reward = Timer(), Timer()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.generate = generation.wrap(model.generate)
    rewards, weights = load_rewards([RewardSpec(name="exact_match")])
    args = GRPOConfig(output_dir=str(workdir / "grpo"), max_steps=steps, per_device_train_batch_size=16,
                      num_generations=4, max_completion_length=12, learning_rate=1e-4, beta=DEFAULT_BETA,
                      bf16=True, activation_checkpointing=False, use_cpu=not torch.cuda.is_available(),
                      report_to="none", save_strategy="no", logging_steps=steps, disable_tqdm=True,
                      reward_weights=weights)
    trainer = GRPOTrainer(model=model, reward_funcs=[reward.wrap(r) for r in rewards], args=args,
                          train_dataset=load_rows(DataSource(toy=TASK), PROMPT_SHAPES),
                          processing_class=AutoTokenizer.from_pretrained(model_dir))
    started = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - started
    per_step = {"generation": generation.seconds / steps, "reward": reward.seconds / steps}
    per_step["update"] = total / steps - per_step["generation"] - per_step["reward"]
    return {"steps": steps, "seconds_per_step": total / steps, "split_seconds_per_step": per_step}


def rollout_prompts() -> list[str]:
    from cpt.toy import ensure_toy

    rows = [json.loads(line) for line in (ensure_toy() / "tasks" / TASK / "test.jsonl").open()][:PROMPTS]
    return [r["prompt"] for r in rows]


def tokens_per_second(rollouts, prompts: list[str], tokenizer) -> dict:
    """Generated tokens/s of one `sample` call (after a tiny warm-up); tokens = the completions re-tokenized + EOS."""
    rollouts.sample(prompts[:1], k=1, max_new_tokens=4, temperature=1.0)
    started = time.perf_counter()
    groups = rollouts.sample(prompts, k=SAMPLES, max_new_tokens=NEW_TOKENS, temperature=1.0)
    seconds = time.perf_counter() - started
    tokens = sum(len(tokenizer(text)["input_ids"]) + 1 for group in groups for text in group)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def hf_rollout_sweep(model_dir: Path, prompts: list[str]) -> dict:
    """The `hf` backend at each (completions per generate call, KV cache) of SWEEP, one model."""
    from cpt.rollouts.hf import HFRollouts

    rollouts = HFRollouts(model_dir)
    results = {}
    for batch_size, use_cache in SWEEP:
        rollouts.batch_size, rollouts.use_cache = batch_size, use_cache
        results[sweep_name(batch_size, use_cache)] = tokens_per_second(rollouts, prompts, rollouts.tokenizer)
    return results


def sweep_name(batch_size: int, use_cache: bool) -> str:
    return f"batch {batch_size}, {'KV cache' if use_cache else 'no KV cache'}"


def vllm_rollouts(model_dir: Path, prompts: list[str]) -> dict:
    """The `vllm` backend measured like `hf`, where vLLM and a CUDA GPU exist; else why not."""
    missing = "not installed" if importlib.util.find_spec("vllm") is None else None if on_gpu() else "no CUDA GPU"
    if missing:
        return {"not_measured": f"vLLM: not measured ({missing})"}
    import torch
    from transformers import AutoTokenizer

    from cpt.rollouts.vllm_backend import VLLMRollouts

    torch.cuda.empty_cache()  # vLLM takes half the GPU's memory at start
    return tokens_per_second(VLLMRollouts(model_dir), prompts, AutoTokenizer.from_pretrained(model_dir))


def table(result: dict) -> list[dict]:
    """Batched rollouts against batch 8, the KV cache against none, vLLM against hf, the GRPO step's split."""
    hf, vllm, grpo = result["hf_rollouts"], result["vllm_rollouts"], result["grpo"]
    smallest, best = sweep_name(BATCH_SIZES[0], True), sweep_name(BATCH_SIZES[-1], True)
    scope = f"{PROMPTS} prompts x {SAMPLES} samples x <= {NEW_TOKENS} new tokens"
    rows = [row(f"hf rollout tokens/s, {sweep_name(size, True)}", hf[sweep_name(size, True)]["tokens_per_s"],
                hf[smallest]["tokens_per_s"], f"hf {smallest}", "tokens/s", note=scope) for size in BATCH_SIZES[1:]]
    rows.append(row(f"hf rollout tokens/s, KV cache on vs off (batch {BATCH_SIZES[-1]})", hf[best]["tokens_per_s"],
                    hf[sweep_name(BATCH_SIZES[-1], False)]["tokens_per_s"], "no KV cache", "tokens/s", note=scope))
    rows.append(row("vLLM rollout tokens/s", vllm.get("tokens_per_s"), hf[best]["tokens_per_s"], f"hf {best}",
                    "tokens/s", note=vllm.get("not_measured", scope)))
    split, total = grpo["split_seconds_per_step"], grpo["seconds_per_step"]
    rows.append(row("GRPO step: generation share", 100 * split["generation"] / total, unit="%",
                    note=f"{total:.3f}s per step; reward {100 * split['reward'] / total:.1f}%, "
                         f"update {100 * split['update'] / total:.1f}%"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_args(parser)
    parser.add_argument("--steps", type=int, default=20, help="GRPO steps timed (both modes)")
    args = parser.parse_args()
    prompts = rollout_prompts()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = sft_checkpoint(Path(tmp))
        result = {"benchmark": "grpo_step", "machine": machine(), "mode": args.mode, "task": TASK,
                  "grpo": grpo_split(model_dir, Path(tmp), args.steps),
                  "hf_rollouts": hf_rollout_sweep(model_dir, prompts),
                  "vllm_rollouts": vllm_rollouts(model_dir, prompts)}
    result["table"] = table(result)
    result["notes"] = [result["vllm_rollouts"]["not_measured"]] if "not_measured" in result["vllm_rollouts"] else []
    print_and_write(result, args.out)


def print_and_write(result: dict, out_dir: Path) -> None:
    grpo = result["grpo"]
    print(f"\nGRPO on the toy model ({result['machine']}): batch 16 = 4 prompts x 4 completions, <= 12 new tokens")
    print(f"{'part':<12} {'s/step':>8} {'share':>7}")
    for part, seconds in grpo["split_seconds_per_step"].items():
        print(f"{part:<12} {seconds:>8.3f} {100 * seconds / grpo['seconds_per_step']:>6.1f}%")
    print(f"{'total':<12} {grpo['seconds_per_step']:>8.3f}")
    print(f"\nrollouts, {PROMPTS} prompts x {SAMPLES} samples x <= {NEW_TOKENS} tokens (batch = completions per call):")
    measured = {f"hf {name}": r for name, r in result["hf_rollouts"].items()} | {"vllm": result["vllm_rollouts"]}
    for name, r in measured.items():
        measure = f"{r['tokens_per_s']:>8.0f} generated tokens/s" if "tokens_per_s" in r else r["not_measured"]
        print(f"  {name:<26} {measure}")
    write_result(result, out_dir, "grpo_step.json")


if __name__ == "__main__":
    main()
