"""Decide, from the per-row keys alone, which rows are duplicates and which split each kept row
goes to, then check the result for leakage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dedup import NearDedup, cross_split_pairs, exact_duplicates, near_duplicates
from .keys import Keys
from .split import assign, units


@dataclass
class Plan:
    exact_dup_of: np.ndarray
    near: NearDedup | None
    kept: np.ndarray
    split: np.ndarray            # 0/1/2 per row; meaningful where kept
    rare_labels: list[str]
    exact_cluster_sizes: dict[int, int]
    leakage: dict[str, Any] = field(default_factory=dict)


def make_plan(keys: Keys, recipe: dict[str, Any], load_sets) -> Plan:
    """`load_sets(rows)` returns the sorted shingle-hash set of each requested row."""
    n = len(keys)
    dedup, split_opts = recipe["dedup"], recipe["split"]
    exact_dup_of = exact_duplicates(keys.exact) if dedup["exact"] else np.full(n, -1, np.int64)
    unique = exact_dup_of == -1
    near = None
    kept = unique.copy()
    cluster = np.arange(n)
    if dedup["near"]:
        near = near_duplicates(keys.sigs, unique, keys.chars, dedup["near_threshold"], load_sets)
        kept &= near.dup_of == -1
        cluster = near.component
    stratify = split_opts["stratify_by"]
    if stratify == "auto":
        stratify = "label" if keys.label_names else None
    strata = {"label": keys.labels, "lang": keys.langs}.get(stratify, np.full(n, -1, np.int64))
    names = {"label": keys.label_names, "lang": keys.lang_names}.get(stratify, [])
    ratios = np.asarray(split_opts["ratios"], dtype=np.float64)
    ratios = list(ratios / ratios.sum())
    idx = np.flatnonzero(kept)
    split = np.zeros(n, dtype=np.int8)
    sub_split, rare = assign(strata[idx], units(cluster[idx], keys.groups[idx]), ratios,
                             recipe["seed"], split_opts["min_rows_per_label"])
    split[idx] = sub_split
    plan = Plan(exact_dup_of, near, kept, split, [names[c] for c in rare],
                _exact_cluster_sizes(exact_dup_of))
    plan.leakage = _leakage(keys, plan, dedup["near_threshold"], load_sets)
    return plan


def _exact_cluster_sizes(dup_of: np.ndarray) -> dict[int, int]:
    owners = dup_of[dup_of >= 0]
    if owners.size == 0:
        return {}
    sizes = np.unique(owners, return_counts=True)[1] + 1
    values, counts = np.unique(sizes, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}


def _leakage(keys: Keys, plan: Plan, threshold: float, load_sets) -> dict[str, Any]:
    checked, leaks = cross_split_pairs(keys.sigs, plan.kept, plan.split, threshold, load_sets)
    ids = keys.sources
    return {"threshold": threshold, "pairs_checked": checked, "cross_split_pairs": int(len(leaks)),
            "ok": len(leaks) == 0,
            "examples": [[ids[int(a)].as_py(), ids[int(b)].as_py()] for a, b in leaks[:5]]}
