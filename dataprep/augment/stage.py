"""The augment stage: new train rows made from train rows, checked, deduplicated, recorded.

Runs after the split plan and before the splits are written, on kept train rows only, so no
augmented text can reach validation or test (and those two splits are the same bytes with
augmentation on or off). For each entry of the recipe's `augment` list: choose parents (a seeded
share of train, stratified by label), hand their text units to the backend in batches (a
classification row's text, an instruction's prompt, a chat's user turns; never an answer), check
each candidate's fidelity against its parent, then drop candidates that duplicate a train row or
an earlier candidate. Accepted rows keep their parent's label, group and language and carry
`origin`, `augmenter` and `parent_id`; the pipeline appends them to a second staging file that
the second pass writes into train after the input rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..keys import Keys
from ..kinds import RecordKind
from ..neardup import ShingleSets
from ..samples import add_capped, has_room
from ..settings import Augment, Dedup, Recipe
from ..staging import staged_schema, take_rows, with_provenance
from ..textview import normalise_for_dedup
from .backends import make_augmenter
from .dedup import TrainIndex, duplicate_reasons
from .fidelity import fidelity_check

EXAMPLES = 5
REJECTED_EXAMPLES = 3
SIMILARITY_EDGES = [round(x, 2) for x in np.linspace(0, 1, 21)]


@dataclass
class AugmenterStats:
    """What one recipe entry did: the report's row for it."""

    index: int
    origin: str
    backend: str
    augmenter: str
    fraction: float
    parents: int = 0
    candidates: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    similarity: list[float] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    rejected_examples: dict[str, list] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        counts = np.histogram(np.clip(self.similarity, 0, 1), SIMILARITY_EDGES)[0]
        return {"index": self.index, "origin": self.origin, "backend": self.backend,
                "augmenter": self.augmenter, "fraction": self.fraction, "parents": self.parents,
                "candidates": self.candidates, "accepted": self.accepted,
                "rejected_by_reason": dict(sorted(self.rejected.items())),
                "seconds": round(self.seconds, 3),
                "candidates_per_second": round(self.candidates / self.seconds, 2)
                if self.seconds else None,
                "similarity_histogram": {"edges": SIMILARITY_EDGES, "counts": counts.tolist()},
                "examples": self.examples, "rejected_examples": self.rejected_examples}


