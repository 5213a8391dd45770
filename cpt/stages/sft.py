"""`sft` stage: supervised fine-tuning through TRL's SFTTrainer (full, or LoRA through PEFT).

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. Prompt/completion rows train on the
completion only (TRL's default); `messages` rows use the tokenizer's chat template. With
`replay:`, rows of earlier stages' data (or a replay file) are added at the given share
(data_mixing/replay.py).
"""

from __future__ import annotations

from datasets import Dataset, concatenate_datasets

from cpt.data.rows import SFT_SHAPES, load_rows
from cpt.errors import UserError
from cpt.runner.atomic import read_json
from cpt.runner.manifest import RESOLVED_RECIPE
from cpt.stages.context import StageContext, StageResult
from cpt.stages.training import load_model, load_tokenizer, lora_config, train_and_save, trainer_config
from data_mixing.replay import as_columns, with_replay


def run(ctx: StageContext) -> StageResult:
    from trl import SFTConfig, SFTTrainer

    tokenizer = load_tokenizer(ctx)
    dataset = load_rows(ctx.spec.data, SFT_SHAPES)
    if ctx.spec.replay is not None:
        replay = replay_rows(ctx, tuple(dataset.column_names))
        dataset = with_replay(dataset, replay, ctx.spec.replay.ratio, ctx.seed)
    trainer = SFTTrainer(
        model=load_model(ctx),
        args=trainer_config(SFTConfig, ctx, kind_defaults={}),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(ctx.spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)


def replay_rows(ctx: StageContext, columns: tuple[str, ...]) -> Dataset:
    """The rows `ctx.spec.replay` names, in the shape `columns` (this stage's own rows' fields)."""
    replay = ctx.spec.replay
    # Earlier stages' data sources are read from the run's validated recipe, which the runner
    # writes to the run directory (RUN/stages/NAME is this stage's folder) before any stage runs.
    recipe_file = ctx.stage_dir.parent.parent / RESOLVED_RECIPE
    if replay.stages and not recipe_file.is_file():
        raise UserError(f"stage {ctx.spec.name}: replay.stages needs the run's {RESOLVED_RECIPE}, not found at {recipe_file}")
    run_recipe = read_json(recipe_file) if replay.stages else {}
    parts = []
    for source in replay.sources(run_recipe, ctx.spec.name):
        rows = as_columns(load_rows(source, SFT_SHAPES), columns)
        if rows is None:
            raise UserError(f"stage {ctx.spec.name}: replay data {source.describe()} has rows that do not fit "
                            f"this stage's ({', '.join(columns)})")
        parts.append(rows)
    return concatenate_datasets(parts)
