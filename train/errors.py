"""The error a user's mistake in `train` raises (flags, config file, dataset, model, run
directory); the CLI prints it as one line, see `common.errors`."""

from common.errors import UserError


class TrainError(UserError):
    """A problem with the user's settings, dataset version, model or run directory."""