def choose_parents(keys: Keys, train_rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded share of train rows, the same share of every label (rounded per label)."""
    rng = np.random.default_rng(seed)
    strata = keys.labels[train_rows]
    order = rng.permutation(len(train_rows))
    order = order[np.argsort(strata[order], kind="stable")]
    values, starts, counts = np.unique(strata[order], return_index=True, return_counts=True)
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    want = np.repeat(np.round(counts * fraction).astype(np.int64), counts)
    return np.sort(train_rows[order[rank < want]])


def joined_units(units: pa.Array, owners: np.ndarray, n_rows: int) -> pa.Array:
    """One text per row: its units joined by newlines (what fidelity compares)."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=n_rows))])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), units), "\n")


Progress = Callable[[str, int], None]


def augment_train(staging: Path, kind: RecordKind, keys: Keys, kept: np.ndarray,
                  split: np.ndarray, recipe: Recipe, load_sets: ShingleSets,
                  progress: Progress | None = None, parent: Any = None
                  ) -> Iterator[tuple[pa.Table, AugmenterStats]]:
    """Run every augment entry of the recipe in order; yields each entry's accepted rows (in the
    staged schema plus provenance) and its stats. The pipeline writes and counts the rows. In a
    child version (`parent`: its parent's lineage) the new train rows are augmented, and the
    candidates are deduplicated against the parent's train rows too."""
    if not recipe.augment:
        return
    train_rows = np.flatnonzero(kept & (split == 0))
    train = TrainIndex(train_rows, keys, load_sets)
    if parent is not None:
        train.parent = parent
        train.parent_rows = np.flatnonzero(parent.column("split") == 0)
    schema = augmented_schema(kind)
    accepted_texts: list[pa.Array] = []
    for index, spec in enumerate(recipe.augment):
        seed = int(np.random.SeedSequence([recipe.seed, index]).generate_state(1)[0])
        parents = take_rows(staging, choose_parents(keys, train_rows, spec.fraction, seed))
        table, stat, pairs = _run_entry(index, spec, seed, parents, kind, recipe, progress)
        keep, texts = _drop_duplicates(table, kind, stat, accepted_texts, train, recipe.dedup)
        accepted_texts.append(texts)
        _record_examples(stat, *(part[keep] for part in pairs))
        yield table.filter(pa.array(keep)).cast(schema), stat


def augmented_schema(kind: RecordKind) -> pa.Schema:
    """Augmented rows: a staged row of the kind with its provenance columns."""
    return with_provenance(staged_schema(kind).empty_table()).schema


def _run_entry(index: int, spec: Augment, seed: int, parents: pa.Table, kind: RecordKind,
               recipe: Recipe, progress: Progress | None
               ) -> tuple[pa.Table, AugmenterStats, tuple[np.ndarray, ...]]:
    """Generate and fidelity-check one entry's candidates; returns the passing rows and their
    (parent text, child text, similarity) for the report's examples."""
    augmenter = make_augmenter(spec, seed)
    stat = AugmenterStats(index, augmenter.origin, spec.backend, augmenter.name,
                          spec.fraction, parents=parents.num_rows)
    units, owners = kind.text_units(parents)
    started = time.perf_counter()
    tick = (lambda n: progress(augmenter.name, n)) if progress else None
    children = pa.array(augmenter.transform(units.to_pylist(), tick), pa.string())
    stat.seconds = time.perf_counter() - started
    stat.candidates = parents.num_rows
    before = joined_units(units, owners, parents.num_rows)
    after = joined_units(children, owners, parents.num_rows)
    check = fidelity_check(before.to_pylist(), after.to_pylist(), recipe.fidelity,
                           recipe.language_backend)
    stat.similarity = check.similarity[~np.isnan(check.similarity)].tolist()
    _record_rejects(stat, check.reasons, before, after, check.similarity)
    passed = check.reasons == None  # noqa: E711 (elementwise on objects)
    table = kind.with_units(parents, children).filter(pa.array(passed))
    ids = table.column("id").combine_chunks()
    n = table.num_rows
    origin = pa.array(np.full(n, augmenter.origin, dtype=object), pa.string())
    table = table.set_column(0, "id", pc.binary_join_element_wise(
        ids, f"~{augmenter.origin}{index}", ""))
    source = table.schema.get_field_index("source")
    table = table.set_column(source, "source", pc.binary_join_element_wise(
        table.column("source"), f"#augment{index}:{augmenter.origin}", ""))
    table = with_provenance(table, origin, pa.array(np.full(n, augmenter.name, dtype=object),
                                                    pa.string()), ids)
    mask = pa.array(passed)
    pairs = (before.filter(mask).to_numpy(zero_copy_only=False),
             after.filter(mask).to_numpy(zero_copy_only=False), check.similarity[passed])
    return table, stat, pairs


def _record_examples(stat: AugmenterStats, parents: np.ndarray, children: np.ndarray,
                     sims: np.ndarray) -> None:
    for parent, child, sim in zip(parents[:EXAMPLES], children[:EXAMPLES], sims[:EXAMPLES],
                                  strict=True):
        stat.examples.append({"parent": parent, "child": child,
                              "similarity": round(float(sim), 4)})


def _record_rejects(stat: AugmenterStats, reasons: np.ndarray, before: pa.Array,
                    after: pa.Array, sims: np.ndarray) -> None:
    for i in np.flatnonzero(reasons != None):  # noqa: E711
        reason = str(reasons[i])
        stat.rejected[reason] += 1
        if has_room(stat.rejected_examples, reason, REJECTED_EXAMPLES):
            sim = None if np.isnan(sims[i]) else round(float(sims[i]), 4)
            add_capped(stat.rejected_examples, reason, {
                "parent": before[int(i)].as_py(), "child": after[int(i)].as_py(),
                "similarity": sim}, REJECTED_EXAMPLES)


def _drop_duplicates(table: pa.Table, kind: RecordKind, stat: AugmenterStats,
                     earlier: list[pa.Array], train: TrainIndex, dedup: Dedup
                     ) -> tuple[np.ndarray, pa.Array]:
    """Find candidates duplicating train rows or candidates accepted before (this entry's and
    earlier entries'); returns the keep mask and the kept rows' normalised texts."""
    texts = normalise_for_dedup(kind.row_text(table))
    prior = pa.concat_arrays(earlier) if earlier else pa.array([], pa.string())
    reasons = duplicate_reasons(pa.concat_arrays([prior, texts]), train, dedup)
    reasons = reasons[len(prior):]
    keep = reasons == None  # noqa: E711
    for reason in reasons[~keep]:
        stat.rejected[str(reason)] += 1
    stat.accepted = int(keep.sum())
    return keep, texts.filter(pa.array(keep))
