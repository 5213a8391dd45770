"""`grpo` stage: GRPO/RFT through TRL's GRPOTrainer with verifiable rewards and KL to the starting model.

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. With beta > 0 (our default 0.04) TRL loads
the reference from the starting model's folder (LoRA: the adapter-disabled model), which is lineage's
default reference. An optional RFT filter (rft_filter.py) first drops prompts with no learning signal; it runs
before GRPOConfig exists, since under DeepSpeed ZeRO-3 that config makes transformers load every model
partitioned, which the filter's per-rank sampling model must not be.
"""

from __future__ import annotations

import dataclasses

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
    dataset = load_rows(spec.data, PROMPT_SHAPES)
    if spec.filter is not None:
        dataset = filter_dataset(ctx, dataset, rewards, **generation_settings(GRPOConfig, spec.train))
    args = trainer_config(GRPOConfig, ctx, kind_defaults=kind_defaults)
    trainer = build_trainer(
        GRPOTrainer, ctx, load_model(ctx), tokenizer,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset,
        peft_config=lora_config(spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)


# GRPOConfig's sampling fields, which TRL 1.16 hands to transformers generate and to vLLM's SamplingParams alike
SAMPLING_FIELDS = ("top_p", "top_k", "min_p", "repetition_penalty")


def generation_settings(config_cls, train: dict) -> dict:
    """filter_dataset's generation keywords as the stage's GRPOConfig will hold them: the recipe's, else TRL's
    defaults (read from the dataclass, without making the config), with `generation_kwargs` over the
    sampling fields as TRL applies them, so the filter samples as training will."""
    defaults = {field.name: field.default for field in dataclasses.fields(config_cls)}
    extra = train.get("generation_kwargs") or {}

    def setting(name):
        return extra.get(name, train.get(name, defaults[name]))

    return {"max_new_tokens": train.get("max_completion_length", defaults["max_completion_length"]),
            "temperature": setting("temperature"),
            "chat_template_kwargs": train.get("chat_template_kwargs", defaults["chat_template_kwargs"]),
            "sampling": {name: setting(name) for name in SAMPLING_FIELDS}}
