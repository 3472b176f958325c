"""The exception a user's mistake raises, and how a command line reports it.

The CLI prints it as a single line (no traceback) and exits 1, so every message must say what is
wrong and where: the file, the line and the field when there is one. `dataprep` raises its
subclass `DataprepError`, `train` its subclass `TrainError`; both CLIs catch the base.
"""

import sys
from collections.abc import Callable

from .terminal import printable


class UserError(Exception):
    """A problem with the user's input, recipe, store, model or request, not a bug."""

    #: The exit status: 1, or 2 for a subclass that reports a usage error (a bad flag).
    exit_code = 1


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of a library's exception message (its type name when it has
    none), cut to `limit` characters: what a one-line error quotes of the cause."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]


def error_line(exc: BaseException) -> str:
    """The one line a CLI prints for a user's mistake: `error: ` and the message, with the
    controls and newlines a message may quote from the data shown as visible escapes."""
    return f"error: {printable(exc)}"


def run_command(app: Callable[[], object]) -> None:
    """Run a CLI app: typer handles usage errors (exit 2); a user's mistake is one line on
    stderr and exit 1 (shared by `dataprep` and `train`)."""
    try:
        app()
    except UserError as exc:
        print(error_line(exc), file=sys.stderr)  # one line, whatever the data held
        sys.exit(exc.exit_code)
