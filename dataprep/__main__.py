"""`python -m dataprep` is the `dataprep` command."""

from .cli import main

main()
