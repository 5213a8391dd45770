"""RFT instance filtering ("Reinforcement Fine-Tuning Naturally Mitigates Forgetting in Continual
Post-Training"): before GRPO, sample K rollouts per prompt from the starting model and drop the prompts
whose rollouts all fail (and, if asked, those whose rollouts all succeed): both give every completion
the same reward, so zero advantage and no learning signal, only KL drift.

The rollouts and the reward calls are the ones GRPO training makes (TRL 1.16's GRPOTrainer): chat prompts
rendered with the chat template, completions as assistant messages, completion_ids up to the first eos.
Success is judged on the correctness rewards alone (FilterSpec says which, and why).

Every process takes part: each samples its share of the prompts (every N-th), the scores are gathered,
and all end with the same kept set. It runs before the stage's trainer config exists, so under DeepSpeed
ZeRO-3 each rank loads the model whole, not through transformers' partitioned loading (whose collectives
would wait for ranks that are not loading). With several processes the rollouts use transformers generate
on every rank, whatever `rollout.backend` says: one vLLM engine per rank beside the training job is not
something we can run or test here (TRL's own vLLM generation still serves training).

The decision, with counts and each dropped prompt's reason, is written to STAGE_DIR/rft_filter.json
and reused when the stage resumes.
"""

from __future__ import annotations

import logging

from cpt.core.distributed import (
    any_process,
    gather_objects,
    is_main_process,
    num_processes,
    process_index,
    wait_for_everyone,
)
from cpt.core.memory import release_memory
from cpt.errors import UserError
from cpt.rewards import reward_values
from cpt.rollouts import make_rollouts
from cpt.rollouts.prompts import is_chat
from eval.files import atomic_write_json, read_json

logger = logging.getLogger(__name__)

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
                   chat_template_kwargs: dict | None = None, sampling: dict | None = None):
    """`dataset` without the prompts the filter drops (computed by every process together, once per stage).
    A collective: every process calls it, before the stage's trainer config is made. `sampling`: the
    stage's top_p, top_k, min_p and repetition_penalty (grpo.generation_settings), so the rollouts judged
    here are drawn as training will draw them."""
    path = ctx.stage_dir / FILTER_FILE
    if any_process(not path.is_file()):
        generation = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                      "chat_template_kwargs": chat_template_kwargs, "sampling": sampling}
        record = _decide(ctx, dataset, rewards, generation)
        if is_main_process():
            atomic_write_json(path, record)
    wait_for_everyone()
    record = read_json(path)
    if not record["kept_indices"]:
        raise UserError(
            f"stage {ctx.spec.name}: the RFT filter dropped every prompt ({record['dropped_all_failed']} all failed, "
            f"{record['dropped_all_succeeded']} all succeeded; see {path}): train the task first or turn the filter off"
        )
    return dataset.select(record["kept_indices"])


def _decide(ctx, dataset, rewards, generation: dict) -> dict:
    """`generation`: sample_completions' keywords (max_new_tokens, temperature, chat_template_kwargs, sampling)."""
    spec = ctx.spec.filter
    prompts = list(dataset["prompt"])  # a datasets Column, not a list
    mine = shard(len(prompts), process_index(), num_processes())
    judged = ctx.spec.success_reward_indices()
    scores: dict[int, list[float]] = {}
    if mine:
        rollouts = make_rollouts(_rollout_spec(ctx.spec.rollout), ctx.input_model, ctx.trust_remote_code)
        groups = rollouts.sample_completions([prompts[i] for i in mine], spec.rollouts, **generation)
        del rollouts  # the sampling model: freed before the stage loads its own
        release_memory()
        scores = {i: _success_scores(rewards, judged, dataset[i], group) for i, group in zip(mine, groups)}
    scores = unshard(gather_objects(scores), len(prompts))
    decisions = filter_decisions(scores, spec.success_reward, spec.drop_all_succeeded)
    return {
        "rollouts": spec.rollouts,
        "success_reward": spec.success_reward,
        "success_rewards": [ctx.spec.rewards[i].name for i in judged],
        "prompts": len(prompts),
        "processes": num_processes(),  # the rollouts were spread over this many processes
        "kept": decisions.count(None),
        "dropped_all_failed": decisions.count(ALL_FAILED),
        "dropped_all_succeeded": decisions.count(ALL_SUCCEEDED),
        "kept_indices": [i for i, d in enumerate(decisions) if d is None],
        "dropped": [{"index": i, "prompt": prompts[i], "reason": d} for i, d in enumerate(decisions) if d],
    }


def shard(count: int, rank: int, processes: int) -> list[int]:
    """The prompt indices process `rank` samples: every `processes`-th, from its rank on."""
    return list(range(rank, count, processes))


def unshard(parts: list[dict[int, list[float]]], count: int) -> list[list[float]]:
    """Every process's {prompt index: scores}, as one list in prompt order (each index exactly once)."""
    merged = {index: scores for part in parts for index, scores in part.items()}
    if sorted(merged) != list(range(count)):
        raise RuntimeError(f"RFT filter: gathered scores for {len(merged)} of {count} prompts")
    return [merged[i] for i in range(count)]


def _rollout_spec(spec):
    """The rollout backend for the filter: the stage's, but transformers generate under several processes."""
    if spec.backend == "vllm" and num_processes() > 1:
        logger.info("RFT filter: %d processes, so its rollouts use transformers generate on each", num_processes())
        return spec.model_copy(update={"backend": "hf"})
    return spec


def _success_scores(rewards, judged: list[int], row: dict, group) -> list[float]:
    """Per rollout of one prompt: the unweighted sum of the judged rewards (None counts as 0). Every reward is
    called, as in training, so that one which raises stops the filter as it would stop training."""
    prompt, count = row["prompt"], len(group)
    # TRL hands chat completions to rewards as a one-message assistant turn, text ones as text.
    completions = [[{"role": "assistant", "content": c.text}] if is_chat(prompt) else c.text for c in group]
    columns = {c: [row[c]] * count for c in row if c != "prompt"}
    values = reward_values(rewards, [prompt] * count, completions, [c.ids for c in group], **columns)
    return [sum(values[r][i] or 0.0 for r in judged) for i in range(count)]
