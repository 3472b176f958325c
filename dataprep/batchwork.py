"""The first pass's work on one batch: validate, clean, language ID, filters, dedup keys.

A pure function of (kind, source, raw rows, recipe) that writes nothing, so the pipeline can run
it in worker processes (one batch each, results consumed in input order) and then write files and
count rows itself, in one place.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .clean import clean_table, empty_after_clean
from .filters import filter_reasons
from .ingest import RawRow
from .langid import detect_languages
from .minhash import BASES, sequence_hashes, signatures, words_of
from .textview import normalise_for_dedup, row_text
from .validate import Mapping, Reject, validate_rows


@dataclass
class BatchOutcome:
    """What one batch produced: kept rows with their keys, and everything dropped, with why."""

    kind: str
    rows_read: int
    table: pa.Table | None
    rejects: list[Reject]
    removed: list[dict[str, Any]] = field(default_factory=list)
    cleaned: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    exact: np.ndarray | None = None   # (rows, 2) uint64 keys of the normalised word sequence
    sigs: np.ndarray | None = None    # (rows, num_perm) uint32 MinHash signatures
    chars: np.ndarray | None = None   # length of each row's whole text


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


def process_batch(kind: str, source: str, rows: list[RawRow], recipe: dict[str, Any]
                  ) -> BatchOutcome:
    table, rejects = validate_rows(rows, source, Mapping.for_kind(kind, recipe))
    out = BatchOutcome(kind, len(rows), None, rejects)
    if table.num_rows == 0:
        return out
    table, out.cleaned, out.pii = clean_table(table, kind, recipe["clean"])
    keep, gone = removed_records(table, empty_after_clean(table, kind), "clean")
    table = table.filter(keep)
    out.removed += gone

    texts = row_text(table, kind)
    langs = detect_languages(texts, recipe["language_backend"])
    table = table.append_column("lang", pa.array(langs, pa.string()))
    out.languages.update(langs.tolist())
    if recipe["languages"]:
        reasons = np.where(np.isin(langs, recipe["languages"]), None,
                           np.char.add("language:", langs.astype(str)))
        keep, gone = removed_records(table, pa.array(reasons, pa.string()), "language")
        table, texts = table.filter(keep), texts.filter(keep)
        out.removed += gone
    reasons, _ = filter_reasons(texts, recipe["filters"])
    keep, gone = removed_records(table, reasons, "filter")
    table, texts = table.filter(keep), texts.filter(keep)
    out.removed += gone

    dedup = recipe["dedup"]
    words = words_of(normalise_for_dedup(texts))
    out.table = table
    out.exact = np.stack([sequence_hashes(words, b) for b in BASES], axis=1)
    out.sigs = signatures(words, dedup["num_perm"], dedup["ngram"])
    out.chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    return out
