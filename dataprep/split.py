"""Seeded, stratified, grouped train/validation/test assignment.

Written by hand because `datasets.train_test_split(stratify_by_column=...)` cannot keep groups
together, and every version has groups: rows of one near-duplicate cluster, and rows sharing
`split.group_by` (a conversation or customer id), must land in one split. Units are connected
components of "same cluster or same group"; see `assign` for how they are placed.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


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
    stratify (their units go to train whole). `labels` holds label codes (-1 = unlabelled).

    Multi-row units, largest first (ties in seeded random order), go to the split whose per-label
    targets they fill best (deficits relative to target, weighted by the unit's label counts);
    single rows then fill each label's remaining targets exactly, in seeded random order.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int8), []
    ratio = np.asarray(ratios, dtype=np.float64)
    _, unit_id = np.unique(unit, return_inverse=True)
    _, label_id = np.unique(labels, return_inverse=True)
    label_codes = np.unique(labels)
    n_units, n_labels = unit_id.max() + 1, label_id.max() + 1
    counts = np.zeros((n_units, n_labels), dtype=np.int32)  # the split's largest array: 32-bit
    np.add.at(counts, (unit_id, label_id), 1)
    per_label = counts.sum(axis=0)
    rare = [int(c) for c, k in zip(label_codes, per_label, strict=True)
            if c >= 0 and k < min_rows_per_label]
    rare_cols = np.isin(label_codes, rare)
    unit_split = np.zeros(n_units, dtype=np.int8)
    in_train = counts[:, rare_cols].sum(axis=1) > 0
    open_units = np.flatnonzero(~in_train)
    target = ratio[:, None] * counts[open_units].sum(axis=0)[None, :]
    filled = np.zeros_like(target)
    sizes = counts.sum(axis=1)
    shuffled = open_units[rng.permutation(open_units.size)]
    multi = shuffled[sizes[shuffled] > 1]
    for u in multi[np.argsort(-sizes[multi], kind="stable")]:
        gain = ((target - filled) / np.maximum(target, 1)) @ counts[u]
        choice = int(np.argmax(gain))
        unit_split[u] = choice
        filled[choice] += counts[u]
    single = shuffled[sizes[shuffled] == 1]
    single_label = counts[single].argmax(axis=1)
    for col in range(n_labels):
        rows = single[single_label == col]
        quota = _largest_remainder(rows.size, target[:, col] - filled[:, col])
        unit_split[rows] = np.repeat(np.arange(3, dtype=np.int8), quota)
    return unit_split[unit_id], rare
