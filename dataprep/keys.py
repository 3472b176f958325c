"""Compact per-row keys collected in the first pass; dedup and split decide on these alone.

Per row: two 64-bit
hashes of the normalised word sequence, the MinHash signature (the pipeline appends signatures to
a file in the version's temporary directory and reads rows back from it, `SignatureFile`, so 1M
rows x 128 slots never sit in RAM), length, label, group and language codes. Memory grows with
rows, not with their text. Ids and sources are not kept: the few that a removal or a leak names
are read back from the staging file (`staging.staged_values`). `DedupKeys` is the last first-pass
stage: it computes the hashes and signatures of a batch.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import settings
from .minhash import BASES, sequence_hashes, signatures, words_of
from .stage import Batch, Stage, Verdict
from .textview import normalise_for_dedup


class DedupKeys(Stage):
    """Exact keys (two 64-bit hashes of the normalised word sequence), MinHash signatures and
    text lengths of every row: what dedup, the split and the leakage check decide on."""

    name = "dedup_keys"

    def __init__(self, opts: settings.Dedup) -> None:
        self.opts = opts

    def __call__(self, batch: Batch) -> Verdict:
        words = words_of(normalise_for_dedup(batch.texts))
        return Verdict(keys={
            "exact": np.stack([sequence_hashes(words, b) for b in BASES], axis=1),
            "sigs": signatures(words, self.opts.num_perm, self.opts.ngram),
            "chars": pc.utf8_length(batch.texts).to_numpy(zero_copy_only=False).astype(np.int64)})


class SignatureFile:
    """The signature file as a read-only (rows x num_perm) uint32 matrix, read with plain file
    reads, never memory-mapped.

    A mapped page counts in the process's resident memory once touched, and the kernel maps
    file pages in large blocks (one random row of a 100 MB file made 7 MB resident here), so
    reading the pairs' rows of a 1M-row matrix (512 MB) through a map would make nearly all of
    it resident. Reads keep only the rows asked for; the kernel's page cache serves repeats."""

    #: Rows closer than this are read in one request (fewer calls; a few KB more read).
    GAP = 32

    def __init__(self, path: Path, rows: int, num_perm: int) -> None:
        self.path, self.shape = path, (rows, num_perm)
        self.row_bytes = num_perm * 4
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self.shape[0]

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            os.close(self._fd)

    def __getitem__(self, idx) -> np.ndarray:
        """Rows `idx` (an int array or a slice), in that order."""
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(self.shape[0]))
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size == 0:
            return np.zeros((0, self.shape[1]), np.uint32)
        if idx.size == 1 or (np.diff(idx) > 0).all():  # sorted (chunks of row ranges)
            wanted, inverse = idx, None
        else:
            wanted, inverse = np.unique(idx, return_inverse=True)
        if wanted[0] < 0 or wanted[-1] >= self.shape[0]:
            raise IndexError("signature row out of range")
        if wanted[-1] - wanted[0] + 1 == wanted.size:  # one run of consecutive rows
            block = self._read(int(wanted[0]), int(wanted[-1]) + 1)
            return block if inverse is None else block[inverse]
        # runs of nearby rows, each read with one request
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(wanted) > self.GAP) + 1,
                               [wanted.size]]).tolist()
        out = np.empty((wanted.size, self.shape[1]), np.uint32)
        for a, b in itertools.pairwise(cuts):
            lo = int(wanted[a])
            out[a:b] = self._read(lo, int(wanted[b - 1]) + 1)[wanted[a:b] - lo]
        return out if inverse is None else out[inverse]

    def _read(self, lo: int, hi: int) -> np.ndarray:
        size = (hi - lo) * self.row_bytes
        data = os.pread(self._fd, size, lo * self.row_bytes)
        if len(data) != size:
            raise OSError(f"{self.path}: short read of the signature file")
        return np.frombuffer(data, dtype=np.uint32).reshape(hi - lo, self.shape[1])


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
    ids: pa.Array | None      # None when collected by KeyCollector (read from the staging file)
    sources: pa.Array | None
    exact: np.ndarray      # (n, 2) uint64
    sigs: Any              # (n, num_perm) uint32, a SignatureFile
    chars: np.ndarray      # text length (int32, like the codes)
    labels: np.ndarray     # label code, -1 when the kind has none
    label_names: list[str]
    groups: np.ndarray     # group code, -1 when none
    langs: np.ndarray
    lang_names: list[str]
    #: The value of each group code (a child version matches new rows to its parent's groups
    #: by value: codes are numbered per run).
    group_names: list[str] = field(default_factory=list)
    #: The input file of each row (codes in input order): a child version plans its new rows
    #: a file at a time, so that any grouping of the same files makes the same child.
    files: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.exact)


class KeyCollector:
    """Accumulates Keys batch by batch (the signatures go to a file the pipeline writes)."""

    def __init__(self, label_column: str | None) -> None:
        self.label_column = label_column
        self.parts: dict[str, list] = {k: [] for k in ("exact", "chars", "labels", "groups",
                                                        "langs", "files")}
        self.file_codes: dict[str, int] = {}
        self.label_codes, self.group_codes, self.lang_codes = Codes(), Codes(), Codes()

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts["exact"])

    def add(self, table: pa.Table, keys: dict[str, np.ndarray], source: str = "") -> None:
        """Append one batch (of the input file `source`): its kept rows and the keys
        `DedupKeys` computed for them."""
        p = self.parts
        code = self.file_codes.setdefault(source, len(self.file_codes))
        p["files"].append(np.full(table.num_rows, code, dtype=np.int32))
        p["exact"].append(keys["exact"])
        # 32-bit lengths and codes: what is kept for every row is what grows with the input
        p["chars"].append(keys["chars"].astype(np.int32))
        if self.label_column:
            label = table.column(self.label_column).combine_chunks()
            p["labels"].append(self.label_codes.encode(label).astype(np.int32))
        else:
            p["labels"].append(np.full(table.num_rows, -1, dtype=np.int32))
        p["groups"].append(self.group_codes.encode(table.column("group").combine_chunks())
                           .astype(np.int32))
        p["langs"].append(self.lang_codes.encode(table.column("lang").combine_chunks())
                          .astype(np.int32))

    def finish(self, sigs: Any) -> Keys:
        """The keys of every row, with the signature matrix the pipeline wrote. Each field's
        batches are dropped as soon as they are joined, so the join holds one field twice, not
        all of them."""
        p = self.parts

        def joined(name: str, empty):
            parts, p[name] = p[name], []
            if not parts:
                return empty
            return np.concatenate(parts)

        return Keys(None, None, joined("exact", np.zeros((0, 2), np.uint64)), sigs,
                    joined("chars", np.zeros(0, np.int32)), joined("labels", np.zeros(0, np.int32)),
                    self.label_codes.names(), joined("groups", np.zeros(0, np.int32)),
                    joined("langs", np.zeros(0, np.int32)), self.lang_codes.names(),
                    self.group_codes.names(), joined("files", np.zeros(0, np.int32)))
