"""The one near-duplicate index: LSH candidates, a MinHash-estimate screen, exact verification.

Dedup, the leakage check and augmentation's dedup against train all ask the same question ("which
of these rows are at or above the Jaccard threshold to each other?") with different rows and a
different appetite for recall, so they share this chain:
1. candidates: rows that share an LSH band key (bands and rows per band tuned, as in
   `datasketch.MinHashLSH`, for a threshold a margin below the real one, weighting recall);
2. screen: candidates whose MinHash estimate is far below the threshold are dropped;
3. verify: the exact Jaccard of the rows' word-shingle sets decides.
A child version's search starts from its parent's band keys, stored in its lineage sorted per
band (`SortedBands`), so only the new rows are banded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .forked import fork_map, spans
from .kinds import get_kind
from .minhash import (
    band_keys,
    bucket_pairs,
    decode_pairs,
    lsh_params,
    shingles,
    similarity,
    stable_order,
)
from .staging import staged_rows
from .textview import normalise_for_dedup

#: Candidates whose MinHash estimate is this far below the threshold skip exact verification: the
#: estimate's standard deviation is about 0.035 at 128 permutations, so a pair truly at the
#: threshold lands this low far less than once in a million.
ESTIMATE_MARGIN = 0.2

ShingleSets = Callable[[np.ndarray], Mapping[int, np.ndarray]]

#: Below these sizes the work stays in this process: forking workers costs more than it saves.
PARALLEL_MIN_ROWS = 50_000
PARALLEL_MIN_PAIRS = 20_000
PARALLEL_MIN_TEXTS = 5_000
#: Rows shingled at once when sets are read back from the staging file (bounds the texts,
#: words and shingles held: ~30 MB at 100 words a row).
SHINGLE_GROUP = 4096


@dataclass(frozen=True)
class Sensitivity:
    """How hard candidate search looks: bands are tuned for `threshold - margin` (at least
    `floor`), with `recall_weight` on false negatives. A missed pair is a duplicate kept (and
    maybe a leak); an extra candidate only costs one exact Jaccard."""

    margin: float
    floor: float
    recall_weight: float


#: Dedup (and augmentation's dedup): tuned 0.1 below the threshold.
DEDUP = Sensitivity(margin=0.1, floor=0.3, recall_weight=0.9)
#: The leakage check looks harder than the dedup it checks.
LEAKAGE = Sensitivity(margin=0.25, floor=0.2, recall_weight=0.95)


class StackedSignatures:
    """Rows of two signature matrices as one (the first read through a row index), so train rows
    and new candidates are searched in one index without copying train's signatures."""

    def __init__(self, first: Any, first_rows: np.ndarray, second: np.ndarray) -> None:
        self.first, self.first_rows, self.second = first, first_rows, second
        self.shape = (len(first_rows) + len(second), second.shape[1])

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        out = np.empty((len(idx), self.shape[1]), np.uint32)
        old = idx < len(self.first_rows)
        if old.any():
            out[old] = self.first[self.first_rows[idx[old]]]
        out[~old] = self.second[idx[~old] - len(self.first_rows)]
        return out


class RowsOf:
    """Some rows of a signature matrix, read through as one matrix (`Lineage.subset`)."""

    def __init__(self, sigs: Any, rows: np.ndarray) -> None:
        self.sigs, self.rows = sigs, rows
        self.shape = (len(rows), sigs.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.asarray(self.sigs[self.rows[idx]])


class StackedRows:
    """Row matrices (memory-mapped) read as one, in order: a version's signatures, one matrix
    a generation, never copied into one file or one array."""

    def __init__(self, parts: list[np.ndarray], width: int) -> None:
        self.parts = parts
        self.starts = np.cumsum([0] + [len(part) for part in parts], dtype=np.int64)
        self.shape = (int(self.starts[-1]), width)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        """Rows `idx` (an int array or a slice), in that order."""
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(self.shape[0]))
        idx = np.asarray(idx, dtype=np.int64)
        if len(self.parts) == 1:
            return np.asarray(self.parts[0][idx])
        out = np.empty((idx.size, self.shape[1]), np.uint32)
        part = np.searchsorted(self.starts, idx, "right") - 1
        for k in np.unique(part).tolist():
            here = part == k
            out[here] = self.parts[k][idx[here] - self.starts[k]]
        return out


