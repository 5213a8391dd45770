"""User-facing errors: one clear message, exit code 2, no traceback.

Anything a user can fix (a bad recipe, a missing file, a malformed data line) raises
`UserError`; the CLI prints its message and exits with `USER_ERROR_EXIT`.
`as_user_error(function, *args, key=...)` restates eval's EvalInputError (and our own) as one UserError.
"""

from eval.errors import EvalInputError

USER_ERROR_EXIT = 2
DIVERGED_EXIT = 3  # a stage met a non-finite loss or gradient (cpt/stages/bad_batches.py)
STORAGE_EXIT = 74  # EX_IOERR: the disk is full or the output is not writable (cpt/core/storage.py)
PREEMPTED_EXIT = 75  # EX_TEMPFAIL, "try again": the run was asked to stop and saved its work (sbatch requeues on it)


class UserError(Exception):
    """An error the user can act on. The message names the file, key or line and what was expected."""


class Preempted(Exception):
    """The run stopped because a stop was asked for (cpt/core/preemption.py); its work so far is saved."""


class TrainingDiverged(Exception):
    """A stage met a non-finite loss or gradient and stopped before the update; its checkpoints are good."""


class StorageError(Exception):
    """Writing the run failed for lack of space or permission; nothing half-written counts as done."""


def as_user_error(function, *args, key: str | None = None):
    """`function(*args)`; a user-fixable error it raises (a UserError, or eval's EvalInputError: eval knows
    nothing of cpt) becomes a UserError, its message prefixed with the recipe `key` it came from if given."""
    try:
        return function(*args)
    except (UserError, EvalInputError) as exc:
        raise UserError(f"{key}: {exc}" if key else str(exc)) from None
