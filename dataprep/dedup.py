"""Exact and near-duplicate decisions, made on compact per-row keys.

Exact: rows whose normalised text hashes alike (two independent 64-bit hashes); the first in input
order is kept. Near: MinHash LSH candidates (banding tuned for recall), every candidate pair
verified by its exact shingle Jaccard (the shingle sets of candidate rows only are re-read from the
staging file), clusters by connected components (scipy); inside a cluster the longest (then
earliest) row is kept and every row at or above the threshold to it is dropped naming it. A row
below the threshold to every kept row of its cluster is kept too, so no row is dropped that is not
a near duplicate of a kept row; the cluster still travels to one split as a whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .minhash import band_keys, candidate_pairs, lsh_params, shingles, similarity


def exact_duplicates(hashes: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row with the same key, or -1 for first occurrences.

    `hashes` is (n, 2) uint64.
    """
    n = len(hashes)
    dup_of = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return dup_of
    keys = np.ascontiguousarray(hashes).view([("a", np.uint64), ("b", np.uint64)]).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    owner = first[inverse]
    repeated = owner != np.arange(n)
    dup_of[repeated] = owner[repeated]
    return dup_of


@dataclass
class NearDedup:
    dup_of: np.ndarray      # index of the kept row each dropped row duplicates, -1 if kept
    similarity: np.ndarray  # estimated Jaccard to that row (0 where kept)
    component: np.ndarray   # cluster id shared by rows that must stay in one split
    cluster_sizes: dict[int, int]  # cluster size -> number of clusters (size >= 2)
    candidate_pairs: int
    verified_pairs: int


ShingleSets = Callable[[np.ndarray], dict[int, np.ndarray]]


def shingle_sets_of(texts: pa.Array, ngram: int, row_ids: np.ndarray) -> dict[int, np.ndarray]:
    """Sorted unique shingle hashes of each (normalised) text, keyed by `row_ids`."""
    hashes, owner = shingles(texts, ngram)
    cuts = np.searchsorted(owner, np.arange(1, len(texts)))
    return {int(row): np.unique(part)
            for row, part in zip(row_ids, np.split(hashes, cuts), strict=True)}


def jaccard(sets: dict[int, np.ndarray], pairs: np.ndarray) -> np.ndarray:
    """Exact Jaccard of sorted unique shingle-hash arrays for each pair."""
    out = np.zeros(len(pairs), dtype=np.float32)
    for i, (a, b) in enumerate(pairs):
        x, y = sets[int(a)], sets[int(b)]
        inter = np.intersect1d(x, y, assume_unique=True).size
        union = x.size + y.size - inter
        out[i] = inter / union if union else 1.0
    return out


#: LSH bands are tuned for a threshold this much below the verification threshold, weighting
#: recall: a missed pair is a duplicate kept (and maybe a leak), an extra candidate only costs
#: one exact Jaccard.
CANDIDATE_MARGIN = 0.1
LEAK_CHECK_MARGIN = 0.25
#: Candidates whose MinHash estimate is this far below the threshold skip exact verification: the
#: estimate's standard deviation is about 0.035 at 128 permutations, so a pair truly at the
#: threshold lands this low far less than once in a million.
ESTIMATE_MARGIN = 0.2


