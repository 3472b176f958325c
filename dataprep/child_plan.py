"""The plan of a child version (`--from`): its new rows deduplicated against the rows already
placed and each other, and split around them; a placed row never changes split.

Rows are numbered parent first (0..P-1, the parent's lineage order), then the new staging rows
(P..P+N-1); the plan's arrays cover the new rows and name duplicates' owners in that numbering.
The new rows are planned one input file at a time, in input order, each file against the rows
placed before it (the parent's, then the kept rows of the earlier files), so that one child of
files b and c is the same, row for row, as a child of b and then its child of c: any grouping of
the same files in the same order makes the same splits. For each file, the fresh plan's rules
(`plan.py`) with the placed rows kept and fixed:

- exact: a row whose key a placed row (or an earlier row of its file) has is removed naming it;
- near: candidates are searched among the placed rows and the file's rows, with every placed row
  given the same `across` code, so no pair of placed rows is looked at again (and where the
  parent's lineage stores its band keys, only the rows after the parent's are banded and looked
  up in them: `NearDupIndex(stored=...)`, the same pairs); a row at or above the threshold to a
  placed row is removed naming the most similar one; the file's rows left are deduplicated
  among themselves as a fresh run does (longest, then earliest, kept);
- split: a kept row of a placed row's `group_by` group goes to that group's split and unit; any
  other kept row whose unit (near-duplicate cluster and group, through dropped rows too) holds a
  placed row goes to the earliest such row's (where a unit joins placed rows of different
  splits, the groups decide: kept rows are all below the threshold to each other);
  the other kept rows are split alone, by `split.assign` with the recipe's ratios and seed
  (largest remainder per stratum of these rows), into units numbered after every unit so far,
  in order of their first row, with strata numbered by name (so the numbering is the same
  whatever came before);
- leakage: kept pairs across splits with a row of the file in them, searched with the leakage
  banding; a leak is a pair dedup's LSH missed, merged into the file's clustering and the file
  planned again, as the fresh plan does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# the fresh dedup's greedy keeper choice inside a cluster, reused for each file's clusters
from .dedup import NearDedup, _choose_keepers, _members, exact_duplicates
from .keys import Keys
from .lineage import Lineage
from .neardup import DEDUP, LEAKAGE, NearDupIndex, ShingleSetTable, StackedSignatures
from .plan import LEAK_ROUNDS, Plan, _exact_cluster_sizes
from .settings import Recipe
from .split import assign, units
from .strata import Strata

NO_PAIRS = np.zeros((0, 2), dtype=np.int64)


@dataclass
class Placed:
    """Every row in one numbering (parent, then new) and what is decided of it so far."""

    fixed: np.ndarray       # placed: a parent row, or a kept row of an earlier file
    split: np.ndarray       # int8, where fixed
    unit: np.ndarray        # int64, where fixed
    exact: np.ndarray       # (rows, 2) exact keys
    lengths: np.ndarray
    groups: np.ndarray      # one group numbering for parent and new rows, -1: none
    next_unit: int
    #: the parent's stored band keys (`Lineage.bands`): searches band only the other rows
    bands: dict = field(default_factory=dict)


@dataclass
class FilePlan:
    """One file's decisions, over its rows `rows` (combined numbers)."""

    rows: np.ndarray
    exact_of: np.ndarray    # owner per row, -1 if none
    near_of: np.ndarray
    similarity: np.ndarray
    kept: np.ndarray
    split: np.ndarray
    unit: np.ndarray
    rare: list[int]
    candidates: int
    verified: int
    good: np.ndarray        # verified pairs at or above the threshold


