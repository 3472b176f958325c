"""Compact per-row keys collected in the first pass; dedup and split decide on these alone.

Per row: id and source (Arrow strings, for naming what a removed row duplicates), two 64-bit
hashes of the normalised word sequence, the MinHash signature (appended to a file in the version's
temporary directory and memory-mapped, so 1M rows x 128 slots never sit in RAM), length, label,
group and language codes. Memory grows with rows, not with their text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Where the collector appends signatures, inside the version's temporary directory.
SIGNATURES_FILE = ".signatures.u32"


class Codes:
    """Stable integer codes for the distinct values of a column, assigned as they appear."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def encode(self, values: pa.Array) -> np.ndarray:
        encoded = pc.dictionary_encode(values)
        local = [self.index.setdefault(v, len(self.index)) if v is not None else -1
                 for v in encoded.dictionary.to_pylist()]
        lookup = np.asarray(local + [-1], dtype=np.int64)
        idx = pc.fill_null(encoded.indices, len(local)).to_numpy(zero_copy_only=False)
        return lookup[idx]

    def names(self) -> list[str]:
        return sorted(self.index, key=self.index.get)


@dataclass
class Keys:
    ids: pa.Array
    sources: pa.Array
    exact: np.ndarray      # (n, 2) uint64
    sigs: Any              # (n, num_perm) uint32, memory-mapped
    chars: np.ndarray
    labels: np.ndarray     # label code, -1 when the kind has none
    label_names: list[str]
    groups: np.ndarray     # group code, -1 when none
    langs: np.ndarray
    lang_names: list[str]

    def __len__(self) -> int:
        return len(self.exact)


class KeyCollector:
    """Accumulates Keys batch by batch."""

    def __init__(self, tmp: Path, dedup: dict[str, Any]) -> None:
        self.sig_path = tmp / SIGNATURES_FILE
        self.sig_file = self.sig_path.open("wb")
        self.num_perm = dedup["num_perm"]
        self.parts: dict[str, list] = {k: [] for k in ("ids", "sources", "exact", "chars",
                                                        "labels", "groups", "langs")}
        self.label_codes, self.group_codes, self.lang_codes = Codes(), Codes(), Codes()

    def add(self, table: pa.Table, exact: np.ndarray, sigs: np.ndarray, chars: np.ndarray
            ) -> None:
        """Append one batch: its kept rows and the keys the batch work computed for them."""
        p = self.parts
        p["ids"].append(table.column("id").combine_chunks())
        p["sources"].append(table.column("source").combine_chunks())
        p["exact"].append(exact)
        p["chars"].append(chars)
        if "label" in table.column_names:
            p["labels"].append(self.label_codes.encode(table.column("label").combine_chunks()))
        else:
            p["labels"].append(np.full(table.num_rows, -1, dtype=np.int64))
        p["groups"].append(self.group_codes.encode(table.column("group").combine_chunks()))
        p["langs"].append(self.lang_codes.encode(table.column("lang").combine_chunks()))
        np.ascontiguousarray(sigs, dtype=np.uint32).tofile(self.sig_file)

    def finish(self) -> Keys:
        self.sig_file.close()
        p = self.parts

        def cat(name, dtype):
            return np.concatenate(p[name]) if p[name] else np.zeros(0, dtype=dtype)

        exact = np.concatenate(p["exact"]) if p["exact"] else np.zeros((0, 2), np.uint64)
        n = len(exact)
        sigs = (np.memmap(self.sig_path, dtype=np.uint32, mode="r", shape=(n, self.num_perm))
                if n else np.zeros((0, self.num_perm), np.uint32))

        def strings(name):
            return pa.concat_arrays(p[name]) if p[name] else pa.array([], pa.string())

        return Keys(strings("ids"), strings("sources"), exact, sigs, cat("chars", np.int64),
                    cat("labels", np.int64), self.label_codes.names(), cat("groups", np.int64),
                    cat("langs", np.int64), self.lang_codes.names())