def near_duplicates(sigs, eligible: np.ndarray, lengths: np.ndarray, threshold: float,
                    load_sets: ShingleSets, extra_pairs: np.ndarray | None = None) -> NearDedup:
    """Near-duplicate decisions among `eligible` rows (exact copies are already out).
    `extra_pairs` are candidates found elsewhere (by the leakage check) to verify as well."""
    n, num_perm = sigs.shape
    idx = np.flatnonzero(eligible)
    bands, rows = lsh_params(max(threshold - CANDIDATE_MARGIN, 0.3), num_perm, 0.9)
    pairs = np.zeros((0, 2), dtype=np.int64)
    if idx.size > 1:
        local = candidate_pairs(band_keys(sigs, bands, rows, idx))
        pairs = idx[local] if local.size else pairs
    pairs = pairs[similarity(sigs, pairs) >= threshold - ESTIMATE_MARGIN]
    if extra_pairs is not None and len(extra_pairs):
        pairs = np.unique(np.concatenate([pairs, np.sort(extra_pairs, axis=1)]), axis=0)
    sets = load_sets(np.unique(pairs))
    sims = jaccard(sets, pairs)
    good = pairs[sims >= threshold]
    graph = coo_matrix((np.ones(len(good)), (good[:, 0], good[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    dup_of = np.full(n, -1, dtype=np.int64)
    sim_to = np.zeros(n, dtype=np.float32)
    sizes = np.bincount(component[eligible], minlength=component.max() + 1) if n else np.zeros(0)
    multi = np.flatnonzero(sizes >= 2)
    if multi.size:
        members_of = _members(component, eligible, multi)
        for members in members_of:
            _choose_keepers(sets, members, lengths, threshold, dup_of, sim_to)
    cluster_sizes: dict[int, int] = {}
    for size in sizes[multi]:
        cluster_sizes[int(size)] = cluster_sizes.get(int(size), 0) + 1
    return NearDedup(dup_of, sim_to, component, dict(sorted(cluster_sizes.items())),
                     int(len(pairs)), int(len(good)))


def _members(component: np.ndarray, eligible: np.ndarray, clusters: np.ndarray) -> list[np.ndarray]:
    rows = np.flatnonzero(eligible & np.isin(component, clusters))
    order = np.argsort(component[rows], kind="stable")
    rows = rows[order]
    cuts = np.flatnonzero(np.diff(component[rows])) + 1
    return np.split(rows, cuts)


def _choose_keepers(sets: dict[int, np.ndarray], members: np.ndarray, lengths: np.ndarray,
                    threshold: float, dup_of: np.ndarray, sim_to: np.ndarray) -> None:
    """Greedy inside one cluster: the longest (then earliest) unassigned row is kept and takes
    every unassigned row at or above the threshold to it; repeat until all are assigned."""
    order = members[np.lexsort((members, -lengths[members]))]
    assigned = np.zeros(len(order), dtype=bool)
    for i in range(len(order)):
        if assigned[i]:
            continue
        assigned[i] = True
        rest = np.flatnonzero(~assigned)
        sim = np.zeros(len(order), dtype=np.float32)
        sim[rest] = jaccard(sets, np.stack([np.full(rest.size, order[i]), order[rest]], axis=1))
        takes = ~assigned & (sim >= threshold)
        dup_of[order[takes]] = order[i]
        sim_to[order[takes]] = sim[takes]
        assigned |= takes


def cross_split_pairs(sigs, kept: np.ndarray, split: np.ndarray, threshold: float,
                      load_sets: ShingleSets) -> tuple[int, np.ndarray]:
    """Leakage check: pairs of kept rows in different splits at or above the threshold.

    Candidates come from a banding tuned for a lower threshold and for recall, so this check is
    more sensitive than the dedup that built the clusters; pairs across splits are then measured
    by exact Jaccard. Returns (pairs checked, leaking pairs).
    """
    idx = np.flatnonzero(kept)
    if idx.size < 2:
        return 0, np.zeros((0, 2), dtype=np.int64)
    bands, rows = lsh_params(max(threshold - LEAK_CHECK_MARGIN, 0.2), sigs.shape[1], 0.95)
    local = candidate_pairs(band_keys(sigs, bands, rows, idx))
    pairs = idx[local] if local.size else np.zeros((0, 2), dtype=np.int64)
    across = pairs[split[pairs[:, 0]] != split[pairs[:, 1]]]
    across = across[similarity(sigs, across) >= threshold - ESTIMATE_MARGIN]
    sims = jaccard(load_sets(np.unique(across)), across)
    return int(len(pairs)), across[sims >= threshold]
