"""`dpo` stage: direct preference optimisation through TRL's DPOTrainer (full, or LoRA through PEFT).

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. The reference is the stage's starting model
(the previous stage's output) unless the recipe names another folder. With LoRA and the default
reference, TRL uses the model with its adapter disabled, which is that same starting model, so no
second copy is loaded.
"""

from __future__ import annotations

from cpt.data.rows import PREFERENCE_SHAPES, load_rows
from cpt.guards.config import ADAPTER_GUARDS
from cpt.stages.context import StageContext, StageResult
from cpt.stages.training import build_trainer, load_model, load_tokenizer, lora_config, train_and_save, trainer_config

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def run(ctx: StageContext) -> StageResult:
    from trl import DPOConfig, DPOTrainer

    tokenizer = load_tokenizer(ctx)
    dataset = load_rows(ctx.spec.data, PREFERENCE_SHAPES)
    dataset = dataset.select_columns([c for c in PREFERENCE_COLUMNS if c in dataset.column_names])
    args = trainer_config(DPOConfig, ctx, kind_defaults={})  # first: under ZeRO-3 the models then load sharded
    trainer = build_trainer(
        DPOTrainer, ctx, load_model(ctx), tokenizer,
        ref_model=_reference(ctx),
        args=args,
        train_dataset=dataset,
        peft_config=lora_config(ctx.spec.peft),
    )
    return train_and_save(trainer, tokenizer, ctx)


def _reference(ctx: StageContext):
    """None where TRL's own choice is the starting model (an adapter, LoRA or a guard's, disabled); else the loaded reference."""
    adapter = ctx.spec.peft is not None or getattr(ctx.spec.guard, "method", None) in ADAPTER_GUARDS
    if adapter and ctx.reference_model == ctx.input_model:
        return None
    return load_model(ctx, ctx.reference_model)
