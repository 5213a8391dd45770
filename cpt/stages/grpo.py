"""`grpo` stage: GRPO/RFT through TRL's GRPOTrainer with verifiable rewards and KL to the starting model.

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. With beta > 0 (our default 0.04) TRL loads
the reference from the starting model's folder (LoRA: the adapter-disabled model), which is lineage's
default reference. An optional RFT filter (rft_filter.py) first drops prompts with no learning signal.
"""

from __future__ import annotations

from cpt.data.rows import PROMPT_SHAPES, load_rows
from cpt.rewards import load_rewards
from cpt.rollouts import grpo_generation_args
from cpt.stages.context import StageContext, StageResult
from cpt.stages.grpo_config import DEFAULT_BETA
from cpt.stages.rft_filter import filter_dataset
from cpt.stages.training import build_trainer, load_model, load_tokenizer, lora_config, train_and_save, trainer_config


def run(ctx: StageContext) -> StageResult:
    from trl import GRPOConfig, GRPOTrainer

    spec = ctx.spec
    tokenizer = load_tokenizer(ctx)
    rewards, weights = load_rewards(spec.rewards)
    kind_defaults = {"beta": DEFAULT_BETA, "reward_weights": weights, **grpo_generation_args(spec.rollout)}
    args = trainer_config(GRPOConfig, ctx, kind_defaults=kind_defaults)
    dataset = load_rows(spec.data, PROMPT_SHAPES)
    if spec.filter is not None:
        dataset = filter_dataset(ctx, dataset, rewards, args.max_completion_length, args.temperature,
                                 args.chat_template_kwargs)
    trainer = build_trainer(
        GRPOTrainer, ctx, load_model(ctx), tokenizer,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset,
        peft_config=lora_config(spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)
