"""RFT instance filtering ("Reinforcement Fine-Tuning Naturally Mitigates Forgetting in Continual
Post-Training"): before GRPO, sample K rollouts per prompt from the starting model and drop the prompts
whose rollouts all fail (and, if asked, those whose rollouts all succeed): both give every completion
the same reward, so zero advantage and no learning signal, only KL drift.

The rollouts and the reward calls are the ones GRPO training makes (TRL 1.16's GRPOTrainer): chat prompts
rendered with the chat template, completions as assistant messages, completion_ids up to the first eos.
Success is judged on the correctness rewards alone (FilterSpec says which, and why).

The decision, with counts and each dropped prompt's reason, is written to STAGE_DIR/rft_filter.json
and reused when the stage resumes.
"""

from __future__ import annotations

from cpt.errors import UserError
from cpt.rewards import reward_values
from cpt.rollouts import make_rollouts
from cpt.rollouts.prompts import is_chat
from cpt.runner.atomic import atomic_write_json, read_json
from cpt.runner.distributed import is_main_process, wait_for_everyone

FILTER_FILE = "rft_filter.json"
ALL_FAILED, ALL_SUCCEEDED = "all rollouts failed", "all rollouts succeeded"


def filter_decisions(rewards: list[list[float]], success_reward: float, drop_all_succeeded: bool) -> list[str | None]:
    """Per prompt: None to keep it, else why it is dropped, from its K rollouts' success scores."""
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


def filter_dataset(ctx, dataset, rewards, max_new_tokens: int, temperature: float,
                   chat_template_kwargs: dict | None = None):
    """`dataset` without the prompts the filter drops (computed on the main process, once per stage)."""
    path = ctx.stage_dir / FILTER_FILE
    if is_main_process() and not path.is_file():
        generation = (max_new_tokens, temperature, chat_template_kwargs)
        atomic_write_json(path, _decide(ctx, dataset, rewards, generation))
    wait_for_everyone()
    record = read_json(path)
    if not record["kept_indices"]:
        raise UserError(
            f"stage {ctx.spec.name}: the RFT filter dropped every prompt ({record['dropped_all_failed']} all failed, "
            f"{record['dropped_all_succeeded']} all succeeded; see {path}): train the task first or turn the filter off"
        )
    return dataset.select(record["kept_indices"])


def _decide(ctx, dataset, rewards, generation: tuple) -> dict:
    spec = ctx.spec.filter
    max_new_tokens, temperature, chat_template_kwargs = generation
    prompts = list(dataset["prompt"])  # a datasets Column, not a list
    groups = make_rollouts(ctx.spec.rollout, ctx.input_model, ctx.trust_remote_code).sample_completions(
        prompts, spec.rollouts, max_new_tokens, temperature, chat_template_kwargs
    )
    judged = ctx.spec.success_reward_indices()
    scores = [_success_scores(rewards, judged, dataset[i], group) for i, group in enumerate(groups)]
    decisions = filter_decisions(scores, spec.success_reward, spec.drop_all_succeeded)
    return {
        "rollouts": spec.rollouts,
        "success_reward": spec.success_reward,
        "success_rewards": [ctx.spec.rewards[i].name for i in judged],
        "prompts": len(prompts),
        "kept": decisions.count(None),
        "dropped_all_failed": decisions.count(ALL_FAILED),
        "dropped_all_succeeded": decisions.count(ALL_SUCCEEDED),
        "kept_indices": [i for i, d in enumerate(decisions) if d is None],
        "dropped": [{"index": i, "prompt": prompts[i], "reason": d} for i, d in enumerate(decisions) if d],
    }


def _success_scores(rewards, judged: list[int], row: dict, group) -> list[float]:
    """Per rollout of one prompt: the unweighted sum of the judged rewards (None counts as 0). Every reward is
    called, as in training, so that one which raises stops the filter as it would stop training."""
    prompt, count = row["prompt"], len(group)
    # TRL hands chat completions to rewards as a one-message assistant turn, text ones as text.
    completions = [[{"role": "assistant", "content": c.text}] if is_chat(prompt) else c.text for c in group]
    columns = {c: [row[c]] * count for c in row if c != "prompt"}
    values = reward_values(rewards, [prompt] * count, completions, [c.ids for c in group], **columns)
    return [sum(values[r][i] or 0.0 for r in judged) for i in range(count)]
