"""A run's inputs as batches of raw rows, each file's record kind detected from its first rows.

One version holds one kind: a file whose kind differs from the earlier files' is refused with a
one-line error. Also `validate_only`, which reads and checks the inputs and writes nothing.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import DataprepError
from .ingest import RawRow, check_inputs, detect_format, read_batches
from .recipe import load_recipe
from .settings import Recipe
from .validate import Mapping, Reject, detect_kind, require_kind, validate_rows

Progress = Callable[[str, int], None]
KIND_SAMPLE_ROWS = 200
#: Input formats that imply a kind whatever the recipe says (a transcript is a conversation).
FORMAT_KINDS = {"transcript": "chat"}


def source_label(path: Path) -> str:
    """How a file is named in `source` columns and the manifest."""
    return os.path.normpath(str(path))


def _kind_and_batches(path: Path, recipe: Recipe) -> tuple[str | None, Iterator[list[RawRow]]]:
    """Peek at a file's first parsable rows to detect its kind, then hand back all batches."""
    batches = read_batches(path)
    seen: list[list[RawRow]] = []
    sample: list[dict[str, Any]] = []
    for batch in batches:
        seen.append(batch)
        sample += [r.obj for r in batch if r.obj is not None][: KIND_SAMPLE_ROWS - len(sample)]
        if len(sample) >= KIND_SAMPLE_ROWS:
            break
    kind = FORMAT_KINDS.get(detect_format(path)) or recipe.kind
    if kind is None and sample:
        kind = require_kind(detect_kind(sample, recipe), source_label(path), sample)
    # else: nothing parsable, every row will be rejected whatever the kind

    def replay() -> Iterator[list[RawRow]]:
        yield from seen
        yield from batches

    return kind, replay()


def raw_batches(paths: list[Path], recipe: Recipe, progress: Progress | None = None
                ) -> Iterator[tuple[str, str, list[RawRow]]]:
    """Yield (kind, source, raw rows) per batch over all inputs; one version has one kind."""
    run_kind: str | None = None
    for path in paths:
        source = source_label(path)
        kind, batches = _kind_and_batches(path, recipe)
        if kind and run_kind and kind != run_kind:
            raise DataprepError(
                f"{source}: holds {kind} records but earlier inputs hold {run_kind}; one version "
                "has one kind, so run them separately or set 'kind' and 'fields' in the recipe"
            )
        run_kind = run_kind or kind
        for batch in batches:
            if progress:
                progress(source, len(batch))
            yield kind or "classification", source, batch


def validate_only(inputs: list[str | Path], recipe_path: str | Path | None = None,
                  examples: int = 3) -> tuple[int, Counter, dict[str, list[Reject]]]:
    """Read and check inputs without writing anything: rows read, rejects by reason, and the
    first few rejects of each reason (memory stays flat however many rows are bad)."""
    paths = check_inputs(inputs)
    recipe = load_recipe(recipe_path)
    total, by_reason, first = 0, Counter(), {}
    for kind, source, rows in raw_batches(paths, recipe):
        total += len(rows)
        for reject in validate_rows(rows, source, Mapping.for_kind(kind, recipe))[1]:
            by_reason[reject.reason] += 1
            if by_reason[reject.reason] <= examples:
                first.setdefault(reject.reason, []).append(reject)
    return total, by_reason, first
