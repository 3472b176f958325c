"""The errors a user's mistake in `train` raises (flags, config file, dataset, model, run
directory); the CLI prints each as one line, see `common.errors`."""

from common.errors import UserError


class TrainError(UserError):
    """A problem with the user's settings, dataset version, model or run directory (exit 1)."""


class TrainUsageError(TrainError):
    """A flag that is missing, unknown or out of its range on the command line: exit 2, as
    click's own usage errors, so a script can tell a mistyped command from bad data."""

    exit_code = 2
