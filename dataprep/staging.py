"""The staging file: kept rows of the first pass, in input order, as one Arrow stream.

Dedup and split decide on row numbers of this file; later stages read back only the rows they
need (candidate pairs' shingles, augmentation parents) batch by batch, never the whole file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from .kinds import RecordKind


def staged_schema(kind: RecordKind) -> pa.Schema:
    """Rows in the staging file: the validated record plus the `lang` the first pass adds."""
    return kind.record_schema().append(pa.field("lang", pa.string()))


def take_rows(staging: Path, rows: np.ndarray) -> pa.Table:
    """The given staging rows (sorted, unique) as one table, in row order."""
    wanted = np.unique(rows)
    parts, lo, schema = [], 0, None
    with pa.OSFile(str(staging)) as source:
        reader = pa.ipc.open_stream(source)
        schema = reader.schema
        for batch in reader:
            hi = lo + batch.num_rows
            here = wanted[(wanted >= lo) & (wanted < hi)]
            if here.size:
                parts.append(pa.Table.from_batches([batch]).take(pa.array(here - lo)))
            lo = hi
    return pa.concat_tables(parts) if parts else schema.empty_table()


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
