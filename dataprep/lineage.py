"""What a version keeps for its children, so that a child costs what its new rows cost.

`dataprep run NEW --from NAME@VERSION` dedups the new rows against the parent's rows and splits
them around the parent's fixed splits. Re-reading and re-hashing the parent would make every
weekly version cost as much as a fresh run, so each version keeps, in `lineage/` (a folder
`datasets.load_from_disk` never looks at), one entry per kept input row in a fixed order (a
fresh version's kept rows in input order; a child's: its parent's entries, then its own kept
new rows):

- `keys.arrow`: the exact-dedup hashes, text length, label, group, language, stratum, split,
  split unit, id and source of each row;
- `signatures.npy`: their MinHash signatures, a (rows x num_perm) uint32 matrix, read through a
  memory map (only the rows a search touches are paged in);
- `rows-NNNNN.arrow`: the rows as the first pass kept them (the staging file's columns), one
  file a generation, hard-linked from the parent (never copied): the exact Jaccard of a
  candidate pair needs the parent row's words (only candidate rows are read), and a child made
  with `--recipe-change` puts the parent's rows through its filters again.

The child's split files are the parent's, hard-linked (`link_parent_splits`), plus one file of
new rows a split, all named in each split's `state.json`, so the parent's rows are never copied.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import DataprepError
from .kinds import get_kind
from .neardup import ShingleSetTable, shingle_sets_of
from .staging import staged_rows
from .store import SPLITS, VersionRef
from .textview import normalise_for_dedup

LINEAGE_DIR = "lineage"
KEYS_FILE, SIGNATURES_FILE = "keys.arrow", "signatures.npy"
#: Rows read back, written or copied at a time.
CHUNK = 65536

KEYS_SCHEMA = pa.schema([
    ("exact0", pa.uint64()), ("exact1", pa.uint64()), ("chars", pa.int32()),
    ("label", pa.string()), ("group", pa.string()), ("lang", pa.string()),
    ("stratum", pa.string()), ("split", pa.int8()), ("unit", pa.int64()),
    ("id", pa.string()), ("source", pa.string())])


@dataclass
class Lineage:
    """A version's lineage files read back: the compact columns in memory, the signatures
    mapped, the rows left on disk until a candidate pair needs them."""

    path: Path
    kind: str
    keys: pa.Table
    sigs: np.ndarray              # (rows, num_perm) uint32, memory-mapped
    row_parts: list[Path]
    #: A subset's row numbers in the stored files (None: every stored row, in order)
    stored_rows: np.ndarray | None = None

    def __len__(self) -> int:
        return self.keys.num_rows

    def column(self, name: str) -> np.ndarray:
        return self.keys.column(name).to_numpy(zero_copy_only=False)

    @property
    def exact(self) -> np.ndarray:
        return np.stack([self.column("exact0"), self.column("exact1")], axis=1)

    def strings(self, name: str) -> pa.Array:
        return self.keys.column(name).combine_chunks()

    def subset(self, keep: np.ndarray) -> Lineage:
        """The rows where `keep` is true, numbered from 0 (a view: the files are not copied;
        a child under `--recipe-change` plans against the parent rows its filters keep)."""
        at = np.flatnonzero(keep)
        stored = at if self.stored_rows is None else self.stored_rows[at]
        return Lineage(self.path, self.kind, self.keys.take(pa.array(at)),
                       RowsOf(self.sigs, at), self.row_parts, stored)

    def tables(self, rows: np.ndarray):
        """(row numbers, table) of the given rows, read from the row parts through a memory
        map, so only the pages of these rows are read."""
        rows = np.unique(rows)
        if self.stored_rows is not None:  # a subset: the stored rows are numbered apart
            order = self.stored_rows[rows]
            for here, table in self._stored_tables(order):
                yield rows[np.searchsorted(order, here)], table
            return
        yield from self._stored_tables(rows)

    def _stored_tables(self, rows: np.ndarray):
        lo = 0
        for path in self.row_parts:
            with pa.memory_map(str(path)) as source:
                for batch in pa.ipc.open_stream(source):
                    hi = lo + batch.num_rows
                    here = rows[np.searchsorted(rows, lo):np.searchsorted(rows, hi)]
                    if here.size:
                        yield here, pa.Table.from_batches([batch]).take(pa.array(here - lo))
                    lo = hi

    def shingle_sets(self, rows: np.ndarray, ngram: int) -> ShingleSetTable:
        """Shingle sets of the given rows (candidate pairs are a small share of rows)."""
        row_text = get_kind(self.kind).row_text
        return ShingleSetTable.concat([
            shingle_sets_of(normalise_for_dedup(row_text(table)), ngram, here)
            for here, table in self.tables(rows)])


class RowsOf:
    """Some rows of a signature matrix, read through as one matrix (`Lineage.subset`)."""

    def __init__(self, sigs: Any, rows: np.ndarray) -> None:
        self.sigs, self.rows = sigs, rows
        self.shape = (len(rows), sigs.shape[1])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.asarray(self.sigs[self.rows[idx]])


def read_lineage(ref: VersionRef, kind: str) -> Lineage:
    """The lineage of a stored version; a version made before lineage existed (or a damaged
    one) is a one-line error naming it."""
    folder = ref.path / LINEAGE_DIR
    keys_path, sigs_path = folder / KEYS_FILE, folder / SIGNATURES_FILE
    if not keys_path.is_file() or not sigs_path.is_file():
        raise DataprepError(f"{ref.name}@{ref.version}: has no {LINEAGE_DIR}/ folder (made "
                            "before child versions existed), so it cannot be a parent; run "
                            "its inputs again to make a version that can")
    try:
        with pa.memory_map(str(keys_path)) as source:
            keys = pa.ipc.open_stream(source).read_all()
        sigs = _load_signatures(sigs_path)
    except (OSError, ValueError) as exc:
        raise DataprepError(f"{folder}: damaged lineage ({str(exc)[:100]})") from None
    if keys.schema != KEYS_SCHEMA or len(sigs) != keys.num_rows:
        raise DataprepError(f"{folder}: damaged lineage ({keys.num_rows} key rows, "
                            f"{len(sigs)} signature rows)")
    return Lineage(folder, kind, keys, sigs, sorted(folder.glob("rows-*.arrow")))


def _load_signatures(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:  # an empty matrix cannot be mapped
        return np.load(path)


def _keys_table(keys: Any, kept: np.ndarray, plan: Any, strata: Any, ids: list[pa.Array],
                sources: list[pa.Array]) -> pa.Table:
    """The lineage entries of this run's kept staging rows (`kept`: their row numbers)."""
    def named(codes: np.ndarray, names: list[str]) -> pa.Array:
        lookup = pa.array(list(names) + [None], pa.string())
        return lookup.take(pa.array(np.where(codes >= 0, codes, len(names))))

    return pa.table({
        "exact0": keys.exact[kept, 0], "exact1": keys.exact[kept, 1],
        "chars": keys.chars[kept].astype(np.int32),
        "label": named(keys.labels[kept], keys.label_names),
        "group": named(keys.groups[kept], keys.group_names),
        "lang": named(keys.langs[kept], keys.lang_names),
        "stratum": named(strata.codes[kept], strata.names),
        "split": plan.split[kept].astype(np.int8), "unit": plan.unit[kept].astype(np.int64),
        "id": pa.chunked_array(ids, pa.string()), "source": pa.chunked_array(sources, pa.string()),
    }, schema=KEYS_SCHEMA)


