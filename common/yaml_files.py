"""Settings files read as plain YAML data, safely: the one reader of a recipe, a `train --config`
file and a search space.

A settings file is small, UTF-8 and free of aliases. An alias (`*name`, `<<: *name`) is the one
way a few lines of YAML expand to gigabytes before any check could look at the result (nested
aliases grow exponentially: the "billion laughs"), and no settings file needs one, so aliases are
refused as they are met, naming the line. Anchors alone are harmless and allowed. Hand-written
around PyYAML's safe loader because PyYAML has no switch for either limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import UserError

#: A settings file is a page of settings; anything larger is a mistake (a data file given).
MAX_SETTINGS_BYTES = 1 << 20


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing an alias the moment it is composed."""

    what = "settings file"

    def compose_node(self, parent, index):  # noqa: ANN001 -- PyYAML's own signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} not allowed in a {self.what}: write the "
                "value out", event.start_mark)
        return super().compose_node(parent, index)


def _read_text(path: Path, what: str, error: type[UserError] = UserError) -> str:
    """The file's text, or one line saying why there is none: missing, a folder, too large,
    unreadable, not UTF-8 (a leading byte-order mark is allowed). `what` names the file in the
    message ("recipe file"); `error` is the package's UserError subclass to raise."""
    if path.is_dir():
        raise error(f"{path}: is a folder, not a {what}")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_SETTINGS_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise error(f"{path}: over {MAX_SETTINGS_BYTES >> 20} MB, too large for a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 (byte 0x{data[exc.start]:02x}); save the {what} "
                    "as UTF-8") from None


def read_settings(path: str | Path, what: str, error: type[UserError] = UserError) -> Any:
    """The one YAML document in `path` as plain data (None for an empty file), read with the
    limits above; a YAML mistake is one line naming the file and line."""
    path = Path(path)
    text = _read_text(path, what, error)
    loader = type("Loader", (_NoAliasLoader,), {"what": what})
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())[:200]
        raise error(f"{where}: not valid YAML ({problem})") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise error(f"{path}: nested too deeply to be a {what}") from None
