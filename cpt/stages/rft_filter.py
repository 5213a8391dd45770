"""RFT instance filtering ("Reinforcement Fine-Tuning Naturally Mitigates Forgetting in Continual
Post-Training"): before GRPO, sample K rollouts per prompt from the starting model and drop the prompts
whose rollouts all fail (and, if asked, those whose rollouts all succeed): both give every completion
the same reward, so zero advantage and no learning signal, only KL drift.

The decision, with counts and each dropped prompt's reason, is written to STAGE_DIR/rft_filter.json
and reused when the stage resumes.
"""

from __future__ import annotations

from cpt.errors import UserError
from cpt.rewards import combined_rewards
from cpt.rollouts import make_rollouts
from cpt.runner.atomic import atomic_write_json, read_json
from cpt.runner.distributed import is_main_process, wait_for_everyone

FILTER_FILE = "rft_filter.json"
ALL_FAILED, ALL_SUCCEEDED = "all rollouts failed", "all rollouts succeeded"


def filter_decisions(rewards: list[list[float]], success_reward: float, drop_all_succeeded: bool) -> list[str | None]:
    """Per prompt: None to keep it, else why it is dropped, from its K rollouts' rewards."""
    decisions = []
    for group in rewards:
        successes = sum(r >= success_reward for r in group)
        if successes == 0:
            decisions.append(ALL_FAILED)
        elif successes == len(group) and drop_all_succeeded:
            decisions.append(ALL_SUCCEEDED)
        else:
            decisions.append(None)
    return decisions


def filter_dataset(ctx, dataset, rewards, weights, max_new_tokens: int, temperature: float):
    """`dataset` without the prompts the filter drops (computed on the main process, once per stage)."""
    path = ctx.stage_dir / FILTER_FILE
    if is_main_process() and not path.is_file():
        atomic_write_json(path, _decide(ctx, dataset, rewards, weights, max_new_tokens, temperature))
    wait_for_everyone()
    record = read_json(path)
    if not record["kept_indices"]:
        raise UserError(
            f"stage {ctx.spec.name}: the RFT filter dropped every prompt ({record['dropped_all_failed']} all failed, "
            f"{record['dropped_all_succeeded']} all succeeded; see {path}): train the task first or turn the filter off"
        )
    return dataset.select(record["kept_indices"])


def _decide(ctx, dataset, rewards, weights, max_new_tokens: int, temperature: float) -> dict:
    spec = ctx.spec.filter
    prompts = dataset["prompt"]
    groups = make_rollouts(ctx.spec.rollout, ctx.input_model, ctx.trust_remote_code).sample(
        prompts, spec.rollouts, max_new_tokens, temperature
    )
    columns = [c for c in dataset.column_names if c != "prompt"]
    scores = []
    for index, completions in enumerate(groups):
        row = dataset[index]
        extra = {c: [row[c]] * len(completions) for c in columns}
        scores.append(combined_rewards(rewards, weights, [row["prompt"]] * len(completions), completions, **extra))
    decisions = filter_decisions(scores, spec.success_reward, spec.drop_all_succeeded)
    return {
        "rollouts": spec.rollouts,
        "success_reward": spec.success_reward,
        "prompts": len(prompts),
        "kept": decisions.count(None),
        "dropped_all_failed": decisions.count(ALL_FAILED),
        "dropped_all_succeeded": decisions.count(ALL_SUCCEEDED),
        "kept_indices": [i for i, d in enumerate(decisions) if d is None],
        "dropped": [{"index": i, "prompt": prompts[i], "reason": d} for i, d in enumerate(decisions) if d],
    }
