"""One stage's turn in the run: skip it if done with the same config, resume it if interrupted,
otherwise start it fresh from the previous stage's output.

A stage's config hash covers its recipe section, the content of its local data files and its
parent's hash, so changing stage i reruns stage i and everything after it.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from cpt.core.atomic import is_complete, remove_partials
from cpt.core.checkpoints import discard_incomplete, latest_complete_checkpoint
from cpt.core.distributed import end_deepspeed_stage, is_main_process, wait_for_everyone
from cpt.core.layout import RunLayout, StageLayout
from cpt.core.manifest import DONE, RUNNING, Manifest, config_hash
from cpt.core.memory import release_memory
from cpt.core.precision import choose_precision, count_parameters, emulated_bf16_warning
from cpt.data.earlier import earlier_stages
from cpt.data.files import local_files
from cpt.runner.merge_step import merge_stage_output
from cpt.runner.preflight import stage_sources
from cpt.stages.context import StageContext
from cpt.stages.registry import STAGE_RUNNERS
from eval.digest import file_digest

logger = logging.getLogger(__name__)

# Settings that do not change what a stage produces (skip_bad_batches: only when a stage would
# otherwise stop, and then a rerun with it set should resume, not start again).
_NOT_HASHED = {"eval", "keep_checkpoints", "skip_bad_batches"}


@dataclass
class StageOutcome:
    model_dir: Path
    config_hash: str
    action: str  # "skipped", "resumed" or "trained"


def stage_hash(spec, parent_hash: str) -> str:
    # Defaults left out: a field added to the schema later (with its default) keeps old runs valid.
    payload = spec.model_dump(mode="json", exclude=_NOT_HASHED, exclude_defaults=True)
    payload["data_files"] = [_source_digest(src) for src, _ in stage_sources(spec) if src.path]
    if spec.merge is not None and spec.merge.held_out:  # the merge guard's held-out files decide its alpha
        payload["held_out_files"] = {task: file_digest(path) for task, path in sorted(spec.merge.held_out.items())}
    return config_hash(payload, parent_hash)


def _source_digest(source) -> str | list[str]:
    """A local source's content: one file's digest (as before directories and patterns were read), or each file's."""
    files = local_files(source)
    return file_digest(files[0]) if len(files) == 1 and files[0] == Path(source.path) else [
        f"{path.name}:{file_digest(path)}" for path in files]


def run_stage(
    spec, index: int, parent: Path, parent_hash: str, manifest: Manifest, run_dir: Path, recipe
) -> StageOutcome:
    """Bring stage `spec` to done and return where its model is."""
    run = RunLayout(run_dir)
    layout = run.stage(spec.name)
    stage_dir = layout.dir
    this_hash = stage_hash(spec, parent_hash)
    record = manifest.record(spec.name, spec.kind, index)
    if record.status == DONE and record.config_hash == this_hash and is_complete(layout.model):
        return StageOutcome(layout.model, this_hash, "skipped")

    interrupted = record.status == RUNNING and record.config_hash == this_hash
    resume_from = _prepare_stage_dir(stage_dir, interrupted)
    reference = Path(spec.reference_model() or parent)
    precision = choose_precision(spec.train, count_parameters(parent))
    manifest.mark_running(record, this_hash, str(parent), str(reference), precision.describe())
    warning = emulated_bf16_warning(precision)
    if warning and is_main_process():
        logger.warning("stage %s: %s", spec.name, warning)
    _save(manifest, run_dir)

    ctx = StageContext(
        spec=spec,
        input_model=parent,
        reference_model=reference,
        stage_dir=stage_dir,
        seed=recipe.run.seed,
        trust_remote_code=recipe.model.trust_remote_code,
        chat_template=recipe.model.chat_template,
        tokenizer_source=recipe.model.tokenizer if index == 0 else None,
        resume_from=resume_from,
        precision=precision,
        token_cache=run.token_cache,
        earlier=earlier_stages(recipe.stages[:index]),
    )
    result = STAGE_RUNNERS[spec.kind](ctx)
    end_deepspeed_stage()
    release_memory()  # the stage's trainer, model and engine, before the merge, the eval or the next stage load theirs
    merge = merge_stage_output(recipe, index, parent, stage_dir) if spec.merge is not None else None
    manifest.mark_done(record, str(ctx.output_dir.relative_to(run_dir)), result.global_step, result.metrics, merge)
    _save(manifest, run_dir)
    return StageOutcome(ctx.output_dir, this_hash, "resumed" if resume_from else "trained")


def _prepare_stage_dir(stage_dir: Path, interrupted: bool) -> Path | None:
    """Clean the stage folder; return the checkpoint to resume from, if any."""
    checkpoints = StageLayout(stage_dir).checkpoints
    if is_main_process():
        if interrupted:
            discard_incomplete(checkpoints)
            remove_partials(stage_dir)
        else:  # new stage, or its config changed: start clean
            shutil.rmtree(stage_dir, ignore_errors=True)
        stage_dir.mkdir(parents=True, exist_ok=True)
    wait_for_everyone()
    return latest_complete_checkpoint(checkpoints) if interrupted else None


def _save(manifest: Manifest, run_dir: Path) -> None:
    if is_main_process():
        manifest.save(run_dir)
    wait_for_everyone()
