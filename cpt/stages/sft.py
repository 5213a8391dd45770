"""`sft` stage: supervised fine-tuning through TRL's SFTTrainer (full, or LoRA through PEFT).

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. Prompt/completion rows train on the
completion only (TRL's default); `messages` rows use the tokenizer's chat template.
"""

from __future__ import annotations

from cpt.data.rows import SFT_SHAPES, load_rows
from cpt.stages.context import StageContext, StageResult
from cpt.stages.training import load_model, load_tokenizer, lora_config, train_and_save, trainer_config


def run(ctx: StageContext) -> StageResult:
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(ctx)
    dataset = load_rows(ctx.spec.data, SFT_SHAPES)
    trainer = SFTTrainer(
        model=load_model(ctx),
        args=trainer_config(SFTConfig, ctx, kind_defaults={}),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(ctx.spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)
