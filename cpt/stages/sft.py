"""`sft` stage: supervised fine-tuning through TRL's SFTTrainer (full, or LoRA through PEFT).

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. Prompt/completion rows train on the
completion only (TRL's default); `messages` rows use the tokenizer's chat template. With
`replay:`, rows of earlier stages' data (or a replay file) are added at the given share
(data_mixing/replay.py).
"""

from __future__ import annotations

from cpt.data.rows import SFT_SHAPES, load_rows
from cpt.stages.context import StageContext, StageResult
from cpt.stages.earlier_data import earlier_rows
from cpt.stages.training import build_trainer, load_model, load_tokenizer, lora_config, train_and_save, trainer_config
from data_mixing.replay import with_replay


def run(ctx: StageContext) -> StageResult:
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(ctx)
    dataset = load_rows(ctx.spec.data, SFT_SHAPES)
    if ctx.spec.replay is not None:
        replay = earlier_rows(ctx, ctx.spec.replay, tuple(dataset.column_names), "replay")
        dataset = with_replay(dataset, replay, ctx.spec.replay.ratio, ctx.seed)
    args = trainer_config(SFTConfig, ctx, kind_defaults={})  # first: under ZeRO-3 the model then loads sharded
    trainer = build_trainer(
        SFTTrainer, ctx, load_model(ctx), tokenizer,
        args=args,
        train_dataset=dataset,
        peft_config=lora_config(ctx.spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)