class NearDupIndex:
    """Near-duplicate search over the rows of one signature matrix (possibly memory-mapped)."""

    def __init__(self, sigs: Any, threshold: float, sensitivity: Sensitivity = DEDUP,
                 stored: Mapping[tuple[int, int], SortedBands] | None = None) -> None:
        """`stored`: band keys of the first rows kept by their version, by (bands, rows); where
        they hold this banding, a search that takes all of those rows with one `across` code
        bands only the rows after them (`_looked_up_codes`)."""
        self.sigs, self.threshold = sigs, threshold
        self.tuned = max(threshold - sensitivity.margin, sensitivity.floor)
        self.bands, self.rows = lsh_params(self.tuned, sigs.shape[1], sensitivity.recall_weight)
        self.stored = (stored or {}).get((self.bands, self.rows))

    def _pair_codes(self, rows: np.ndarray, workers: int, across: np.ndarray | None
                    ) -> np.ndarray:
        """Distinct candidate pair codes (`bucket_pairs`' i * len(rows) + j, i and j indices
        into `rows`) over all bands, from the stored keys where they serve, else by banding the
        signatures of every row (each worker a share of the bands)."""
        if self._can_look_up(rows, across):
            return _looked_up_codes(self.stored, self.sigs, rows, self.bands, self.rows, across)
        workers = workers if rows.size >= PARALLEL_MIN_ROWS else 1
        return np.unique(np.concatenate(fork_map(
            _band_pair_codes, (self.sigs, rows, self.bands, self.rows, across),
            spans(self.bands, workers), workers)))

    def _can_look_up(self, rows: np.ndarray, across: np.ndarray | None) -> bool:
        """The stored keys give the same pairs only where every stored row is searched (rows
        sorted, so they are its first ones) and all share one `across` code: then no pair of
        them is wanted, and each bucket's stored members matter only as its first and last."""
        stored = self.stored
        if stored is None or across is None or stored.rows == 0 or rows.size < stored.rows:
            return False
        head = rows[:stored.rows]
        return bool(np.array_equal(head, np.arange(stored.rows))
                    and (across[head] == across[0]).all())

    def candidates(self, rows: np.ndarray | None = None, workers: int = 1,
                   across: np.ndarray | None = None) -> np.ndarray:
        """Distinct pairs (i < j, sorted) of `rows` (default: all) that share a band key; with
        `across` (a code per row, e.g. the split), only pairs whose codes differ. With
        `workers`, each process takes a share of the bands and filters its own pairs, so the
        pairs `across` drops are never gathered (at 1M rows the leakage banding finds ~5M)."""
        rows = np.arange(self.sigs.shape[0]) if rows is None else rows
        if rows.size < 2:
            return np.zeros((0, 2), dtype=np.int64)
        local = decode_pairs(self._pair_codes(rows, workers, across), rows.size)
        return rows[local] if local.size else np.zeros((0, 2), dtype=np.int64)

    def search(self, rows: np.ndarray, workers: int = 1, across: np.ndarray | None = None,
               chunk: int = 65536) -> tuple[int, np.ndarray]:
        """(distinct candidate pairs of `rows`, those of them the MinHash screen keeps), as
        `screen(candidates(...))` but decoded and screened a chunk at a time, so the candidate
        pairs are never held as pairs (the leakage banding finds millions at 1M rows)."""
        if rows.size < 2:
            return 0, np.zeros((0, 2), dtype=np.int64)
        codes = self._pair_codes(rows, workers, across)
        m, kept = np.int64(rows.size), [np.zeros((0, 2), dtype=np.int64)]
        for lo in range(0, codes.size, chunk):
            part = codes[lo:lo + chunk]
            kept.append(self.screen(np.stack([rows[part // m], rows[part % m]], axis=1)))
        return int(codes.size), np.concatenate(kept)

    def screen(self, pairs: np.ndarray) -> np.ndarray:
        """The pairs whose MinHash estimate is close enough to the threshold to verify."""
        return pairs[similarity(self.sigs, pairs) >= self.threshold - ESTIMATE_MARGIN]

    def verify(self, sets: Mapping[int, np.ndarray], pairs: np.ndarray, workers: int = 1
               ) -> np.ndarray:
        """Exact Jaccard of each pair (the threshold decides what the caller does with it)."""
        if len(pairs) < PARALLEL_MIN_PAIRS or workers <= 1:
            return jaccard(sets, pairs)
        parts = fork_map(_jaccard_span, (sets, pairs), spans(len(pairs), 4 * workers), workers)
        return np.concatenate(parts)


#: Bands whose keys one read of the signatures computes (n x this many 32-bit keys held).
BANDS_PER_READ = 8


def _band_pair_codes(shared: tuple, lo: int, hi: int) -> np.ndarray:
    """Distinct candidate pair codes (`bucket_pairs`) of bands lo..hi (one worker's share),
    their keys computed BANDS_PER_READ bands a read of the signatures."""
    sigs, rows, bands, per_band, across = shared
    codes = []
    for first in range(lo, hi, BANDS_PER_READ):
        group = range(first, min(first + BANDS_PER_READ, hi))
        keys = band_keys(sigs, bands, per_band, rows, band_ids=group)
        for col in range(len(group)):
            found = bucket_pairs(np.ascontiguousarray(keys[:, col]))
            if across is not None and found.size:
                m = np.int64(rows.size)
                found = found[across[rows[found // m]] != across[rows[found % m]]]
            codes.append(np.unique(found))
    return np.unique(np.concatenate(codes)) if codes else np.zeros(0, np.int64)


#: The row-number half of a `SortedBands` entry.
LOW_BITS = np.uint64(0xFFFFFFFF)


class SortedBands:
    """One banding's keys of a version's rows as its lineage stores them: per generation a
    (bands, rows) uint64 matrix of `key << 32 | row` (row: its number in the generation), each
    band sorted (`sort_band_keys`). The rows holding a key are one run of a band, found by two
    binary searches, so looking up a child's new keys costs n log(rows), with no pass over the
    parent's rows (the matrices may be memory-mapped: only the searched pages are read)."""

    def __init__(self, parts: list[np.ndarray], offsets: list[int], rows: int) -> None:
        self.parts, self.offsets, self.rows = parts, offsets, rows

    def bounds(self, band: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first and the last row (the version's numbering) holding each of `keys` in
        `band`, -1 where none does (generations are in row order: the first found is first)."""
        first, last = np.full(keys.size, -1, np.int64), np.full(keys.size, -1, np.int64)
        low = keys.astype(np.uint64) << np.uint64(32)
        for part, offset in zip(self.parts, self.offsets, strict=True):
            packed = part[band]
            lo = np.searchsorted(packed, low, "left")
            hi = np.searchsorted(packed, low | LOW_BITS, "right")
            at = np.flatnonzero(hi > lo)
            if not at.size:
                continue
            start = (packed[lo[at]] & LOW_BITS).astype(np.int64) + offset
            first[at] = np.where(first[at] < 0, start, first[at])
            last[at] = (packed[hi[at] - 1] & LOW_BITS).astype(np.int64) + offset
        return first, last


def sort_band_keys(keys: np.ndarray) -> np.ndarray:
    """(rows, bands) uint32 band keys as one generation's `SortedBands` matrix."""
    out = np.empty((keys.shape[1], keys.shape[0]), np.uint64)
    for band in range(keys.shape[1]):
        order, values = stable_order(keys[:, band])
        out[band] = (values << np.uint64(32)) | order.astype(np.uint64)
    return out


def _looked_up_codes(stored: SortedBands, sigs: Any, rows: np.ndarray, bands: int,
                     per_band: int, across: np.ndarray) -> np.ndarray:
    """`_band_pair_codes` over all bands where `rows` starts with every stored row (all one
    `across` code): only the rows after them are banded. `bucket_pairs` pairs each member of
    a bucket with the bucket's first member and with the one before it, so of a bucket's
    stored rows (which come before its other members) only the first and the last can be in a
    pair with another row: the bucket of those two and its other members gives the same
    pairs."""
    p, m = stored.rows, np.int64(rows.size)
    keys = band_keys(sigs, bands, per_band, rows[p:])
    later = np.arange(p, rows.size, dtype=np.int64)
    codes = [np.zeros(0, np.int64)]
    for band in range(bands):
        column = keys[:, band]
        unique = np.unique(column)
        first, last = stored.bounds(band, unique)
        held = first >= 0
        ends, at = np.unique(np.concatenate([first[held], last[held]]), return_index=True)
        end_keys = np.concatenate([unique[held], unique[held]])[at]
        local = np.concatenate([ends, later])  # stored row r is rows[r]: its index is r
        found = bucket_pairs(np.concatenate([end_keys, column]))
        i, j = local[found // np.int64(local.size)], local[found % np.int64(local.size)]
        wanted = across[rows[i]] != across[rows[j]]
        codes.append(np.unique(i[wanted] * m + j[wanted]))
    return np.unique(np.concatenate(codes))


def _jaccard_span(shared: tuple, lo: int, hi: int) -> np.ndarray:
    sets, pairs = shared
    return jaccard(sets, pairs[lo:hi])


class ShingleSetTable(Mapping):
    """Shingle sets of many rows, row -> its sorted unique hashes (a view into a flat block).
    No Python object a row (a dict of arrays costs ~150 bytes a row more than the hashes), it
    pickles as a few arrays, and tables join without copying their hashes (`concat`): at 1M rows
    the sets of the candidate rows are ~60 MB, and copies of them were the plan's peak."""

    def __init__(self, rows: np.ndarray, blocks: list[np.ndarray], block: np.ndarray,
                 starts: np.ndarray, ends: np.ndarray) -> None:
        # per row (sorted, unique): which block holds its hashes, and where
        self.rows, self.blocks, self.block = rows, blocks, block
        self.starts, self.ends = starts, ends

    def __getitem__(self, row: int) -> np.ndarray:
        at = int(np.searchsorted(self.rows, row))
        if at == len(self.rows) or self.rows[at] != row:
            raise KeyError(row)
        return self.blocks[self.block[at]][self.starts[at]:self.ends[at]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.rows.tolist())

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def flat(cls, rows: np.ndarray, hashes: np.ndarray, offsets: np.ndarray) -> ShingleSetTable:
        """Rows whose sets are consecutive runs of one hash array (`offsets`: len(rows) + 1)."""
        return cls(np.asarray(rows, dtype=np.int64), [hashes], np.zeros(len(rows), np.int32),
                   offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64))

    @classmethod
    def concat(cls, parts: list[ShingleSetTable]) -> ShingleSetTable:
        """Tables of consecutive row ranges as one (their hash blocks shared, not copied)."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        first_block = np.cumsum([0] + [len(p.blocks) for p in parts[:-1]])
        return cls(np.concatenate([p.rows for p in parts]),
                   [b for p in parts for b in p.blocks],
                   np.concatenate([p.block + k for p, k in zip(parts, first_block, strict=True)]
                                  ).astype(np.int32),
                   np.concatenate([p.starts for p in parts]),
                   np.concatenate([p.ends for p in parts]))

    @classmethod
    def empty(cls) -> ShingleSetTable:
        return cls.flat(np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(1, np.int64))


def shingle_sets_of(texts: pa.Array, ngram: int, row_ids: np.ndarray) -> ShingleSetTable:
    """Sorted unique shingle hashes of each (normalised) text, keyed by `row_ids` (ascending)
    (one lexsort for all rather than one np.unique a row)."""
    if len(texts) == 0:
        return ShingleSetTable.empty()
    hashes, owner = shingles(texts, ngram)
    order = np.lexsort((hashes, owner))
    hashes, owner = hashes[order], owner[order]
    first = np.ones(hashes.size, dtype=bool)
    first[1:] = (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])
    hashes, owner = hashes[first], owner[first]
    offsets = np.searchsorted(owner, np.arange(len(texts) + 1)).astype(np.int64)
    return ShingleSetTable.flat(row_ids, hashes, offsets)


def staged_shingle_sets(staging: Path, kind: str, ngram: int, rows: np.ndarray,
                        workers: int = 1) -> ShingleSetTable:
    """Shingle sets of the given staging rows, read back from the staging file; with `workers`,
    each process reads the file and shingles a share of the rows. Texts are shingled a group
    of at most SHINGLE_GROUP rows at a time, so memory holds the sets, not the texts."""
    wanted = np.unique(rows)
    if wanted.size == 0:
        return ShingleSetTable.empty()
    workers = workers if wanted.size >= PARALLEL_MIN_TEXTS else 1
    parts = fork_map(_staged_span, (staging, kind, ngram, wanted), spans(wanted.size, workers),
                     workers)
    return ShingleSetTable.concat(parts)


def _staged_span(shared: tuple, lo: int, hi: int) -> ShingleSetTable:
    staging, kind, ngram, wanted = shared
    row_text, parts = get_kind(kind).row_text, []
    for here, table in staged_rows(staging, wanted[lo:hi], SHINGLE_GROUP):
        parts.append(shingle_sets_of(normalise_for_dedup(row_text(table)), ngram, here))
    return ShingleSetTable.concat(parts)


def jaccard(sets: Mapping[int, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of sorted unique shingle-hash arrays for each pair."""
    out = np.zeros(len(pairs), dtype=np.float32)
    for i, (a, b) in enumerate(pairs):
        x, y = sets[int(a)], sets[int(b)]
        inter = np.intersect1d(x, y, assume_unique=True).size
        union = x.size + y.size - inter
        out[i] = inter / union if union else 1.0
    return out