def keep_lineage(tmp: Path, staging: Path, keys: Any, plan: Any, strata: Any,
                 dropped: np.ndarray | None = None) -> None:
    """Write `lineage/` of the version being built in `tmp` (after the second pass, before the
    staging and signature files read here are removed): a child's parent entries first (its
    keys streamed, its row parts hard-linked), then this run's kept rows (less `dropped`, the
    train rows decontamination removed: they are in no split) with their planned split and
    unit, their staging rows streamed into a row part of their own."""
    folder = tmp / LINEAGE_DIR
    folder.mkdir()
    parent: Lineage | None = plan.parent
    kept = np.flatnonzero(plan.kept & ~dropped) if dropped is not None else \
        np.flatnonzero(plan.kept)
    parts = _parent_parts(parent, folder) if parent is not None else []
    with pa.OSFile(str(staging)) as source:
        schema = pa.ipc.open_stream(source).schema
    ids, sources = [], []
    with pa.ipc.new_stream(str(folder / f"rows-{len(parts):05d}.arrow"), schema) as writer:
        for _, table in staged_rows(staging, kept, CHUNK):
            writer.write_table(table)
            ids += [c.cast(pa.string()) for c in table.column("id").chunks]
            sources += [c.cast(pa.string()) for c in table.column("source").chunks]
    with pa.ipc.new_stream(str(folder / KEYS_FILE), KEYS_SCHEMA) as writer:
        if parent is not None:
            writer.write_table(parent.keys)
        writer.write_table(_keys_table(keys, kept, plan, strata, ids, sources))
    before = len(parent) if parent is not None else 0
    width = parent.sigs.shape[1] if parent is not None else keys.sigs.shape[1]
    if before + len(kept) == 0:  # numpy cannot map an empty file
        np.save(folder / SIGNATURES_FILE, np.zeros((0, width), np.uint32))
    else:
        _write_signatures(folder / SIGNATURES_FILE, parent, keys.sigs, kept, width)


