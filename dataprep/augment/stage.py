"""The augment stage: new train rows made from train rows, checked, deduplicated, recorded.

Runs after the split plan and before the splits are written, on kept train rows only, so no
augmented text can reach validation or test (and those two splits are the same bytes with
augmentation on or off). For each entry of the recipe's `augment` list: choose parents (a seeded
share of train, stratified by label), hand their text units to the backend in batches (a
classification row's text, an instruction's prompt, a chat's user turns; never an answer), check
each candidate's fidelity against its parent, then drop candidates that duplicate a train row or
an earlier candidate. Accepted rows keep their parent's label, group and language and carry
`origin`, `augmenter` and `parent_id`; they are appended to a second staging file the second pass
writes into train after the input rows.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..keys import Keys
from ..staging import staged_schema, take_rows, with_provenance
from ..textview import normalise_for_dedup, row_text
from ..validate import MESSAGE_TYPE
from .backends import make_augmenter
from .dedup import TrainIndex, duplicate_reasons
from .fidelity import fidelity_check

AUGMENTED_FILE = ".augmented.arrow"
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


@dataclass
class AugmentOutcome:
    path: Path | None
    stats: list[AugmenterStats]

    def accepted_by_origin(self) -> Counter:
        out: Counter = Counter()
        for s in self.stats:
            out[s.origin] += s.accepted
        return out


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


def text_units(table: pa.Table, kind: str) -> tuple[pa.Array, np.ndarray]:
    """The texts an augmenter may rewrite and the row each belongs to: a classification text,
    an instruction prompt, or every user turn of a chat."""
    if kind == "classification":
        return table.column("text").combine_chunks(), np.arange(table.num_rows)
    if kind == "instruction":
        return table.column("prompt").combine_chunks(), np.arange(table.num_rows)
    messages = table.column("messages").combine_chunks()
    flat = messages.flatten()
    user = pc.equal(flat.field("role"), "user")
    owners = pc.list_parent_indices(messages).to_numpy()
    return flat.field("content").filter(user), owners[user.to_numpy(zero_copy_only=False)]


def with_units(table: pa.Table, kind: str, units: pa.Array) -> pa.Table:
    """The table with its text units replaced (the inverse of `text_units`)."""
    column = {"classification": "text", "instruction": "prompt"}.get(kind)
    if column:
        return table.set_column(table.schema.get_field_index(column), column, units)
    messages = table.column("messages").combine_chunks()
    flat = messages.flatten()
    user = pc.equal(flat.field("role"), "user").to_numpy(zero_copy_only=False)
    contents = flat.field("content").to_numpy(zero_copy_only=False).copy()
    contents[user] = units.to_numpy(zero_copy_only=False)
    structs = pa.StructArray.from_arrays([flat.field("role"), pa.array(contents, pa.string())],
                                         names=["role", "content"])
    rebuilt = pa.ListArray.from_arrays(messages.offsets, structs).cast(MESSAGE_TYPE)
    return table.set_column(table.schema.get_field_index("messages"), "messages", rebuilt)


def joined_units(units: pa.Array, owners: np.ndarray, n_rows: int) -> pa.Array:
    """One text per row: its units joined by newlines (what fidelity compares)."""
    offsets = np.concatenate([[0], np.cumsum(np.bincount(owners, minlength=n_rows))])
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), units), "\n")


Progress = Callable[[str, int], None]


def augment_train(staging: Path, kind: str, keys: Keys, kept: np.ndarray, split: np.ndarray,
                  recipe: dict[str, Any], out_dir: Path, load_sets,
                  progress: Progress | None = None) -> AugmentOutcome:
    """Run every augment entry of the recipe; accepted rows go to `out_dir/AUGMENTED_FILE`."""
    entries = recipe["augment"]
    if not entries:
        return AugmentOutcome(None, [])
    train_rows = np.flatnonzero(kept & (split == 0))
    train = TrainIndex(train_rows, keys, load_sets)
    path = out_dir / AUGMENTED_FILE
    schema = with_provenance(staged_schema(kind).empty_table()).schema
    accepted_texts: list[pa.Array] = []
    stats = []
    with pa.ipc.new_stream(str(path), schema) as writer:
        for index, spec in enumerate(entries):
            seed = int(np.random.SeedSequence([recipe["seed"], index]).generate_state(1)[0])
            parents = take_rows(staging, choose_parents(keys, train_rows, spec["fraction"], seed))
            table, stat, pairs = _run_entry(index, spec, seed, parents, kind, recipe, progress)
            keep, texts = _drop_duplicates(table, kind, stat, accepted_texts, train, recipe)
            table = table.filter(pa.array(keep))
            accepted_texts.append(texts)
            _record_examples(stat, *(part[keep] for part in pairs))
            writer.write_table(table.cast(schema))
            stats.append(stat)
    return AugmentOutcome(path, stats)


def _run_entry(index: int, spec: dict[str, Any], seed: int, parents: pa.Table, kind: str,
               recipe: dict[str, Any], progress: Progress | None
               ) -> tuple[pa.Table, AugmenterStats, tuple[np.ndarray, ...]]:
    """Generate and fidelity-check one entry's candidates; returns the passing rows and their
    (parent text, child text, similarity) for the report's examples."""
    augmenter = make_augmenter(spec, seed)
    stat = AugmenterStats(index, augmenter.origin, spec["backend"], augmenter.name,
                          spec["fraction"], parents=parents.num_rows)
    units, owners = text_units(parents, kind)
    started = time.perf_counter()
    tick = (lambda n: progress(augmenter.name, n)) if progress else None
    children = pa.array(augmenter.transform(units.to_pylist(), tick), pa.string())
    stat.seconds = time.perf_counter() - started
    stat.candidates = parents.num_rows
    before = joined_units(units, owners, parents.num_rows)
    after = joined_units(children, owners, parents.num_rows)
    check = fidelity_check(before.to_pylist(), after.to_pylist(), recipe["fidelity"],
                           recipe["language_backend"])
    stat.similarity = check.similarity[~np.isnan(check.similarity)].tolist()
    _record_rejects(stat, check.reasons, before, after, check.similarity)
    passed = check.reasons == None  # noqa: E711 (elementwise on objects)
    table = with_units(parents, kind, children).filter(pa.array(passed))
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
        sample = stat.rejected_examples.setdefault(reason, [])
        if len(sample) < REJECTED_EXAMPLES:
            sim = None if np.isnan(sims[i]) else round(float(sims[i]), 4)
            sample.append({"parent": before[int(i)].as_py(), "child": after[int(i)].as_py(),
                           "similarity": sim})


def _drop_duplicates(table: pa.Table, kind: str, stat: AugmenterStats,
                     earlier: list[pa.Array], train: TrainIndex, recipe: dict[str, Any]
                     ) -> tuple[np.ndarray, pa.Array]:
    """Find candidates duplicating train rows or candidates accepted before (this entry's and
    earlier entries'); returns the keep mask and the kept rows' normalised texts."""
    texts = normalise_for_dedup(row_text(table, kind))
    prior = pa.concat_arrays(earlier) if earlier else pa.array([], pa.string())
    reasons = duplicate_reasons(pa.concat_arrays([prior, texts]), train, recipe["dedup"])
    reasons = reasons[len(prior):]
    keep = reasons == None  # noqa: E711
    for reason in reasons[~keep]:
        stat.rejected[str(reason)] += 1
    stat.accepted = int(keep.sum())
    return keep, texts.filter(pa.array(keep))
