"""User-facing errors: one clear message, exit code 2, no traceback.

Anything a user can fix (a bad recipe, a missing file, a malformed data line) raises
`UserError`; the CLI prints its message and exits with `USER_ERROR_EXIT`.
"""

USER_ERROR_EXIT = 2


class UserError(Exception):
    """An error the user can act on. The message names the file, key or line and what was expected."""
