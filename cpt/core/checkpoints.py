"""Resume checkpoints of a stage: which are complete, which to keep, and the callback that marks them.

The Trainer writes `checkpoint-N/` in several steps (weights, optimizer, RNG, trainer state);
a kill in between leaves a folder that looks like a checkpoint. We mark a checkpoint complete
only after the Trainer's `on_save` (all parts written, all ranks past the save), resume only
from marked ones, and rotate old ones ourselves, after marking, so a kill can never leave us
with no complete checkpoint at all (the Trainer's own `save_total_limit` deletes first).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from transformers import TrainerCallback

from cpt.core.atomic import is_complete, mark_complete
from cpt.core.distributed import is_main_process, wait_for_everyone

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _step_folders(checkpoint_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoint_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in checkpoint_dir.iterdir() if (m := _CHECKPOINT.match(p.name))]
    return sorted(found)


def latest_complete_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The highest-step checkpoint carrying the COMPLETE marker, or None."""
    complete = [path for _, path in _step_folders(checkpoint_dir) if is_complete(path)]
    return complete[-1] if complete else None


def prune_checkpoints(checkpoint_dir: Path, keep: int) -> None:
    """Delete incomplete checkpoints and all but the newest `keep` complete ones."""
    folders = _step_folders(checkpoint_dir)
    complete = [path for _, path in folders if is_complete(path)]
    newest_complete_step = max((s for s, p in folders if is_complete(p)), default=-1)
    for step, path in folders:
        stale = not is_complete(path) and step < newest_complete_step
        if stale or (is_complete(path) and path not in complete[-keep:]):
            shutil.rmtree(path, ignore_errors=True)


def discard_incomplete(checkpoint_dir: Path) -> None:
    """Before resuming: drop checkpoint folders a kill left half-written."""
    for _, path in _step_folders(checkpoint_dir):
        if not is_complete(path):
            shutil.rmtree(path, ignore_errors=True)


class CommitCheckpoints(TrainerCallback):
    """Marks each checkpoint complete once fully saved, then rotates old ones."""

    def __init__(self, checkpoint_dir: Path, keep: int):
        self.checkpoint_dir = checkpoint_dir
        self.keep = keep

    def on_save(self, args, state, control, **kwargs):
        wait_for_everyone()  # every rank has written its part (DeepSpeed shards included)
        if is_main_process():
            folder = self.checkpoint_dir / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                mark_complete(folder)
                prune_checkpoints(self.checkpoint_dir, self.keep)
        wait_for_everyone()
        return control


class AnnounceResume(TrainerCallback):
    """On a resumed stage, say once training is back at the checkpoint's step (data skipped, states
    loaded) and how long that took since the process started: what a restart costs."""

    def __init__(self, stage: str, checkpoint: Path):
        self.stage = stage
        self.checkpoint = checkpoint
        self.announced = False

    def on_step_begin(self, args, state, control, **kwargs):
        if not self.announced and is_main_process():
            import psutil

            elapsed = time.time() - psutil.Process().create_time()
            logger.info("%s: resumed from %s, at step %d %.1fs after the process started",
                        self.stage, self.checkpoint.name, state.global_step, elapsed)
        self.announced = True
        return control