def _parent_parts(parent: Lineage, folder: Path) -> list[Path]:
    """The parent's row parts in the child's lineage: hard links, or, for a re-filtered parent
    (a subset), its surviving rows written as one part (a recipe change costs a copy)."""
    if parent.stored_rows is None:
        targets = [folder / f"rows-{k:05d}.arrow" for k in range(len(parent.row_parts))]
        for path, target in zip(parent.row_parts, targets, strict=True):
            link_file(path, target)
        return targets
    target = folder / "rows-00000.arrow"
    tables = parent.tables(np.arange(len(parent)))
    first = next(tables, None)
    if first is None:
        return []
    with pa.ipc.new_stream(str(target), first[1].schema) as writer:
        writer.write_table(first[1])
        for _, table in tables:
            writer.write_table(table)
    return [target]


def _write_signatures(path: Path, parent: Lineage | None, sigs: Any, kept: np.ndarray,
                      width: int) -> None:
    """The parent's signature rows, then this run's kept rows', a chunk at a time."""
    before = len(parent) if parent else 0
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32,
                                    shape=(before + len(kept), width))
    for lo in range(0, before, CHUNK):
        hi = min(lo + CHUNK, before)
        out[lo:hi] = parent.sigs[lo:hi]
    for lo in range(0, len(kept), CHUNK):
        out[before + lo:before + lo + CHUNK] = sigs[kept[lo:lo + CHUNK]]
    out.flush()
    del out


def link_file(source: Path, target: Path) -> None:
    """A hard link (versions are immutable, so parent and child may share the file's bytes);
    a copy where the filesystem has none."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _data_files(split_dir: Path) -> list[str]:
    state = json.loads((split_dir / "state.json").read_text(encoding="utf-8"))
    return [f["filename"] for f in state["_data_files"]]


def link_parent_splits(tmp: Path, parent: Path,
                       place: Callable[[Path, Path, str], None] | None = None) -> None:
    """Put the parent's split files (hard links) before the new rows' file in each split of
    the version in `tmp`, and name them all, in that order, in the split's `state.json`: the
    child's split is the parent's rows, unmoved and uncopied, then the new rows. `place(file,
    target, split)` puts each parent file instead (a re-filtered parent's, `refilter.py`)."""
    for split in SPLITS:
        here, there = tmp / split, parent / split
        [own] = _data_files(here)
        inherited = _data_files(there)
        _check_schema(there / inherited[0], here / own)
        total = len(inherited) + 1
        names = [f"data-{k:05d}-of-{total:05d}.arrow" for k in range(total)]
        os.replace(here / own, here / f".{own}")
        for name, old in zip(names, inherited, strict=False):
            if place is None:
                link_file(there / old, here / name)
            else:
                place(there / old, here / name, split)
        os.replace(here / f".{own}", here / names[-1])
        state_path = here / "state.json"
        state = json.loads(state_path.read_text(encoding="utf-8"))
        state["_data_files"] = [{"filename": name} for name in names]
        state_path.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _check_schema(parent_file: Path, own_file: Path) -> None:
    """The new rows' file must have the parent's columns, or the split would not load."""
    def schema(path: Path) -> pa.Schema:
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_stream(source).schema.remove_metadata()

    theirs, ours = schema(parent_file), schema(own_file)
    if theirs != ours:
        raise DataprepError(f"{parent_file}: the parent's split columns ({', '.join(theirs.names)})"
                            f" differ from the new rows' ({', '.join(ours.names)}); the parent was"
                            " made by another dataprep version, run its inputs again")

