"""The one error type `eval` raises for bad input a user can fix (unknown task, missing checkpoint,
missing backend). Callers turn it into a one-line message and exit code 2."""


class EvalInputError(ValueError):
    """A problem with what evaluation was asked to do, stated so the user can act on it."""
