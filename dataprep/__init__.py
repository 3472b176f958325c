"""dataprep: raw logs in, an audited, versioned Arrow dataset out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dataprep-train")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

#: Bumped when the on-disk shape of a version (columns, manifest, report) changes.
SCHEMA_VERSION = 1
