"""A user's own filter from the recipe, run as a first-pass stage without touching the package.

```yaml
custom_stages:
  - {name: no_refunds, function: "my_filters.py:drop_refunds", after: filter}
```
`function` is `file.py:name` (relative to the recipe file's folder) or `package.module:name`. It
is called with the batch (a `pyarrow.Table`: id, source, group, meta, the kind's columns and, after
`language`, lang) and the rows' whole texts (a `pyarrow.Array` of strings), and returns one reason
(a string) or None per row. Its drops carry `stage` = the entry's name. The function's source file
is hashed into the version id, so editing the filter makes a new version.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from . import settings
from .errors import DataprepError
from .stage import Batch, Stage, Verdict


def _split(spec: str) -> tuple[str, str]:
    target, _, attr = spec.rpartition(":")
    return target, attr


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target


def source_file(entry: settings.CustomStage, base_dir: Path) -> Path:
    """The file the entry's function is defined in (for the version id)."""
    target, _ = _split(entry.function)
    if _is_file(target):
        path = (base_dir / target).resolve()
        if not path.is_file():
            raise DataprepError(f"custom stage {entry.name!r}: {path} not found")
        return path
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise DataprepError(f"custom stage {entry.name!r}: module {target!r} not found")
    return Path(spec.origin)


def load_function(spec: str, base_dir: Path, name: str) -> Any:
    """The callable named by `spec`, imported once per process (workers load it themselves)
    and per content of its file: a file edited since (a long-lived process making a child with
    `--recipe-change`) is imported again, so the code run is the code the version records."""
    target, _ = _split(spec)
    path = (base_dir / target).resolve() if _is_file(target) else None
    content = hashlib.sha256(path.read_bytes()).hexdigest() if path and path.is_file() else ""
    return _import_function(spec, base_dir, name, content)


@cache
def _import_function(spec: str, base_dir: Path, name: str, content: str) -> Any:
    target, attr = _split(spec)
    try:
        if _is_file(target):
            path = (base_dir / target).resolve()
            module_name = f"dataprep_custom_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}" \
                f"_{content[:12]}"
            loader_spec = importlib.util.spec_from_file_location(module_name, path)
            if loader_spec is None or not path.is_file():
                raise DataprepError(f"custom stage {name!r}: {path} not found")
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[module_name] = module
            loader_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(target)
    except DataprepError:
        raise
    except Exception as exc:  # the user's module failed to import: name it, in one line
        raise DataprepError(f"custom stage {name!r}: importing {target!r} failed: "
                            f"{type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise DataprepError(f"custom stage {name!r}: {target!r} has no function {attr!r}")
    return fn


def fingerprint(entries: list[settings.CustomStage], base_dir: Path) -> list[dict[str, str]]:
    """Each entry's function and the sha256 of its source file: part of the version id."""
    out = []
    for entry in entries:
        load_function(entry.function, base_dir, entry.name)  # fail before any work is done
        digest = hashlib.sha256(source_file(entry, base_dir).read_bytes()).hexdigest()
        out.append({"name": entry.name, "function": entry.function, "sha256": digest})
    return out


class CustomStage(Stage):
    """Runs the user's function on a batch and checks what it returns."""

    def __init__(self, entry: settings.CustomStage, base_dir: Path) -> None:
        self.name, self.spec, self.base_dir = entry.name, entry.function, base_dir

    def __call__(self, batch: Batch) -> Verdict:
        fn = load_function(self.spec, self.base_dir, self.name)
        try:
            result = fn(batch.table, batch.texts)
        except Exception as exc:
            raise DataprepError(f"custom stage {self.name!r} ({self.spec}) raised "
                                f"{type(exc).__name__}: {exc}") from None
        return Verdict(reasons=self._checked(result, batch.num_rows))

    def _checked(self, result: Any, n: int) -> pa.Array:
        """The function's reasons as a string array, or a one-line error saying what is wrong."""
        if isinstance(result, pa.ChunkedArray):
            result = result.combine_chunks()
        values = result.to_pylist() if isinstance(result, pa.Array) else result
        try:
            values = list(values)
        except TypeError:
            raise DataprepError(f"custom stage {self.name!r} ({self.spec}) returned "
                                f"{type(result).__name__}, expected one reason or None per "
                                "row") from None
        if len(values) != n:
            raise DataprepError(f"custom stage {self.name!r} ({self.spec}) returned "
                                f"{len(values)} reasons for {n} rows")
        for value in values:
            if value is not None and (not isinstance(value, str) or not value):
                raise DataprepError(f"custom stage {self.name!r} ({self.spec}) returned "
                                    f"{value!r}; a reason is a non-empty string or None")
        return pa.array(values, pa.string())
