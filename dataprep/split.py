"""Seeded, stratified, grouped train/validation/test assignment.

Written by hand because `datasets.train_test_split(stratify_by_column=...)` cannot keep groups
together, and every version has groups: rows of one near-duplicate cluster, and rows sharing
`split.group_by` (a conversation or customer id), must land in one split. Units are connected
components of "same cluster or same group"; each unit's stratum is its most common label. Within a
stratum, multi-row units are placed largest first into the split furthest below its target, then
single rows (most of the corpus) fill the remaining targets in one vectorised step.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

SPLIT_NAMES = ("train", "validation", "test")


def units(*keys: np.ndarray) -> np.ndarray:
    """Connected components of rows that share any of the keys (-1 = no key)."""
    n = len(keys[0])
    edges = []
    for key in keys:
        rows = np.flatnonzero(key >= 0)
        order = rows[np.argsort(key[rows], kind="stable")]
        same = key[order[1:]] == key[order[:-1]]
        edges.append(np.stack([order[:-1][same], order[1:][same]]))
    e = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), dtype=np.int64)
    graph = coo_matrix((np.ones(e.shape[1]), (e[0], e[1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    weights = np.clip(weights, 0, None)
    if total <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    if weights.sum() <= 0:
        weights = np.ones(len(weights))
    exact = total * weights / weights.sum()
    base = np.floor(exact).astype(np.int64)
    rest = total - base.sum()
    base[np.argsort(-(exact - base), kind="stable")[:rest]] += 1
    return base


def assign(labels: np.ndarray, unit: np.ndarray, ratios: list[float], seed: int,
           min_rows_per_label: int) -> tuple[np.ndarray, list[int]]:
    """Split code per row (0 train, 1 validation, 2 test) and the label codes too rare to
    stratify (sent to train whole). `labels` holds label codes (-1 when unlabelled)."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    split = np.zeros(n, dtype=np.int8)
    if n == 0:
        return split, []
    ratios_arr = np.asarray(ratios, dtype=np.float64)
    _, unit_id = np.unique(unit, return_inverse=True)
    n_units = unit_id.max() + 1
    sizes = np.bincount(unit_id, minlength=n_units)
    stratum = _majority(unit_id, labels, n_units)
    label_rows = {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True),
                                                    strict=True)}
    rare = sorted(k for k, v in label_rows.items() if k >= 0 and v < min_rows_per_label)
    unit_split = np.zeros(n_units, dtype=np.int8)
    in_train = np.zeros(n_units, dtype=bool)  # units holding a rare label stay in train whole
    in_train[unit_id[np.isin(labels, rare)]] = True
    for s in np.unique(stratum):
        members = np.flatnonzero((stratum == s) & ~in_train)
        members = members[rng.permutation(len(members))]
        target = ratios_arr * sizes[members].sum()
        filled = np.zeros(3)
        multi = members[sizes[members] > 1]
        for u in multi[np.argsort(-sizes[multi], kind="stable")]:
            choice = int(np.argmax(target - filled))
            unit_split[u] = choice
            filled[choice] += sizes[u]
        single = members[sizes[members] == 1]
        counts = _largest_remainder(len(single), target - filled)
        unit_split[single] = np.repeat(np.arange(3, dtype=np.int8), counts)
    split[:] = unit_split[unit_id]
    return split, rare


def _majority(unit_id: np.ndarray, labels: np.ndarray, n_units: int) -> np.ndarray:
    """Each unit's most common label code (ties: the smallest code)."""
    pairs, counts = np.unique(np.stack([unit_id, labels]), axis=1, return_counts=True)
    order = np.lexsort((pairs[1], -counts, pairs[0]))
    pairs = pairs[:, order]
    first = np.concatenate([[True], pairs[0][1:] != pairs[0][:-1]])
    out = np.full(n_units, -1, dtype=np.int64)
    out[pairs[0][first]] = pairs[1][first]
    return out
