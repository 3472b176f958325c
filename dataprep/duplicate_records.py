"""The `duplicate_of` details of removal records: the id and source of the kept row each
duplicate names, read back only for the rows removals name (holding them for every row is what
grew at 1M rows). A child's plan also names its parent's rows, whose ids and sources its lineage
keeps. Also the texts of the few duplicates the report shows, beside the rows they copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from .plan import Plan
from .stage import EXAMPLE_KEY, EXAMPLE_ROWS, example_text
from .staging import staged_rows


@dataclass
class Named:
    """Id and source of each row a removal names (sorted `rows`), read back once for the whole
    second pass."""

    rows: np.ndarray
    ids: pa.Array
    sources: pa.Array

    @classmethod
    def owners(cls, staging: Path, plan: Plan) -> Named:
        """The rows the plan's duplicates name; a child's plan names parent rows below
        `plan.offset` (their ids and sources come from its lineage)."""
        near_of = plan.near.dup_of if plan.near else np.full(len(plan.exact_dup_of), -1)
        target = np.where(plan.exact_dup_of >= 0, plan.exact_dup_of, near_of)
        rows = np.unique(target[target >= 0])
        old = rows[rows < plan.offset]
        tables = [plan.parent.keys.take(pa.array(old))] if old.size else []
        tables += [t for _, t in staged_rows(staging, rows[rows >= plan.offset] - plan.offset,
                                             columns=["id", "source"])]

        def joined(column: str) -> pa.Array:
            chunks = [c.cast(pa.string()) for t in tables for c in t.column(column).chunks]
            return pa.chunked_array(chunks, pa.string()).combine_chunks()

        return cls(rows, joined("id"), joined("source"))

    def take(self, rows: np.ndarray) -> tuple[list[str], list[str]]:
        at = pa.array(np.searchsorted(self.rows, rows))
        return self.ids.take(at).to_pylist(), self.sources.take(at).to_pylist()


def duplicate_reasons(plan: Plan, named: Named, lo: int, hi: int
                      ) -> tuple[pa.Array, dict[str, list]]:
    """Reasons and `duplicate_of` details for rows lo..hi of the staging file."""
    exact = plan.exact_dup_of[lo:hi]
    near_of = plan.near.dup_of[lo:hi] if plan.near else np.full(hi - lo, -1)
    target = np.where(exact >= 0, exact, near_of)
    reasons = np.where(exact >= 0, "duplicate:exact",
                       np.where(near_of >= 0, "duplicate:near", None)).astype(object)
    dropped = target >= 0
    ids, sources = named.take(target[dropped])
    sims = np.where(exact >= 0, 1.0, plan.near.similarity[lo:hi] if plan.near else 0.0)[dropped]
    extra = {"duplicate_of": ids, "duplicate_of_source": sources,
             "similarity": [round(float(x), 4) for x in sims]}
    return pa.array(reasons, pa.string()), extra


def shown_duplicates(staging: Path, kind, plan: Plan) -> dict[int, dict[str, str]]:
    """The texts of the duplicates the report shows (the first EXAMPLE_ROWS of each reason, in
    staging order, as the second pass meets them) and of the rows they duplicate, by staging
    row: read back for those few rows only."""
    exact = plan.exact_dup_of
    near = plan.near.dup_of if plan.near else np.full(len(exact), -1)
    rows = np.concatenate([np.flatnonzero(exact >= 0)[:EXAMPLE_ROWS],
                           np.flatnonzero((exact < 0) & (near >= 0))[:EXAMPLE_ROWS]])
    if not rows.size:
        return {}
    kept = np.where(exact[rows] >= 0, exact[rows], near[rows])  # owner numbers (a child's
    texts = {}                                 # parent rows first, then staging rows)
    staged = np.concatenate([rows + plan.offset, kept[kept >= plan.offset]])
    parts = [(n + plan.offset, t) for n, t in staged_rows(staging, staged - plan.offset)]
    if plan.parent is not None:
        parts += list(plan.parent.tables(kept[kept < plan.offset]))
    for numbers, table in parts:
        texts.update(zip(numbers.tolist(), map(example_text, kind.row_text(table).to_pylist()),
                         strict=True))
    return {row: {"text": texts[row + plan.offset], "duplicate_of_text": texts[of]}
            for row, of in zip(rows.tolist(), kept.tolist(), strict=True)}


def attach_examples(records: list[dict], keep: pa.Array, lo: int, shown: dict) -> None:
    """Give the removal records of the shown duplicates (`shown_duplicates`) their texts."""
    if shown:
        rows = lo + np.flatnonzero(~keep.to_numpy(zero_copy_only=False))
        for record, row in zip(records, rows.tolist(), strict=True):
            if row in shown:
                record[EXAMPLE_KEY] = shown[row]
