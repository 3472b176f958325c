"""The error a user's mistake in `dataprep` raises (input, recipe, store); see `common.errors`."""

from common.errors import UserError


class DataprepError(UserError):
    """A problem with the user's input, recipe or store, not a bug in dataprep."""
