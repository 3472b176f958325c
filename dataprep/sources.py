"""A run's inputs as blocks for the workers, each file's record kind detected from its first rows.

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
from .ingest import Block, RawRow, check_inputs, detect_format, parse_block, read_blocks
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


def kind_and_blocks(path: Path, recipe: Recipe) -> tuple[str | None, Iterator[Block]]:
    """Parse a file's first blocks here to detect its kind from its first parsable rows, then
    hand back all blocks (the workers parse them again: a few thousand rows, once a file)."""
    blocks = read_blocks(path, recipe.max_row_bytes)
    seen: list[Block] = []
    sample: list[dict[str, Any]] = []
    for block in blocks:
        seen.append(block)
        rows = parse_block(block)
        sample += [r.obj for r in rows if r.obj is not None][: KIND_SAMPLE_ROWS - len(sample)]
        if len(sample) >= KIND_SAMPLE_ROWS:
            break
    kind = FORMAT_KINDS.get(detect_format(path)) or recipe.kind
    if kind is None and sample:
        kind = require_kind(detect_kind(sample, recipe), source_label(path), sample)
    # else: nothing parsable, every row will be rejected whatever the kind

    def replay() -> Iterator[Block]:
        yield from seen
        yield from blocks

    return kind, replay()


def file_blocks(paths: list[Path], recipe: Recipe
                ) -> Iterator[tuple[Path, str, Iterator[Block]]]:
    """Yield (path, kind, blocks) per input, each file's kind checked against the earlier
    files' (one version has one kind); the Ray engine plans its read tasks from this."""
    run_kind: str | None = None
    for path in paths:
        kind, blocks = kind_and_blocks(path, recipe)
        if kind and run_kind and kind != run_kind:
            raise DataprepError(
                f"{source_label(path)}: holds {kind} records but earlier inputs hold "
                f"{run_kind}; one version has one kind, so run them separately or set 'kind' "
                "and 'fields' in the recipe"
            )
        run_kind = run_kind or kind
        yield path, kind or "classification", blocks


def raw_blocks(paths: list[Path], recipe: Recipe) -> Iterator[tuple[str, str, Block]]:
    """Yield (kind, source, block) over all inputs; one version has one kind."""
    for path, kind, blocks in file_blocks(paths, recipe):
        source = source_label(path)
        for block in blocks:
            yield kind, source, block


def raw_batches(paths: list[Path], recipe: Recipe, progress: Progress | None = None
                ) -> Iterator[tuple[str, str, list[RawRow]]]:
    """Yield (kind, source, raw rows) per block over all inputs, parsed in this process."""
    for kind, source, block in raw_blocks(paths, recipe):
        rows = parse_block(block)
        if progress:
            progress(source, len(rows))
        yield kind, source, rows


def validate_only(inputs: list[str | Path], recipe_path: str | Path | None = None,
                  examples: int = 3) -> tuple[int, Counter, dict[str, list[Reject]]]:
    """Read and check inputs without writing anything: rows read, rejects by reason, and the
    first few rejects of each reason (memory stays flat however many rows are bad)."""
    paths = check_inputs(inputs)
    recipe = load_recipe(recipe_path)
    total, by_reason, first = 0, Counter(), {}
    for kind, source, block in raw_blocks(paths, recipe):
        rows = parse_block(block)
        total += len(rows)
        for reject in validate_rows(rows, source, Mapping.for_kind(kind, recipe))[1]:
            by_reason[reject.reason] += 1
            if by_reason[reject.reason] <= examples:
                first.setdefault(reject.reason, []).append(reject)
    return total, by_reason, first
