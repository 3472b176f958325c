"""The staging file: kept rows of the first pass, in input order, as one Arrow stream.

Dedup and split decide on row numbers of this file; later stages read back only the rows they
need (candidate pairs' shingles, augmentation parents, the ids that removals name) batch by
batch, never the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from .kinds import RecordKind


def staged_schema(kind: RecordKind) -> pa.Schema:
    """Rows in the staging file: the validated record plus the `lang` the first pass adds."""
    return kind.record_schema().append(pa.field("lang", pa.string()))


def take_rows(staging: Path, rows: np.ndarray) -> pa.Table:
    """The given staging rows as one table, in row order."""
    parts = [table for _, table in staged_rows(staging, rows)]
    if parts:
        return pa.concat_tables(parts)
    with pa.OSFile(str(staging)) as source:
        return pa.ipc.open_stream(source).schema.empty_table()


def staged_values(staging: Path, rows: np.ndarray, column: str) -> pa.Array:
    """One column's values of the given staging rows, in the order of `rows` (repeats allowed):
    the ids and sources that removals and the leakage examples name are read back here rather
    than held for every row."""
    rows = np.asarray(rows, dtype=np.int64)
    wanted, inverse = np.unique(rows, return_inverse=True)
    parts = [table.column(column) for _, table in staged_rows(staging, wanted, columns=[column])]
    values = pa.chunked_array(parts, pa.string()).combine_chunks() if parts else \
        pa.array([], pa.string())
    return values.take(pa.array(inverse.astype(np.int64)))


def staged_rows(staging: Path, rows: np.ndarray, group: int | None = None,
                columns: list[str] | None = None) -> Iterator[tuple[np.ndarray, pa.Table]]:
    """(row numbers, their rows) of the given staging rows, in row order, at most `group` rows
    a table (default: one table a staging batch that has any), reading the file batch by
    batch; only `columns` when given."""
    wanted = np.unique(rows)
    parts, numbers, held, lo = [], [], 0, 0
    with pa.OSFile(str(staging)) as source:
        for batch in pa.ipc.open_stream(source):
            if not wanted.size or lo > wanted[-1]:  # past the last row asked for: stop reading
                break
            start, lo = lo, lo + batch.num_rows
            here = wanted[np.searchsorted(wanted, start):np.searchsorted(wanted, lo)]
            if not here.size:
                continue
            table = pa.Table.from_batches([batch])
            table = table.select(columns) if columns else table
            parts.append(table.take(pa.array(here - start)))
            numbers.append(here)
            held += here.size
            if group is None or held >= group:
                yield np.concatenate(numbers), pa.concat_tables(parts)
                parts, numbers, held = [], [], 0
    if parts:
        yield np.concatenate(numbers), pa.concat_tables(parts)


def with_provenance(table: pa.Table, origin: str | pa.Array = "original",
                    augmenter: pa.Array | None = None, parent_id: pa.Array | None = None
                    ) -> pa.Table:
    """Append the provenance columns every output row carries: `origin` is `original` for input
    rows, else the augmentation kind; `augmenter` and `parent_id` say which backend made it from
    which row (null for input rows)."""
    n = table.num_rows
    if isinstance(origin, str):
        origin = pa.array(np.full(n, origin, dtype=object), pa.string())
    table = table.append_column("origin", origin)
    table = table.append_column("augmenter", augmenter if augmenter is not None
                                else pa.nulls(n, pa.string()))
    return table.append_column("parent_id", parent_id if parent_id is not None
                               else pa.nulls(n, pa.string()))
