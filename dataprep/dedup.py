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

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .neardup import DEDUP, LEAKAGE, NearDupIndex, ShingleSets, jaccard


def exact_duplicates(hashes: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row with the same key, or -1 for first occurrences.

    `hashes` is (n, 2) uint64.
    """
    n = len(hashes)
    dup_of = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return dup_of
    # a stable lexsort puts equal keys together in row order, so each run's first row is the
    # first occurrence: what np.unique(return_index) gives, without its slow structured sort
    order = np.lexsort((hashes[:, 1], hashes[:, 0]))
    ordered = hashes[order]
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    owner = np.empty(n, dtype=np.int64)
    owner[order] = order[np.maximum.accumulate(np.where(new_run, np.arange(n), 0))]
    repeated = owner != np.arange(n)
    dup_of[repeated] = owner[repeated]
    return dup_of


@dataclass
class NearDedup:
    dup_of: np.ndarray      # index of the kept row each dropped row duplicates, -1 if kept
    similarity: np.ndarray  # exact shingle Jaccard to that row (0 where kept)
    component: np.ndarray   # cluster id shared by rows that must stay in one split
    cluster_sizes: dict[int, int]  # cluster size -> number of clusters (size >= 2)
    candidate_pairs: int
    verified_pairs: int


def near_duplicates(sigs, eligible: np.ndarray, lengths: np.ndarray, threshold: float,
                    load_sets: ShingleSets, extra_pairs: np.ndarray | None = None,
                    workers: int = 1) -> NearDedup:
    """Near-duplicate decisions among `eligible` rows (exact copies are already out).
    `extra_pairs` are candidates found elsewhere (by the leakage check) to verify as well.
    `workers` processes share the candidate search and the verification."""
    n = sigs.shape[0]
    index = NearDupIndex(sigs, threshold, DEDUP)
    pairs = index.search(np.flatnonzero(eligible), workers)[1]
    if extra_pairs is not None and len(extra_pairs):
        pairs = np.unique(np.concatenate([pairs, np.sort(extra_pairs, axis=1)]), axis=0)
    sets = load_sets(np.unique(pairs))
    sims = index.verify(sets, pairs, workers)
    passed = sims >= threshold
    good, good_sims = pairs[passed], sims[passed]
    graph = coo_matrix((np.ones(len(good)), (good[:, 0], good[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    dup_of = np.full(n, -1, dtype=np.int64)
    sim_to = np.zeros(n, dtype=np.float32)
    sizes = np.bincount(component[eligible], minlength=component.max() + 1) if n else np.zeros(0)
    multi = np.flatnonzero(sizes >= 2)
    _pairs_keep_the_longer(good, good_sims, sizes[component[good[:, 0]]] == 2, lengths, dup_of,
                           sim_to)
    if multi.size:
        for members in _members(component, eligible, multi[sizes[multi] > 2]):
            _choose_keepers(sets, members, lengths, threshold, dup_of, sim_to)
    cluster_sizes: dict[int, int] = {}
    for size in sizes[multi]:
        cluster_sizes[int(size)] = cluster_sizes.get(int(size), 0) + 1
    return NearDedup(dup_of, sim_to, component, dict(sorted(cluster_sizes.items())),
                     int(len(pairs)), int(len(good)))


def _pairs_keep_the_longer(good: np.ndarray, sims: np.ndarray, alone: np.ndarray,
                           lengths: np.ndarray, dup_of: np.ndarray, sim_to: np.ndarray) -> None:
    """`_choose_keepers` for the clusters of two rows (most clusters), at once: a two-row
    cluster is one verified pair (`alone`), so the longer (then earlier, the pair's first) row
    is kept and the other drops naming it, with the pair's Jaccard."""
    i, j = good[alone, 0], good[alone, 1]
    keeper_is_j = lengths[j] > lengths[i]
    keeper, other = np.where(keeper_is_j, j, i), np.where(keeper_is_j, i, j)
    dup_of[other] = keeper
    sim_to[other] = sims[alone]


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
                      load_sets: ShingleSets, workers: int = 1) -> tuple[int, np.ndarray]:
    """Leakage check: pairs of kept rows in different splits at or above the threshold.

    Candidates come from a banding tuned for a lower threshold and for recall, so this check is
    more sensitive than the dedup that built the clusters; candidate pairs across splits are
    then measured by exact Jaccard. Returns (candidate pairs across splits checked, leaking
    pairs).
    """
    index = NearDupIndex(sigs, threshold, LEAKAGE)
    checked, across = index.search(np.flatnonzero(kept), workers, across=split)
    sims = index.verify(load_sets(np.unique(across)), across, workers)
    return checked, across[sims >= threshold]
