"""Logging for the `cpt` command: library modules log through `logging`, the command decides where it goes.

    from cpt.core.log_setup import configure_logging
    configure_logging(verbose=False)   # once, at the start of the command

INFO and above go to stderr as plain lines (the messages are written to be read as they are); `--verbose`
lowers the level to DEBUG. Under a launcher every process runs the same code and meets the same events, so
only the main one (RANK 0, or no RANK) speaks at INFO and WARNING: a stage's progress and warnings appear once,
not once per process. The others say errors only, prefixed with their rank.
Only the `cpt`, `data_mixing` and `eval` loggers are set: the training libraries keep their own settings.
"""

from __future__ import annotations

import logging
import os
import sys

OUR_LOGGERS = ("cpt", "data_mixing", "eval")
_HANDLER_NAME = "cpt-command"


def process_rank() -> int:
    """This process's rank as the launcher (torchrun, accelerate, srun through them) set it; 0 alone."""
    return int(os.environ.get("RANK", "0") or 0)


def level_for(verbose: bool, rank: int) -> int:
    """DEBUG with --verbose, else INFO, on the main process; ERROR on every other one."""
    if rank != 0:
        return logging.ERROR
    return logging.DEBUG if verbose else logging.INFO


def configure_logging(verbose: bool = False, rank: int | None = None) -> int:
    """Send our loggers' records to the current stderr at the level for this process; return that level.

    Called again (tests call the command many times in one process), it replaces its own handler, so a
    record is never written twice."""
    rank = process_rank() if rank is None else rank
    level = level_for(verbose, rank)
    handler = _StderrOfTheMoment()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s" if rank == 0 else f"[rank {rank}] %(message)s"))
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        _drop_ours(logger)
        logger.addHandler(handler)
        logger.setLevel(level)
    return level


class _StderrOfTheMoment(logging.StreamHandler):
    """A StreamHandler that writes to sys.stderr as it is when a record comes, not when the handler was made:
    pytest (and anything else that redirects stderr) swaps it after the command has configured logging."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property above answers instead
        pass


def remove_handlers() -> None:
    """Undo configure_logging (tests: the next test starts without the command's handler)."""
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        _drop_ours(logger)
        logger.setLevel(logging.NOTSET)


def _drop_ours(logger: logging.Logger) -> None:
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