def child_plan(parent: Lineage, keys: Keys, recipe: Recipe, load_new_sets, strata: Strata,
               workers: int = 1, sources_of: Callable[[np.ndarray], list[str]] | None = None
               ) -> Plan:
    """The plan of the new rows (`keys`, staging order) of a child of `parent`.
    `load_new_sets(rows)` gives the shingle sets of staging rows, `sources_of(rows)` their
    sources (for the leak examples)."""
    p, n = len(parent), len(keys)
    ngram = recipe.dedup.ngram
    sigs = StackedSignatures(parent.sigs, np.arange(p, dtype=np.int64), keys.sigs)

    def load_sets(rows: np.ndarray) -> ShingleSetTable:
        rows = np.unique(rows)
        old = parent.shingle_sets(rows[rows < p], ngram)
        new = load_new_sets(rows[rows >= p] - p)
        shifted = ShingleSetTable(new.rows + p, new.blocks, new.block, new.starts, new.ends)
        return ShingleSetTable.concat([old, shifted])

    placed = Placed(
        fixed=np.concatenate([np.ones(p, bool), np.zeros(n, bool)]),
        split=np.concatenate([parent.column("split"), np.zeros(n, np.int8)]).astype(np.int8),
        unit=np.concatenate([parent.column("unit"), np.full(n, -1)]).astype(np.int64),
        exact=np.concatenate([parent.exact, keys.exact]).astype(np.uint64),
        lengths=np.concatenate([parent.column("chars"), keys.chars]).astype(np.int64),
        groups=_joint_codes(parent.strings("group"), keys.groups, keys.group_names),
        next_unit=int(parent.column("unit").max()) + 1 if p else 0, bands=parent.bands)
    codes = _named_codes(strata)
    files = keys.files if keys.files is not None else np.zeros(n, np.int32)
    plans, checked, leaks, merged = [], 0, [], 0
    for code in np.unique(files):
        rows = p + np.flatnonzero(files == code)
        extra = NO_PAIRS
        for _ in range(LEAK_ROUNDS):
            plan = _plan_file(placed, rows, sigs, codes[rows - p], recipe, load_sets, extra,
                              workers)
            looked, found = _leaks(placed, plan, sigs, recipe.dedup.near_threshold, load_sets,
                                   workers)
            if len(found) == 0 or not recipe.dedup.near:
                break
            extra = np.concatenate([extra, found])
        _fix(placed, plan)
        plans.append(plan)
        checked, merged = checked + looked, merged + len(extra)
        leaks.extend(found.tolist())
    return _joined(plans, parent, n, strata, recipe.dedup.near_threshold, checked,
                   leaks, merged, sources_of)


def _joint_codes(parent_groups: pa.Array, new_codes: np.ndarray, new_names: list[str]
                 ) -> np.ndarray:
    """Group codes of parent and new rows in one numbering (-1: no group): a new row of a
    parent's group gets that group's code."""
    names = pa.array(list(new_names) + [None], pa.string())
    new = names.take(pa.array(np.where(new_codes >= 0, new_codes, len(new_names))))
    every = pa.concat_arrays([parent_groups.cast(pa.string()), new])
    encoded = pc.dictionary_encode(every)
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _named_codes(strata: Strata) -> np.ndarray:
    """Stratum codes numbered by the strata's names (-1 stays): the split of a file's rows must
    not depend on the order in which earlier files first showed each stratum."""
    if not strata.names:
        return strata.codes.astype(np.int64)
    rank = np.empty(len(strata.names), np.int64)
    rank[np.argsort(np.array(strata.names, dtype=object))] = np.arange(len(strata.names))
    return np.where(strata.codes >= 0, rank[np.maximum(strata.codes, 0)], -1)


def _plan_file(placed: Placed, rows: np.ndarray, sigs, strata: np.ndarray, recipe: Recipe,
               load_sets, extra: np.ndarray, workers: int) -> FilePlan:
    """Dedup and split of one file's rows against the placed rows."""
    dedup, m = recipe.dedup, len(rows)
    fixed = np.flatnonzero(placed.fixed)
    exact_of = np.full(m, -1, np.int64)
    if dedup.exact and m:
        owner = exact_duplicates(np.concatenate([placed.exact[fixed], placed.exact[rows]]))
        owner = owner[len(fixed):]
        exact_of = np.where(owner < 0, -1, np.concatenate([fixed, rows])[np.maximum(owner, 0)])
    unique = exact_of == -1
    near_of, sim = np.full(m, -1, np.int64), np.zeros(m, np.float32)
    found, good = 0, NO_PAIRS
    if dedup.near and unique.any():
        found, good, near_of, sim = _near(placed, fixed, rows, unique, sigs, dedup, load_sets,
                                          extra, workers)
    kept = unique & (near_of == -1)
    split, unit, rare = _split(placed, fixed, rows, kept, good, strata, recipe)
    return FilePlan(rows, exact_of, near_of, sim, kept, split, unit, rare, found, len(good),
                    good)


