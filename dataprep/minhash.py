"""MinHash signatures and LSH banding over Arrow string arrays.

Shingle hashing is vectorised here by hand, because the exact keys share it and `datasketch`
hashes each shingle with SHA-1 one document at a time in Python; a whole batch is hashed at once:
- a string's hash is a polynomial over its UTF-8 bytes modulo 2**64, computed for every string of
  an Arrow array with one `np.add.reduceat` over the data buffer, then mixed (splitmix64);
- a word 5-gram shingle's hash combines its words' hashes.
The signatures of those 64-bit shingle hashes come from `rensa` (Rust): its R-MinHash permutation
k maps a hash h to (a_k*h + b_k) modulo 2**64 with odd a_k (multiply-shift: the high bits mix every
input bit) and a slot keeps the high 32 bits of the per-document minimum, the family our numpy
`signatures_numpy` uses (a_k*h, no b_k), about 3x faster than it with the copy into numpy
included; `signatures_numpy` stays as the independent reference the tests hold rensa's estimates
to.
The LSH band/row split minimises the same objective as `datasketch.MinHashLSH` (see lsh_params).
"""

from __future__ import annotations

import array
import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import rensa

#: Polynomial bases (odd, so invertible modulo 2**64); a second base gives an independent hash.
BASES = (0x100000001B3, 0xC2B2AE3D27D4EB4F)
_SHINGLE_MUL = np.uint64(0x9E3779B97F4A7C15)


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads polynomial-hash bits evenly over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@lru_cache(maxsize=8)
def _powers(base: int, length: int) -> np.ndarray:
    """base**i modulo 2**64 for i < length (cached; grown in powers of two)."""
    powers = np.full(max(length, 1), base, dtype=np.uint64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        return np.cumprod(powers)


def string_hashes(values: pa.Array, base: int = BASES[0]) -> np.ndarray:
    """A 64-bit hash of every string in an Arrow array (nulls hash like empty strings)."""
    values = pc.fill_null(values.cast(pa.large_string()), "")
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    bufs = values.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[values.offset:values.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(bufs[2], dtype=np.uint8)[start:end] if bufs[2] else np.zeros(0, np.uint8)
    offsets = offsets - start
    lengths = np.diff(offsets)
    sums = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if data.size:
            longest = int(lengths.max())
            powers = _powers(base, 1 << max(longest - 1, 0).bit_length())
            local = np.arange(data.size) - np.repeat(offsets[:-1], lengths)
            terms = (data.astype(np.uint64) + np.uint64(1)) * powers[local]
            nonempty = lengths > 0
            sums[nonempty] = np.add.reduceat(terms, offsets[:-1][nonempty])
        sums += lengths.astype(np.uint64) * _SHINGLE_MUL
        return _splitmix(sums)


@dataclass
class Words:
    """Word hashes of a batch of texts: what shingles and exact keys are both built from."""

    hashes: np.ndarray  # uint64 per word, in text order
    row: np.ndarray     # the row of each word (non-decreasing)
    counts: np.ndarray  # words per row


def words_of(texts: pa.Array) -> Words:
    words = pc.utf8_split_whitespace(texts)
    return Words(string_hashes(words.flatten()), pc.list_parent_indices(words).to_numpy(),
                 pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64))


def sequence_hashes(words: Words, base: int = BASES[0]) -> np.ndarray:
    """A 64-bit hash of each row's word sequence (whitespace-insensitive exact key)."""
    n = len(words.counts)
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        if words.hashes.size:
            starts = np.concatenate([[0], np.cumsum(words.counts)[:-1]])
            local = np.arange(words.hashes.size) - starts[words.row]
            powers = _powers(base, 1 << max(int(words.counts.max()) - 1, 0).bit_length())
            nonempty = words.counts > 0
            out[nonempty] = np.add.reduceat(words.hashes * powers[local], starts[nonempty])
        return _splitmix(out + words.counts.astype(np.uint64) * _SHINGLE_MUL)


def shingles(texts: pa.Array | Words, ngram: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of word n-gram shingles and the row each belongs to (non-decreasing). A text
    shorter than n words is one shingle of all its words; an empty text has none."""
    w = texts if isinstance(texts, Words) else words_of(texts)
    word_hash, word_row, counts = w.hashes, w.row, w.counts
    out_h, out_r = [], []
    with np.errstate(over="ignore"):
        if word_hash.size >= ngram:
            span = word_hash.size - ngram + 1
            acc = word_hash[:span].copy()
            for k in range(1, ngram):
                acc = acc * _SHINGLE_MUL + word_hash[k:k + span]
            full = word_row[:span] == word_row[ngram - 1:]
            out_h.append(acc[full])
            out_r.append(word_row[:span][full])
        short = np.flatnonzero((counts > 0) & (counts < ngram))
        if short.size:
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[short]
            acc = np.zeros(short.size, dtype=np.uint64)
            for k in range(ngram - 1):
                take = k < counts[short]
                acc = np.where(take, acc * _SHINGLE_MUL + word_hash[np.where(take, starts + k, 0)],
                               acc)
            out_h.append(acc)
            out_r.append(short)
    if not out_h:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    hashes, rows = np.concatenate(out_h), np.concatenate(out_r)
    order = np.argsort(rows, kind="stable") if len(out_h) > 1 else slice(None)
    return _splitmix(hashes[order]), rows[order]


def multipliers(num_perm: int, seed: int) -> np.ndarray:
    """The odd 64-bit multipliers of the num_perm hash functions."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


#: Rows per rensa call: below rensa's smallest parallel batch (32 rows, whatever
#: RENSA_DOC_PAR_BATCH_SIZE says), so rensa never starts its rayon thread pool. A process that
#: had started it would deadlock its forked workers (the pool's threads do not survive a fork),
#: and threads would only compete with our worker processes for the cores. Small calls are also
#: faster here: ~3x over one call for 20,000 rows (bench/minhash_signatures.py).
RENSA_ROWS = 31


def signatures_from_shingles(hashes: np.ndarray, rows: np.ndarray, n_rows: int,
                             num_perm: int = 128, seed: int = 1) -> np.ndarray:
    """MinHash signatures (n_rows x num_perm, uint32, C order) of shingle hashes grouped by row
    (`rows` non-decreasing, as `shingles` returns them), by rensa's R-MinHash from the flat
    hashes and row offsets. Rows without shingles get all-ones (as in `signatures_numpy`)."""
    hashes = np.ascontiguousarray(hashes, dtype=np.uint64)
    offsets = np.searchsorted(rows, np.arange(n_rows + 1)).astype(np.uint64)
    digest = rensa.RMinHash.digest_matrix_from_flat_token_hashes
    # rensa hands a matrix back only as Python lists (`to_rows`); an `array` filled from the
    # flattened lists is the cheapest way found into numpy (np.array on nested lists: ~2x
    # slower)
    flat = array.array("I")
    for lo in range(0, n_rows, RENSA_ROWS):
        cut = offsets[lo:lo + RENSA_ROWS + 1]
        matrix = digest(hashes[cut[0]:cut[-1]], cut - cut[0], num_perm, seed)
        flat.extend(itertools.chain.from_iterable(matrix.to_rows()))
    return np.frombuffer(flat, dtype=np.uint32).reshape(n_rows, num_perm)


def signatures_numpy(hashes: np.ndarray, rows: np.ndarray, n_rows: int, num_perm: int = 128,
                     seed: int = 1, chunk: int = 2) -> np.ndarray:
    """The same kind of signatures in numpy alone: permutation k is h -> a_k * h mod 2**64 (a
    bijection for odd a_k), the slot keeps the high 32 bits of the minimum. Not used by runs
    (rensa is ~3x faster); kept as the independent reference that rensa's estimates are
    tested against."""
    a = multipliers(num_perm, seed)
    out = np.full((num_perm, n_rows), np.iinfo(np.uint32).max, dtype=np.uint32)
    if hashes.size:
        present, starts = np.unique(rows, return_index=True)
        permuted = np.empty((chunk, hashes.size), dtype=np.uint64)  # reused: no allocations
        with np.errstate(over="ignore"):
            for lo in range(0, num_perm, chunk):
                block = permuted[:min(chunk, num_perm - lo)]
                np.multiply(a[lo:lo + chunk, None], hashes[None, :], out=block)
                mins = np.minimum.reduceat(block, starts, axis=1)
                out[lo:lo + chunk, present] = (mins >> np.uint64(32)).astype(np.uint32)
    return np.ascontiguousarray(out.T)


def signatures(texts: pa.Array | Words, num_perm: int = 128, ngram: int = 5, seed: int = 1
               ) -> np.ndarray:
    """MinHash signatures of a batch of (already normalised) texts, or of their words."""
    hashes, rows = shingles(texts, ngram)
    n = len(texts.counts) if isinstance(texts, Words) else len(texts)
    return signatures_from_shingles(hashes, rows, n, num_perm, seed)


#: (threshold, num_perm, recall_weight) -> (bands, rows) as a version's lineage recorded them
#: (`remember_lsh_params`): the grid search below costs every run ~0.3 s, a child's included.
_RECORDED: dict[tuple[float, int, float], tuple[int, int]] = {}


def remember_lsh_params(threshold: float, num_perm: int, recall_weight: float, bands: int,
                        rows: int) -> None:
    """Take (bands, rows) for these arguments from a version that computed them, instead of
    searching the grid again (the same code made them: the same search gives the same)."""
    _RECORDED[threshold, num_perm, recall_weight] = (bands, rows)


def lsh_params(threshold: float, num_perm: int, recall_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) for an LSH index (`search_lsh_params`), as recorded where known."""
    known = _RECORDED.get((threshold, num_perm, recall_weight))
    return known if known is not None else search_lsh_params(threshold, num_perm, recall_weight)


@lru_cache(maxsize=32)
def search_lsh_params(threshold: float, num_perm: int, recall_weight: float = 0.5
                      ) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative areas under the
    LSH S-curve: the objective of datasketch's MinHashLSH, integrated here on a grid with numpy
    because datasketch's scipy quadrature takes ~0.3 s per call."""
    s = np.linspace(0.0, 1.0, 2001)
    best, best_cost = (1, num_perm), np.inf
    for bands in range(1, num_perm + 1):
        for rows in range(1, num_perm // bands + 1):
            p = 1.0 - (1.0 - s ** rows) ** bands
            fp = np.trapezoid(np.where(s <= threshold, p, 0.0), s)
            fn = np.trapezoid(np.where(s >= threshold, 1.0 - p, 0.0), s)
            cost = (1 - recall_weight) * fp + recall_weight * fn
            if cost < best_cost:
                best, best_cost = (bands, rows), cost
    return best


def band_keys(sigs, bands: int, rows: int, idx: np.ndarray | None = None,
              chunk: int = 16384, band_ids: range | None = None) -> np.ndarray:
    """One 32-bit key per (row, band) for the rows `idx` (default all) and the bands `band_ids`
    (default all): rows that share a key in any band are candidates. Read from `sigs` (possibly
    memory-mapped) in chunks, never copied whole; 32-bit keys halve memory, and their rare
    chance collisions only add candidates that verification drops."""
    idx = np.arange(sigs.shape[0]) if idx is None else idx
    band_ids = range(bands) if band_ids is None else band_ids
    first, last = band_ids.start * rows, band_ids.stop * rows  # the slots these bands read
    mult = np.tile(multipliers(rows, seed=7), len(band_ids))
    offset = np.arange(band_ids.start, band_ids.stop, dtype=np.uint64)
    keys = np.zeros((idx.size, len(band_ids)), dtype=np.uint32)
    with np.errstate(over="ignore"):
        for lo in range(0, idx.size, chunk):
            block = np.asarray(sigs[idx[lo:lo + chunk]])[:, first:last].astype(np.uint64)
            block *= mult  # all bands of the chunk at once: slot value x its row's multiplier
            sums = block.reshape(len(block), len(band_ids), rows).sum(axis=2, dtype=np.uint64)
            keys[lo:lo + chunk] = (_splitmix(sums + offset) >> np.uint64(32)).astype(np.uint32)
    return keys


def stable_order(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, values[order]) of 32-bit values, ties in index order: what
    `np.argsort(kind="stable")` gives, from one sort of (value << 32 | index) as 64-bit ints,
    several times faster because numpy's default sort of 64-bit ints is vectorised."""
    packed = (values.astype(np.uint64) << np.uint64(32)) | np.arange(values.size,
                                                                      dtype=np.uint64)
    packed.sort()
    return (packed & np.uint64(0xFFFFFFFF)).astype(np.int64), packed >> np.uint64(32)


def bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs (i < j, encoded i * len(keys) + j) of rows sharing a key in one band: each bucket
    member is paired with the bucket's first member and with its neighbour, which links every
    bucket without the quadratic number of pairs a large bucket of copies would give."""
    if keys.size >= 1 << 32:
        raise ValueError("bucket_pairs packs row numbers in 32 bits")
    order, sorted_keys = stable_order(keys)
    same = sorted_keys[1:] == sorted_keys[:-1]
    if not same.any():
        return np.zeros(0, dtype=np.int64)
    pos = np.arange(1, len(order))
    run_start = np.maximum.accumulate(np.where(~same, pos, 0))
    members = pos[same]
    n, later = np.int64(keys.size), order[members]
    # ties are in index order, so a bucket's earlier member always has the smaller index
    return np.concatenate([order[run_start[same]] * n + later, order[members - 1] * n + later])


def decode_pairs(encoded: np.ndarray, n: int) -> np.ndarray:
    """Distinct pairs from `bucket_pairs` codes, as (i, j) rows sorted by i then j."""
    encoded = np.unique(encoded)
    return np.stack([encoded // n, encoded % n], axis=1) if encoded.size else \
        np.zeros((0, 2), dtype=np.int64)


def candidate_pairs(keys: np.ndarray) -> np.ndarray:
    """Distinct (i, j), i < j, sorted, that share a key in any band (a column of `keys`)."""
    codes = [bucket_pairs(np.ascontiguousarray(keys[:, band])) for band in range(keys.shape[1])]
    return decode_pairs(np.concatenate(codes) if codes else np.zeros(0, np.int64), len(keys))


def similarity(sigs, pairs: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Estimated Jaccard (share of equal signature slots) for each pair, a chunk of pairs at a
    time (their rows read from `sigs`, never all of it)."""
    out = np.empty(len(pairs), dtype=np.float32)
    for lo in range(0, len(pairs), chunk):
        p = pairs[lo:lo + chunk]
        out[lo:lo + chunk] = (np.asarray(sigs[p[:, 0]]) == np.asarray(sigs[p[:, 1]])).mean(axis=1)
    return out
