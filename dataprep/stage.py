"""What a first-pass stage is, and how a batch runs through a list of them.

A stage is a callable over a `Batch` (an Arrow table of one kind's validated rows and their whole
texts) that returns a `Verdict`: a named reason for each row it drops (null for rows it keeps),
optionally the rewritten table (cleaning) or keys for later decisions (dedup), extras for the
dropped rows, and counters for the report. Stages never write files or count rows: `run_stages`
applies verdicts and collects the removals, and the pipeline writes and counts them (as
datatrove's filters return a verdict and their base class writes the exclusions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kinds import RecordKind


@dataclass
class Batch:
    """The rows a stage sees: a table of one kind, and each row's whole text (computed once)."""

    table: pa.Table
    kind: RecordKind
    _texts: pa.Array | None = None

    @property
    def texts(self) -> pa.Array:
        if self._texts is None:
            self._texts = self.kind.row_text(self.table)
        return self._texts

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


@dataclass
class Verdict:
    """What a stage says of a batch. Every field is optional: a stage that only counts or only
    computes keys leaves `reasons` None (it keeps every row)."""

    reasons: pa.Array | None = None           # string per row, null where the row is kept
    table: pa.Table | None = None             # the rows rewritten or annotated, same order
    texts_changed: bool = True                # False when `table` only adds columns
    extra: dict[str, list] | None = None      # per dropped row (duplicate_of, similarity)
    counters: dict[str, Counter] = field(default_factory=dict)  # RunCounts attribute -> counts
    keys: dict[str, np.ndarray] | None = None  # per kept row, for corpus-wide decisions


class Stage:
    """A first-pass stage; `name` is the `stage` its removals carry in removed.jsonl."""

    name: str = ""

    def __call__(self, batch: Batch) -> Verdict:
        raise NotImplementedError


@dataclass
class StagesOutcome:
    """A batch after every stage: the rows kept, what was removed and why, counters, keys."""

    batch: Batch
    removed: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Counter] = field(default_factory=dict)
    keys: dict[str, np.ndarray] = field(default_factory=dict)
    kept: np.ndarray | None = None    # the input rows kept, as row numbers of the input batch


def run_stages(stages: list[Stage], batch: Batch, examples: bool = False) -> StagesOutcome:
    """Run the stages in order, each on the rows the earlier ones kept; with `examples`, the
    first few removals of each reason carry their text (`add_example_texts`)."""
    out = StagesOutcome(batch, kept=np.arange(batch.num_rows))
    for stage in stages:
        verdict = stage(out.batch)
        if verdict.table is not None:
            texts = None if verdict.texts_changed else out.batch._texts
            out.batch = Batch(verdict.table, out.batch.kind, texts)
        for name, counts in verdict.counters.items():
            out.counters.setdefault(name, Counter()).update(counts)
        if verdict.keys is not None:
            out.keys = verdict.keys
        if verdict.reasons is not None:
            keep, records = removed_records(out.batch.table, verdict.reasons, stage.name,
                                            verdict.extra)
            if examples:
                add_example_texts(records, out.batch, keep)
            out.removed += records
            if records:
                texts = out.batch._texts.filter(keep) if out.batch._texts is not None else None
                out.batch = Batch(out.batch.table.filter(keep), out.batch.kind, texts)
                out.kept = out.kept[keep.to_numpy(zero_copy_only=False)]
    return out


def removed_records(table: pa.Table, reasons: pa.Array, stage: str,
                    extra: dict[str, list] | None = None) -> tuple[pa.Array, list[dict]]:
    """The keep mask and one removed.jsonl record per row that has a reason; `extra` adds
    per-dropped-row fields (duplicate_of, similarity)."""
    dropped = pc.is_valid(reasons)
    if not pc.any(dropped).as_py():
        return pc.invert(dropped), []
    gone = table.filter(dropped).select(["id", "source"]).to_pylist()
    gone_reasons = pc.filter(reasons, dropped).to_pylist()
    records = []
    for i, (row, reason) in enumerate(zip(gone, gone_reasons, strict=True)):
        record = {**row, "stage": stage, "reason": reason}
        for key, values in (extra or {}).items():
            record[key] = values[i]
        records.append(record)
    return pc.invert(dropped), records


#: The key of a removal record that carries the row's text for the report's examples; the
#: pipeline takes it off before the record is written to removed.jsonl.
EXAMPLE_KEY = "_example"
#: Characters of a row's text an example keeps (the whole row is in the input file).
EXAMPLE_CHARS = 300
#: Rows a reason per batch whose text travels with their record: the report shows this many
#: examples a reason, so more would be pickled from the workers for nothing.
EXAMPLE_ROWS = 3


def add_example_texts(records: list[dict], batch: Batch, keep: pa.Array) -> None:
    """Give the first EXAMPLE_ROWS records of each reason their row's text (EXAMPLE_CHARS at
    most), so the report can show what was removed; only those rows' texts are computed."""
    if not records:
        return
    taken: dict[str, int] = {}
    picked = []
    for i, record in enumerate(records):
        if taken.get(record["reason"], 0) < EXAMPLE_ROWS:
            taken[record["reason"]] = taken.get(record["reason"], 0) + 1
            picked.append(i)
    dropped = np.flatnonzero(~keep.to_numpy(zero_copy_only=False))
    rows = batch.table.take(pa.array(dropped[picked]))
    for i, text in zip(picked, batch.kind.row_text(rows).to_pylist(), strict=True):
        records[i][EXAMPLE_KEY] = {"text": example_text(text)}


def example_text(text: str | None) -> str:
    """A row's text as an example shows it: EXAMPLE_CHARS at most, an ellipsis where cut."""
    text = text or ""
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…"