def _near(placed: Placed, fixed: np.ndarray, rows: np.ndarray, unique: np.ndarray, sigs,
          dedup, load_sets, extra: np.ndarray, workers: int):
    """Near-duplicate decisions of one file's rows: (candidates, verified pairs at or above the
    threshold, owner per row or -1, similarity to it)."""
    search = np.concatenate([fixed, rows[unique]])
    total = len(placed.fixed)
    codes = np.zeros(total, np.int64)
    codes[rows] = np.arange(1, len(rows) + 1)
    index = NearDupIndex(sigs, dedup.near_threshold, DEDUP, placed.bands)
    found, pairs = index.search(np.sort(search), workers, across=codes)
    if len(extra):
        pairs = np.unique(np.concatenate([pairs, np.sort(extra, axis=1)]), axis=0)
    sets = load_sets(np.unique(pairs))
    sims = index.verify(sets, pairs, workers)
    passed = sims >= dedup.near_threshold
    good, good_sims = pairs[passed], sims[passed]
    dup_of, sim_to = np.full(total, -1, np.int64), np.zeros(total, np.float32)
    # a row near a placed row goes, naming the most similar placed row (pairs are i < j, and
    # every placed row comes before the file's rows)
    to_placed = placed.fixed[good[:, 0]]
    order = np.argsort(-good_sims[to_placed], kind="stable")
    hits, hit_sims = good[to_placed][order], good_sims[to_placed][order]
    hit_rows, first = np.unique(hits[:, 1], return_index=True)
    dup_of[hit_rows], sim_to[hit_rows] = hits[first, 0], hit_sims[first]
    # the file's rows left: the fresh dedup's greedy choice inside each of their clusters
    left = np.zeros(total, bool)
    left[rows[unique]] = True
    left &= dup_of == -1
    among = good[~to_placed]
    among = among[left[among[:, 0]] & left[among[:, 1]]]
    graph = coo_matrix((np.ones(len(among)), (among[:, 0], among[:, 1])), shape=(total, total))
    inner = connected_components(graph, directed=False)[1]
    sizes = np.bincount(inner[left], minlength=inner.max() + 1)
    multi = np.flatnonzero(sizes >= 2)
    if multi.size:
        for members in _members(inner, left, multi):
            _choose_keepers(sets, members, placed.lengths, dedup.near_threshold, dup_of, sim_to)
    return found, good, dup_of[rows], sim_to[rows]


def _split(placed: Placed, fixed: np.ndarray, rows: np.ndarray, kept: np.ndarray,
           good: np.ndarray, strata: np.ndarray, recipe: Recipe):
    """Split and unit of each kept row of the file, and the rare strata of its own split."""
    nodes = np.concatenate([fixed, rows])
    local = np.full(len(placed.fixed), -1, np.int64)
    local[nodes] = np.arange(len(nodes))
    edges = local[good]
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                       shape=(len(nodes), len(nodes)))
    cluster = connected_components(graph, directed=False)[1]
    unit_key = np.concatenate([placed.unit[fixed], np.full(len(rows), -1, np.int64)])
    # as in the fresh plan, a dropped row's group joins nothing (its near pairs still do)
    groups = placed.groups[nodes]
    groups[len(fixed):][~kept] = -1
    joined = units(cluster, unit_key, groups)
    mine = _anchor(joined, len(fixed))
    # a row of a placed group goes with it, even where a near pair joins another split's rows
    by_group = _anchor(np.where(groups >= 0, groups, groups.max(initial=0) + 1), len(fixed))
    mine = np.where((groups[len(fixed):] >= 0) & (by_group < len(fixed)), by_group, mine)
    split, unit = np.zeros(len(rows), np.int8), np.full(len(rows), -1, np.int64)
    joins = kept & (mine < len(fixed))
    split[joins] = placed.split[fixed[mine[joins]]]
    unit[joins] = placed.unit[fixed[mine[joins]]]
    free = np.flatnonzero(kept & (mine >= len(fixed)))
    # units numbered in order of their first row, so numbering is the same in any grouping
    first_rows = {}
    for at, component in zip(free.tolist(), joined[len(fixed):][free].tolist(), strict=True):
        first_rows.setdefault(component, at)
    order = {c: k for k, c in enumerate(sorted(first_rows, key=first_rows.get))}
    unit[free] = placed.next_unit + np.array([order[c] for c in
                                              joined[len(fixed):][free].tolist()], np.int64)
    ratios = np.asarray(recipe.split.ratios, dtype=np.float64)
    split[free], rare = assign(strata[free], unit[free], list(ratios / ratios.sum()),
                               recipe.seed, recipe.split.min_rows_per_label)
    return split, unit, rare


