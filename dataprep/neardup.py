"""The one near-duplicate index: LSH candidates, a MinHash-estimate screen, exact verification.

Dedup, the leakage check and augmentation's dedup against train all ask the same question ("which
of these rows are at or above the Jaccard threshold to each other?") with different rows and a
different appetite for recall, so they share this chain:
1. candidates: rows that share an LSH band key (bands and rows per band tuned, as in
   `datasketch.MinHashLSH`, for a threshold a margin below the real one, weighting recall);
2. screen: candidates whose MinHash estimate is far below the threshold are dropped;
3. verify: the exact Jaccard of the rows' word-shingle sets decides.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from .forked import fork_map, spans
from .minhash import band_keys, bucket_pairs, decode_pairs, lsh_params, shingles, similarity

#: Candidates whose MinHash estimate is this far below the threshold skip exact verification: the
#: estimate's standard deviation is about 0.035 at 128 permutations, so a pair truly at the
#: threshold lands this low far less than once in a million.
ESTIMATE_MARGIN = 0.2

ShingleSets = Callable[[np.ndarray], dict[int, np.ndarray]]

#: Below these sizes the work stays in this process: forking workers costs more than it saves.
PARALLEL_MIN_ROWS = 50_000
PARALLEL_MIN_PAIRS = 20_000
PARALLEL_MIN_TEXTS = 5_000


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


class NearDupIndex:
    """Near-duplicate search over the rows of one signature matrix (possibly memory-mapped)."""

    def __init__(self, sigs: Any, threshold: float, sensitivity: Sensitivity = DEDUP) -> None:
        self.sigs, self.threshold = sigs, threshold
        tuned = max(threshold - sensitivity.margin, sensitivity.floor)
        self.bands, self.rows = lsh_params(tuned, sigs.shape[1], sensitivity.recall_weight)

    def candidates(self, rows: np.ndarray | None = None, workers: int = 1) -> np.ndarray:
        """Distinct pairs (i < j, sorted) of `rows` (default: all) that share a band key; with
        `workers`, each process takes a share of the bands."""
        rows = np.arange(self.sigs.shape[0]) if rows is None else rows
        if rows.size < 2:
            return np.zeros((0, 2), dtype=np.int64)
        workers = workers if rows.size >= PARALLEL_MIN_ROWS else 1
        codes = fork_map(_band_pair_codes, (self.sigs, rows, self.bands, self.rows),
                         spans(self.bands, workers), workers)
        local = decode_pairs(np.concatenate(codes), rows.size)
        return rows[local] if local.size else np.zeros((0, 2), dtype=np.int64)

    def screen(self, pairs: np.ndarray) -> np.ndarray:
        """The pairs whose MinHash estimate is close enough to the threshold to verify."""
        return pairs[similarity(self.sigs, pairs) >= self.threshold - ESTIMATE_MARGIN]

    def verify(self, sets: dict[int, np.ndarray], pairs: np.ndarray, workers: int = 1
               ) -> np.ndarray:
        """Exact Jaccard of each pair (the threshold decides what the caller does with it)."""
        if len(pairs) < PARALLEL_MIN_PAIRS or workers <= 1:
            return jaccard(sets, pairs)
        parts = fork_map(_jaccard_span, (sets, pairs), spans(len(pairs), 4 * workers), workers)
        return np.concatenate(parts)


def _band_pair_codes(shared: tuple, lo: int, hi: int) -> np.ndarray:
    """Candidate pair codes of bands lo..hi (one worker's share; one read of the signatures)."""
    sigs, rows, bands, per_band = shared
    keys = band_keys(sigs, bands, per_band, rows, band_ids=range(lo, hi))
    codes = [bucket_pairs(np.ascontiguousarray(keys[:, col])) for col in range(hi - lo)]
    return np.unique(np.concatenate(codes)) if codes else np.zeros(0, np.int64)


def _jaccard_span(shared: tuple, lo: int, hi: int) -> np.ndarray:
    sets, pairs = shared
    return jaccard(sets, pairs[lo:hi])


def shingle_sets_of(texts: pa.Array, ngram: int, row_ids: np.ndarray, workers: int = 1
                    ) -> dict[int, np.ndarray]:
    """Sorted unique shingle hashes of each (normalised) text, keyed by `row_ids`; with
    `workers`, each process shingles a share of the texts."""
    if len(texts) == 0:
        return {}
    workers = workers if len(texts) >= PARALLEL_MIN_TEXTS else 1
    parts = fork_map(_unique_shingles, (texts, ngram), spans(len(texts), workers), workers)
    sets: dict[int, np.ndarray] = {}
    for (lo, hi), (hashes, cuts) in zip(spans(len(texts), workers), parts, strict=True):
        sets.update(zip(row_ids[lo:hi].tolist(), np.split(hashes, cuts), strict=True))
    return sets


def _unique_shingles(shared: tuple, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Texts lo..hi's sorted unique shingle hashes, flat, and where each next text's begin
    (one lexsort for all rather than one np.unique a row)."""
    texts, ngram = shared
    hashes, owner = shingles(texts[lo:hi], ngram)
    order = np.lexsort((hashes, owner))
    hashes, owner = hashes[order], owner[order]
    first = np.ones(hashes.size, dtype=bool)
    first[1:] = (hashes[1:] != hashes[:-1]) | (owner[1:] != owner[:-1])
    hashes, owner = hashes[first], owner[first]
    return hashes, np.searchsorted(owner, np.arange(1, hi - lo))


def jaccard(sets: dict[int, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of sorted unique shingle-hash arrays for each pair."""
    out = np.zeros(len(pairs), dtype=np.float32)
    for i, (a, b) in enumerate(pairs):
        x, y = sets[int(a)], sets[int(b)]
        inter = np.intersect1d(x, y, assume_unique=True).size
        union = x.size + y.size - inter
        out[i] = inter / union if union else 1.0
    return out
