"""Stopping a run cleanly when asked: checkpoint, exit with a status that means "rerun to resume".

A stop is asked for by SIGTERM or SIGUSR1 (what Slurm sends on `scancel`, on `scontrol requeue`, and
with `--signal` before a time limit), or by creating the file named in $CPT_STOP_FILE (the sbatch
scripts of `cpt slurm` do this: a signal sent to `srun` or `accelerate launch` does not reliably reach
the training processes, a file on the shared filesystem does). Then:

- during training, every rank agrees (one all-reduce per step) to stop after the same step; that step
  is saved as a complete checkpoint and the stage raises `Preempted`;
- between stages and evaluations, the run raises `Preempted` before starting the next one.

`cpt run` exits with PREEMPTED_EXIT (75, cpt/errors.py); rerunning the same command resumes from the checkpoint.
A second signal stops at once, without a checkpoint (atomic writes keep everything done so far).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from transformers import TrainerCallback

from cpt.core.distributed import any_process
from cpt.errors import Preempted

STOP_FILE_ENV = "CPT_STOP_FILE"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_signalled = False


def install_stop_handlers() -> None:
    """Turn SIGTERM and SIGUSR1 into a stop request (call from the main thread)."""
    for number in STOP_SIGNALS:
        signal.signal(number, _on_signal)


def _on_signal(number: int, _frame) -> None:
    global _signalled
    if _signalled:  # asked twice: the user (or Slurm) wants out now
        raise Preempted(f"{signal.Signals(number).name} again: stopped without a new checkpoint")
    _signalled = True


def _stop_file() -> Path | None:
    name = os.environ.get(STOP_FILE_ENV)
    return Path(name) if name else None


def stop_requested_here() -> bool:
    """Whether this process was asked to stop (signal or stop file)."""
    stop_file = _stop_file()
    return _signalled or (stop_file is not None and stop_file.exists())


def stop_agreed() -> bool:
    """Whether any rank was asked to stop; every rank gets the same answer (a collective call)."""
    return any_process(stop_requested_here())


def check_stop(where: str) -> None:
    """Between units of work: raise Preempted if a stop was asked for (collective)."""
    if stop_agreed():
        raise Preempted(f"stopped before {where}")


class CheckpointOnStop(TrainerCallback):
    """After each optimizer step: if any rank was asked to stop, save this step and end training."""

    def __init__(self):
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if stop_agreed():
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True
        return control
