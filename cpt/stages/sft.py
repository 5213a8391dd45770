"""`sft` stage: supervised fine-tuning through TRL's SFTTrainer (full, or LoRA through PEFT).

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. Prompt/completion rows train on the
completion only (TRL's default); `messages` rows use the tokenizer's chat template. With
`replay:`, rows of earlier stages' data (or a replay file) are added at the given share
(data_mixing/replay.py); with `rehearsal:`, rows the starting model answers itself (stages/rehearsal.py).
"""

from __future__ import annotations

from cpt.data.earlier import replay_parts
from cpt.data.rows import SFT_SHAPES, load_rows
from cpt.stages.context import StageContext, StageResult
from cpt.stages.rehearsal import rehearsal_metrics, rehearsal_rows, row_style
from cpt.stages.training import build_trainer, load_model, load_tokenizer, lora_config, train_and_save, trainer_config
from data_mixing.replay import with_shares


def run(ctx: StageContext) -> StageResult:
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(ctx)
    dataset = train_rows(ctx)  # rehearsal generates here: before the trainer's config (ZeRO-3 sharded loads)
    args = trainer_config(SFTConfig, ctx, kind_defaults={})  # first: under ZeRO-3 the model then loads sharded
    trainer = build_trainer(
        SFTTrainer, ctx, load_model(ctx), tokenizer,
        args=args,
        train_dataset=dataset,
        peft_config=lora_config(ctx.spec.peft),
    )
    result = train_and_save(trainer, tokenizer, ctx)
    if ctx.spec.rehearsal is not None:
        result.metrics.update(rehearsal_metrics(ctx.stage_dir))
    return result


def train_rows(ctx: StageContext):
    """The stage's rows, with replayed and self-synthesized rehearsal rows at their shares."""
    dataset = load_rows(ctx.spec.data, SFT_SHAPES)
    parts = []
    if ctx.spec.replay is not None:
        parts += [(rows, share) for _, rows, share in replay_parts(ctx, ctx.spec.replay, tuple(dataset.column_names))]
    if ctx.spec.rehearsal is not None:
        rows = rehearsal_rows(ctx, ctx.spec.rehearsal, row_style(dataset), dataset.features)
        parts.append((rows, ctx.spec.rehearsal.ratio))
    return with_shares(dataset, parts, ctx.seed)
