"""The one exception type a user's mistake raises.

The CLI prints it as a single line (no traceback) and exits 1, so every message must say what is
wrong and where: the file, the line and the field when there is one.
"""


class DataprepError(Exception):
    """A problem with the user's input, recipe, store or request, not a bug in dataprep."""
