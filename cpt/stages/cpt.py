"""`cpt` stage: continual pretraining, causal-LM loss on a mixture of text domains whose weights
are fixed or learned while training.

Run as part of a recipe: `cpt run recipes/quickstart.yaml`. Domains (and replayed earlier data)
are tokenised once and packed into `max_length` sequences by `data_mixing.MixtureStream`; the
recipe's domains are read from the run's token cache, memory-mapped, when `cpt prepare` (or an
earlier attempt) tokenised them, and written there otherwise (cpt/data/tokens.py);
a `MixingCallback` updates the weights from held-out losses and saves the stream's exact state
with every checkpoint; the weight trajectory goes to stages/NAME/mixture_weights.json.

Training goes through a plain transformers `Trainer`: TRL's SFTTrainer accepts only `datasets`
datasets and packs a static one, while the stream is a torch IterableDataset that packs itself,
so there is nothing left for SFTTrainer to do (the loss is the model's own causal-LM loss).
"""

from __future__ import annotations

import logging
from pathlib import Path

from datasets import Dataset

from cpt.core.distributed import is_main_process, main_process_first
from cpt.core.layout import StageLayout
from cpt.data.earlier import replay_parts
from cpt.data.tokens import domain_tokens
from cpt.errors import UserError
from cpt.stages.context import StageContext, StageResult
from cpt.stages.cpt_config import REPLAY_DOMAIN
from cpt.stages.rehearsal import rehearsal_metrics, rehearsal_rows
from cpt.stages.rehearsal_config import REHEARSAL_DOMAIN
from cpt.stages.training import build_trainer, load_model, load_tokenizer, lora_config, train_and_save, trainer_config
from data_mixing.callback import MIXTURE_STATE, MixingCallback, compose, read_mixture_state
from data_mixing.domains import split_domains, tokenize_texts
from data_mixing.held_out import HeldOutEvaluator
from data_mixing.learners import make_learner
from data_mixing.stream import MixtureStream

logger = logging.getLogger(__name__)

CPT_DEFAULTS = {"max_length": 1024}  # SFTConfig's own default, spelled out: it is the packed length


def restore_mixing(mixing: MixingCallback, checkpoint: Path) -> bool:
    """Load the mixing state saved in `checkpoint`; False if it has none. A state this run cannot continue
    (saved by an older version, or with another batch size or number of processes) stops the stage
    with a message naming the file, as a user error: the checkpoint stays as it is."""
    state = read_mixture_state(checkpoint)
    if state is None:
        return False
    try:
        mixing.load_state_dict(state)
    except ValueError as error:
        raise UserError(f"{Path(checkpoint) / MIXTURE_STATE}: {error}") from None
    return True


def run(ctx: StageContext) -> StageResult:
    from transformers import Trainer, default_data_collator
    from trl import SFTConfig

    spec = ctx.spec
    tokenizer = load_tokenizer(ctx)
    extra, fixed = _extra_rows(ctx)  # first: rehearsal generates with a whole model, before any ZeRO-3 config
    args = trainer_config(SFTConfig, ctx, kind_defaults=CPT_DEFAULTS)
    if args.accelerator_config.split_batches:
        raise UserError(f"stage {spec.name}: train.accelerator_config.split_batches is not supported by cpt stages")
    domains = split_domains(_domain_docs(ctx, tokenizer, extra), args.max_length, spec.mixing.held_out())
    mixing = _mixing_callback(ctx, domains, fixed, args)
    if ctx.resume_from and restore_mixing(mixing, ctx.resume_from):
        args.ignore_data_skip = True  # the stream resumes itself; the Trainer must not skip batches too
    elif ctx.resume_from and is_main_process():
        logger.warning("%s has no %s; the Trainer skips the batches seen instead", ctx.resume_from, MIXTURE_STATE)
    trainer = build_trainer(
        Trainer, ctx, _model(ctx), tokenizer,
        args=args,
        train_dataset=mixing.stream,
        data_collator=default_data_collator,
        stage_callbacks=[mixing],  # first in the hook list: its state is in a checkpoint before COMPLETE
    )
    result = train_and_save(trainer, tokenizer, ctx)
    if spec.rehearsal is not None:
        result.metrics.update(rehearsal_metrics(ctx.stage_dir))
    return result


def _model(ctx: StageContext):
    model = load_model(ctx)
    if ctx.spec.peft is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, lora_config(ctx.spec.peft))


def _extra_rows(ctx: StageContext) -> tuple[dict[str, Dataset], dict[str, float]]:
    """Text rows of the domains beyond the recipe's (replay, rehearsal) and their fixed shares outside the learner."""
    spec = ctx.spec
    rows, fixed = {}, {}
    if spec.replay is not None:  # one domain `replay`, or with weights one per source: replay/<stage>
        for source, source_rows, share in replay_parts(ctx, spec.replay, ("text",)):
            domain = REPLAY_DOMAIN if source is None else f"{REPLAY_DOMAIN}/{source}"
            rows[domain], fixed[domain] = source_rows, share
    if spec.rehearsal is not None:  # prompt + the starting model's answer, as text (stages/rehearsal.py)
        rows[REHEARSAL_DOMAIN] = rehearsal_rows(ctx, spec.rehearsal, "text")
        fixed[REHEARSAL_DOMAIN] = spec.rehearsal.ratio
    return rows, fixed


def _domain_docs(ctx: StageContext, tokenizer, extra: dict[str, Dataset]) -> dict[str, Dataset]:
    """Token ids per domain, the recipe's first (from the token cache; one process per node writes a
    missing file while the others wait, then read it), then replay and rehearsal (tokenised in memory)."""
    with main_process_first():
        docs = {d.name: domain_tokens(d.data, tokenizer, d.name, ctx.token_cache) for d in ctx.spec.domains}
    return docs | {name: tokenize_texts(rows, tokenizer, name) for name, rows in extra.items()}


def _mixing_callback(ctx: StageContext, domains, fixed: dict[str, float], args) -> MixingCallback:
    spec, mixing = ctx.spec, ctx.spec.mixing
    learned = spec.normalised_weights()
    learner = make_learner(mixing.learner, list(learned), learned, step_size=mixing.step_size,
                           smoothing=mixing.smoothing, reward_decay=mixing.reward_decay, seed=ctx.seed)
    evaluator = HeldOutEvaluator(domains, batch_size=args.per_device_train_batch_size)
    stream = MixtureStream(domains, compose(learner.current(), fixed), args.max_length, seed=ctx.seed)
    return MixingCallback(
        stream=stream, learner=learner, evaluator=evaluator, update_every=mixing.update_every,
        # What one optimizer step takes from the stream that is read: rank 0's when accelerate
        # dispatches batches (its default for iterable datasets), every rank's copy otherwise.
        # Measured in tests/data_mixing/test_multiprocess_mixing.py.
        sequences_per_step=args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size,
        trajectory_path=StageLayout(ctx.stage_dir).mixture_log,
        fixed=fixed,
        reference_model=_reference_loader(ctx, args) if mixing.reference else None,
    )


def _reference_loader(ctx: StageContext, args):
    """A function loading the recipe's reference model (DoReMi), on this process's device."""
    folder = Path(ctx.spec.mixing.reference)
    if not (folder / "config.json").is_file():
        raise UserError(f"stage {ctx.spec.name}: mixing.reference {folder} is not a model folder (no config.json)")
    return lambda: load_model(ctx, folder).to(args.device)
