"""User-facing errors: one clear message, exit code 2, no traceback.

Anything a user can fix (a bad recipe, a missing file, a malformed data line) raises
`UserError`; the CLI prints its message and exits with `USER_ERROR_EXIT`.
"""

USER_ERROR_EXIT = 2
PREEMPTED_EXIT = 75  # EX_TEMPFAIL, "try again": the run was asked to stop and saved its work (sbatch requeues on it)


class UserError(Exception):
    """An error the user can act on. The message names the file, key or line and what was expected."""


class Preempted(Exception):
    """The run stopped because a stop was asked for (cpt/runner/preemption.py); its work so far is saved."""