def _anchor(key: np.ndarray, placed: int) -> np.ndarray:
    """For each row after the first `placed`, the first of those `placed` rows with its key
    (`placed` where none has it)."""
    first = np.full(int(key.max()) + 1 if len(key) else 0, placed, np.int64)
    np.minimum.at(first, key[:placed], np.arange(placed))
    return first[key[placed:]]


def _leaks(placed: Placed, plan: FilePlan, sigs, threshold: float, load_sets, workers: int
           ) -> tuple[int, np.ndarray]:
    """Kept pairs across splits with a row of the file in them, at or above the threshold."""
    if not plan.kept.any():
        return 0, NO_PAIRS
    split = placed.split.copy()
    split[plan.rows] = plan.split
    codes = np.zeros(len(placed.fixed), np.int64)
    codes[plan.rows] = np.arange(1, len(plan.rows) + 1)
    rows = np.sort(np.concatenate([np.flatnonzero(placed.fixed), plan.rows[plan.kept]]))
    index = NearDupIndex(sigs, threshold, LEAKAGE, placed.bands)
    pairs = index.candidates(rows, workers, across=codes)
    across = pairs[split[pairs[:, 0]] != split[pairs[:, 1]]]
    screened = index.screen(across)
    if len(screened) == 0:
        return int(len(across)), NO_PAIRS
    sims = index.verify(load_sets(np.unique(screened)), screened, workers)
    return int(len(across)), screened[sims >= threshold]


def _fix(placed: Placed, plan: FilePlan) -> None:
    """The file's kept rows become placed rows for the files after it."""
    rows = plan.rows[plan.kept]
    placed.fixed[rows] = True
    placed.split[rows], placed.unit[rows] = plan.split[plan.kept], plan.unit[plan.kept]
    if plan.kept.any():
        placed.next_unit = max(placed.next_unit, int(plan.unit[plan.kept].max()) + 1)


def _joined(plans: list[FilePlan], parent: Lineage, n: int, strata: Strata, threshold: float,
            checked: int, leaks: list, merged: int, sources_of) -> Plan:
    """The files' plans as one plan of the staging rows."""
    p = len(parent)
    exact, near = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
    sim, kept = np.zeros(n, np.float32), np.zeros(n, bool)
    split, unit = np.zeros(n, np.int8), np.full(n, -1, np.int64)
    for f in plans:
        at = f.rows - p
        exact[at], near[at], sim[at] = f.exact_of, f.near_of, f.similarity
        kept[at], split[at], unit[at] = f.kept, f.split, f.unit
    good = np.concatenate([f.good for f in plans]) if plans else NO_PAIRS
    sizes = np.bincount(connected_components(coo_matrix(
        (np.ones(len(good)), (good[:, 0], good[:, 1])), shape=(p + n, p + n)),
        directed=False)[1]) if len(good) else np.zeros(0, np.int64)
    values, counts = np.unique(sizes[sizes >= 2], return_counts=True)
    near_dedup = NearDedup(near, sim, unit, dict(zip(values.tolist(), counts.tolist(),
                                                     strict=True)),
                           sum(f.candidates for f in plans), sum(f.verified for f in plans))
    names = sorted(strata.names)
    rare = sorted({names[c] for f in plans for c in f.rare})
    plan = Plan(exact, near_dedup, kept, split, unit, rare, _exact_cluster_sizes(exact))
    examples = [[_source(parent, sources_of, int(r)) for r in pair] for pair in leaks[:5]]
    plan.leakage = {"threshold": threshold, "pairs_checked": checked,
                    "cross_split_pairs": len(leaks), "ok": not leaks,
                    "missed_by_lsh_and_merged": merged, "examples": examples}
    plan.parent = parent
    return plan


def _source(parent: Lineage, sources_of, row: int) -> str:
    """The source of a row in the combined numbering (a parent row's from its lineage)."""
    if row < len(parent):
        return parent.strings("source")[row].as_py()
    return sources_of(np.array([row - len(parent)]))[0] if sources_of else f"row {row}"
