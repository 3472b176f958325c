"""Decide, from the per-row keys alone, which rows are duplicates and which split each kept row
goes to, then check the result for leakage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from .dedup import NearDedup, cross_split_pairs, exact_duplicates, near_duplicates
from .keys import Keys
from .memory import release_freed_memory
from .settings import Recipe
from .split import assign, units
from .strata import Strata


@dataclass
class Plan:
    exact_dup_of: np.ndarray
    near: NearDedup | None
    kept: np.ndarray
    split: np.ndarray            # 0/1/2 per row; meaningful where kept
    #: The row's split unit (rows of one near-duplicate cluster or `group_by` group), -1 where
    #: not kept. The version keeps it (column `unit`) so that k-fold cross-validation can keep
    #: a unit in one fold, as the split kept it in one split.
    unit: np.ndarray
    rare_labels: list[str]
    exact_cluster_sizes: dict[int, int]
    leakage: dict[str, Any] = field(default_factory=dict)
    #: A child's parent (`lineage.Lineage`): duplicate owners below its length are its rows,
    #: the rest are staging rows after them (`child_plan`); None in a fresh plan.
    parent: Any = None

    @property
    def offset(self) -> int:
        """Rows of the parent before the staging rows in duplicate-owner numbers."""
        return len(self.parent) if self.parent is not None else 0


#: Rounds of "plan, check for leaks, re-cluster with the leaking pairs" before giving up.
LEAK_ROUNDS = 3


def make_plan(keys: Keys, recipe: Recipe, load_sets, strata: Strata, workers: int = 1,
              sources_of: Callable[[np.ndarray], list[str]] | None = None) -> Plan:
    """Dedup, split (stratified by `strata`, see `strata.row_strata`), and check the split for
    leakage. Pairs at or above the threshold that the (more sensitive) leakage check finds
    across splits were missed by dedup's LSH: they are added to the clustering and the plan is
    made again. `load_sets(rows)` returns the sorted shingle-hash sets of the requested rows.
    `workers` processes share the candidate search and the exact Jaccard; the plan is the same
    whatever their number. `sources_of(rows)` names rows for the leak examples (default: the
    keys' own `sources`)."""
    dedup = recipe.dedup
    extra = np.zeros((0, 2), dtype=np.int64)
    for _ in range(LEAK_ROUNDS):
        plan = _plan_once(keys, recipe, load_sets, strata, extra, workers)
        release_freed_memory()
        checked, leaks = cross_split_pairs(keys.sigs, plan.kept, plan.split,
                                           dedup.near_threshold, load_sets, workers)
        if len(leaks) == 0 or not dedup.near:
            break
        extra = np.concatenate([extra, leaks])
    if sources_of is None:
        def sources_of(rows):
            return keys.sources.take(pa.array(rows)).to_pylist()
    named = sources_of(leaks[:5].ravel()) if len(leaks) else []
    plan.leakage = {"threshold": dedup.near_threshold, "pairs_checked": checked,
                    "cross_split_pairs": int(len(leaks)), "ok": len(leaks) == 0,
                    "missed_by_lsh_and_merged": int(len(extra)),
                    "examples": [named[k:k + 2] for k in range(0, len(named), 2)]}
    return plan


def _plan_once(keys: Keys, recipe: Recipe, load_sets, strata: Strata, extra: np.ndarray,
               workers: int) -> Plan:
    """Exact dedup, then near dedup among the rows left, then the split of the rows kept."""
    n = len(keys)
    dedup, split_opts = recipe.dedup, recipe.split
    exact_dup_of = exact_duplicates(keys.exact) if dedup.exact else np.full(n, -1, np.int64)
    unique = exact_dup_of == -1
    near = None
    kept = unique.copy()
    cluster = np.arange(n)
    if dedup.near:
        near = near_duplicates(keys.sigs, unique, keys.chars, dedup.near_threshold,
                               load_sets, extra, workers)
        release_freed_memory()  # the candidates' shingle sets, freed but kept by malloc
        kept &= near.dup_of == -1
        cluster = near.component
    ratios = np.asarray(split_opts.ratios, dtype=np.float64)
    ratios = list(ratios / ratios.sum())
    idx = np.flatnonzero(kept)
    split = np.zeros(n, dtype=np.int8)
    unit = np.full(n, -1, dtype=np.int64)
    unit[idx] = units(cluster[idx], keys.groups[idx])
    sub_split, rare = assign(strata.codes[idx], unit[idx], ratios, recipe.seed,
                             split_opts.min_rows_per_label)
    split[idx] = sub_split
    return Plan(exact_dup_of, near, kept, split, unit, [strata.names[c] for c in rare],
                _exact_cluster_sizes(exact_dup_of))


def _exact_cluster_sizes(dup_of: np.ndarray) -> dict[int, int]:
    owners = dup_of[dup_of >= 0]
    if owners.size == 0:
        return {}
    sizes = np.unique(owners, return_counts=True)[1] + 1
    values, counts = np.unique(sizes, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}
