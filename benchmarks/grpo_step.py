"""GRPO step time split into generation, reward and update, and generated tokens/s of the `hf` rollout
backend (batched, with and without the KV cache), on the toy model after a short SFT on sorting.

    python benchmarks/grpo_step.py [--steps 20] [--out benchmarks/results]

The split is measured inside TRL's GRPOTrainer with our stage's settings: the model's `generate` and each
reward function are wrapped with timers; update = step time - generation - reward. The rollout
measurement samples 64 prompts x 8 completions x up to 32 new tokens through cpt.rollouts.hf.HFRollouts.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from common import machine, run_recipe_dict, write_result

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TASK = "sorting"


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
    return run_recipe_dict(recipe, workdir / "r.json")[0] / "stages" / "sft" / "model"


def grpo_split(model_dir: Path, workdir: Path, steps: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from cpt.data.rows import PROMPT_SHAPES, load_rows
    from cpt.recipe.base import DataSource
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


def rollout_tokens_per_second(model_dir: Path) -> dict:
    from cpt.rollouts.hf import HFRollouts
    from cpt.toy import ensure_toy

    rows = [json.loads(line) for line in (ensure_toy() / "tasks" / TASK / "test.jsonl").open()][:64]
    prompts = [r["prompt"] for r in rows]
    rollouts = HFRollouts(model_dir, batch_size=256)
    results = {}
    for use_cache in (True, False):
        rollouts.use_cache = use_cache
        started = time.perf_counter()
        groups = rollouts.sample(prompts, k=8, max_new_tokens=32, temperature=1.0)
        seconds = time.perf_counter() - started
        tokens = sum(len(rollouts.tokenizer(text)["input_ids"]) + 1 for group in groups for text in group)
        results["with_cache" if use_cache else "without_cache"] = {"tokens": tokens, "tokens_per_s": tokens / seconds}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = sft_checkpoint(Path(tmp))
        result = {"benchmark": "grpo_step", "task": TASK, "machine": machine(),
                  "grpo": grpo_split(model_dir, Path(tmp), args.steps),
                  "hf_rollouts": rollout_tokens_per_second(model_dir)}
    print_and_write(result, args.out)


def print_and_write(result: dict, out_dir: Path) -> None:
    grpo = result["grpo"]
    print(f"\nGRPO on the toy model ({result['machine']}): batch 16 = 4 prompts x 4 completions, <= 12 new tokens")
    print(f"{'part':<12} {'s/step':>8} {'share':>7}")
    for part, seconds in grpo["split_seconds_per_step"].items():
        print(f"{part:<12} {seconds:>8.3f} {100 * seconds / grpo['seconds_per_step']:>6.1f}%")
    print(f"{'total':<12} {grpo['seconds_per_step']:>8.3f}")
    rollouts = result["hf_rollouts"]
    print("\nhf rollouts, 64 prompts x 8 samples x <= 32 tokens:")
    for name, row in rollouts.items():
        print(f"  {name:<14} {row['tokens_per_s']:>8.0f} generated tokens/s")
    ratio = rollouts["with_cache"]["tokens_per_s"] / rollouts["without_cache"]["tokens_per_s"]
    print(f"  KV cache speed-up {ratio:.2f}x")
    write_result(result, out_dir, "grpo_step.json")


if __name__ == "__main__":
    main()
