"""What a version keeps for its children, so that a child costs what its new rows cost.

`dataprep run NEW --from NAME@VERSION` dedups the new rows against the parent's rows and splits
them around the parent's fixed splits. Re-reading and re-hashing the parent would make every
weekly version cost as much as a fresh run, so each version keeps, in `lineage/` (a folder
`datasets.load_from_disk` never looks at), one entry per kept input row in a fixed order (a
fresh version's kept rows in input order; a child's: its parent's entries, then its own kept
new rows).

Every kept row belongs to one generation (the run that first kept it), and each generation has
its own files, numbered in order; a child hard-links its parent's generations' files (versions
are immutable, so they may share bytes) and adds its own, so a version's lineage costs what its
new rows cost, however long its chain:

- `keys-NNNNN.arrow`: the exact-dedup hashes, text length, label, group, language, stratum,
  split, split unit, id and source of each row;
- `signatures-NNNNN.npy`: their MinHash signatures, a (rows x num_perm) uint32 matrix, read
  through a memory map (only the rows a search touches are paged in);
- `bands-NNNNN-BxR.npy`: their LSH band keys for B bands of R rows (the banding of the dedup
  search and of the leakage check, `neardup.DEDUP` and `LEAKAGE` at the recipe's threshold),
  as `neardup.SortedBands` stores them, so a child bands only its new rows and looks their keys
  up here; a child whose recipe asks for another banding (or a generation without the file)
  bands the parent's signatures again, as before these files existed;
- `rows-NNNNN.arrow`: the rows as the first pass kept them (the staging file's columns): the
  exact Jaccard of a candidate pair needs the parent row's words (only candidate rows are
  read), and a child made with `--recipe-change` puts the parent's rows through its filters
  again.

Two small files serve a child's start: `lsh-params.json`, the (bands, rows) the run's LSH
search chose for each banding (a child records them rather than search the grid again), and
`split-info.json`, the `dataset_info.json` datasets wrote for the split schema
(`split_files._write_dataset_info`: a child links its parent's and writes the same bytes
without importing datasets).

A version made before generations existed has one `keys.arrow` and one `signatures.npy` (for
all its rows, whatever its chain): it is read as one generation without band files.

The child's split files are the parent's, hard-linked (`parent_splits.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .errors import DataprepError
from .kinds import get_kind
from .minhash import band_keys, remember_lsh_params
from .neardup import (
    DEDUP,
    LEAKAGE,
    NearDupIndex,
    RowsOf,
    ShingleSetTable,
    SortedBands,
    StackedRows,
    shingle_sets_of,
    sort_band_keys,
)
from .parent_splits import link_file
from .staging import staged_rows
from .store import VersionRef
from .textview import normalise_for_dedup

LINEAGE_DIR = "lineage"
#: The one-generation layout of versions made before generations existed.
KEYS_FILE, SIGNATURES_FILE = "keys.arrow", "signatures.npy"
KEYS_PART, SIGNATURES_PART = "keys-{:05d}.arrow", "signatures-{:05d}.npy"
#: The (bands, rows) of each banding the version's run searched with.
LSH_FILE = "lsh-params.json"
#: The split metadata `datasets` derives from a split schema (`split_files._dataset_info`).
SPLIT_INFO_FILE = "split-info.json"
BANDS_PART, BANDS_NAME = "bands-{:05d}-{}x{}.npy", re.compile(r"bands-(\d{5})-(\d+)x(\d+)\.npy")
#: Rows read back, written or copied at a time.
CHUNK = 65536

KEYS_SCHEMA = pa.schema([
    ("exact0", pa.uint64()), ("exact1", pa.uint64()), ("chars", pa.int32()),
    ("label", pa.string()), ("group", pa.string()), ("lang", pa.string()),
    ("stratum", pa.string()), ("split", pa.int8()), ("unit", pa.int64()),
    ("id", pa.string()), ("source", pa.string())])


@dataclass
class Generation:
    """The files of the rows one run kept: keys, signatures and band keys by (bands, rows)."""

    keys: Path
    signatures: Path
    rows: int
    bands: dict[tuple[int, int], Path] = field(default_factory=dict)


@dataclass
class Lineage:
    """A version's lineage files read back: the compact columns in memory, the signatures
    mapped, the rows left on disk until a candidate pair needs them. `generations` is empty
    for a lineage built in memory (its keys and signatures are then written out whole)."""

    path: Path
    kind: str
    keys: pa.Table
    sigs: Any                     # (rows, num_perm) uint32: a StackedRows or an array
    row_parts: list[Path]
    generations: list[Generation] = field(default_factory=list)
    #: Band keys of every row by (bands, rows), where every generation stores them.
    bands: dict[tuple[int, int], SortedBands] = field(default_factory=dict)
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
                       RowsOf(self.sigs, at), self.row_parts, stored_rows=stored)

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


def read_lineage(ref: VersionRef, kind: str) -> Lineage:
    """The lineage of a stored version; a version made before lineage existed (or a damaged
    one) is a one-line error naming it."""
    folder = ref.path / LINEAGE_DIR
    generations = _generations(folder)
    if not generations:
        raise DataprepError(f"{ref.name}@{ref.version}: has no {LINEAGE_DIR}/ folder (made "
                            "before child versions existed), so it cannot be a parent; run "
                            "its inputs again to make a version that can")
    try:
        tables, sigs = [], []
        for gen in generations:
            with pa.memory_map(str(gen.keys)) as source:
                tables.append(pa.ipc.open_stream(source).read_all())
            sigs.append(_load_array(gen.signatures))
            gen.rows = tables[-1].num_rows
        bands = _read_bands(generations)
    except (OSError, ValueError) as exc:
        raise DataprepError(f"{folder}: damaged lineage ({str(exc)[:100]})") from None
    _check_generations(folder, generations, tables, sigs, bands)
    _remember_lsh_params(folder)
    keys = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    stacked = StackedRows(sigs, sigs[0].shape[1])
    return Lineage(folder, kind, keys, stacked, sorted(folder.glob("rows-*.arrow")),
                   generations, _whole_bands(generations, bands))


def _generations(folder: Path) -> list[Generation]:
    """The generations' files in order (the older layout: one generation); [] if none."""
    if (folder / KEYS_FILE).is_file() and (folder / SIGNATURES_FILE).is_file():
        return [Generation(folder / KEYS_FILE, folder / SIGNATURES_FILE, 0)]
    found = []
    while (folder / KEYS_PART.format(len(found))).is_file():
        k = len(found)
        found.append(Generation(folder / KEYS_PART.format(k), folder / SIGNATURES_PART.format(k),
                                0))
    for path in folder.glob("bands-*.npy"):
        named = BANDS_NAME.fullmatch(path.name)
        if named and int(named[1]) < len(found):
            found[int(named[1])].bands[int(named[2]), int(named[3])] = path
    return found


def _read_bands(generations: list[Generation]) -> dict[tuple[int, int], list[np.ndarray]]:
    """Each banding every generation stores, its matrices mapped in generation order."""
    common = set.intersection(*(set(gen.bands) for gen in generations))
    return {shape: [_load_array(gen.bands[shape]) for gen in generations]
            for shape in sorted(common)}


def _check_generations(folder: Path, generations: list[Generation], tables: list[pa.Table],
                       sigs: list[np.ndarray], bands: dict) -> None:
    """Every generation's keys, signatures and band keys must agree, or the lineage is
    damaged (a child built on it would pair the wrong rows)."""
    widths = {part.shape[1] if part.ndim == 2 else -1 for part in sigs}
    for k, (table, part) in enumerate(zip(tables, sigs, strict=True)):
        if not generations[k].signatures.is_file() or table.schema != KEYS_SCHEMA or \
                len(part) != table.num_rows or len(widths) != 1:
            raise DataprepError(f"{folder}: damaged lineage (generation {k}: "
                                f"{table.num_rows} key rows, {len(part)} signature rows)")
    for (n_bands, _), parts in bands.items():
        for k, (table, part) in enumerate(zip(tables, parts, strict=True)):
            if part.dtype != np.uint64 or part.shape != (n_bands, table.num_rows):
                raise DataprepError(f"{folder}: damaged lineage (generation {k}: band keys "
                                    f"{part.shape}, {table.num_rows} rows)")


def _whole_bands(generations: list[Generation], bands: dict) -> dict:
    offsets = np.cumsum([0] + [gen.rows for gen in generations]).tolist()
    return {shape: SortedBands(parts, offsets[:-1], offsets[-1])
            for shape, parts in bands.items()}


def _load_array(path: Path) -> np.ndarray:
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


def start_lineage(tmp: Path, parent: Lineage | None) -> Path:
    """The `lineage/` folder of the version being built, with the parent's remembered split
    metadata linked in (before the second pass writes the splits, which reads it there and
    adds to it, `split_files._write_dataset_info`)."""
    folder = tmp / LINEAGE_DIR
    if not folder.is_dir():
        folder.mkdir()
        if parent is not None and (parent.path / SPLIT_INFO_FILE).is_file():
            link_file(parent.path / SPLIT_INFO_FILE, folder / SPLIT_INFO_FILE)
    return folder


def keep_lineage(tmp: Path, staging: Path, keys: Any, plan: Any, strata: Any,
                 dropped: np.ndarray | None = None) -> None:
    """Write `lineage/` of the version being built in `tmp` (after the second pass, before the
    staging and signature files read here are removed): a child's parent generations first
    (their files hard-linked, never copied; a re-filtered parent's survivors written out as one
    generation), then this run's kept rows (less `dropped`, the train rows decontamination
    removed: they are in no split) as a generation of their own, with their planned split and
    unit, their staging rows streamed into a row part."""
    folder = start_lineage(tmp, plan.parent)
    parent: Lineage | None = plan.parent
    kept = np.flatnonzero(plan.kept & ~dropped) if dropped is not None else \
        np.flatnonzero(plan.kept)
    parts = _parent_parts(parent, folder) if parent is not None else []
    gen = _inherit_generations(folder, parent)
    with pa.OSFile(str(staging)) as source:
        schema = pa.ipc.open_stream(source).schema
    ids, sources = [], []
    with pa.ipc.new_stream(str(folder / f"rows-{len(parts):05d}.arrow"), schema) as writer:
        for _, table in staged_rows(staging, kept, CHUNK):
            writer.write_table(table)
            ids += [c.cast(pa.string()) for c in table.column("id").chunks]
            sources += [c.cast(pa.string()) for c in table.column("source").chunks]
    with pa.ipc.new_stream(str(folder / KEYS_PART.format(gen)), KEYS_SCHEMA) as writer:
        writer.write_table(_keys_table(keys, kept, plan, strata, ids, sources))
    width = parent.sigs.shape[1] if parent is not None else keys.sigs.shape[1]
    sigs = _write_signatures(folder / SIGNATURES_PART.format(gen), keys.sigs, kept, width)
    threshold = getattr(plan, "leakage", {}).get("threshold")
    if threshold is not None:
        _write_bands(folder, gen, sigs, threshold)


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


def _inherit_generations(folder: Path, parent: Lineage | None) -> int:
    """The parent's generations in `folder` (hard links; a lineage built in memory written out
    as one generation): the number this run's generation takes."""
    if parent is None:
        return 0
    if not parent.generations:
        with pa.ipc.new_stream(str(folder / KEYS_PART.format(0)), KEYS_SCHEMA) as writer:
            writer.write_table(parent.keys)
        _write_signatures(folder / SIGNATURES_PART.format(0), parent.sigs,
                          np.arange(len(parent)), parent.sigs.shape[1])
        return 1
    for k, gen in enumerate(parent.generations):
        link_file(gen.keys, folder / KEYS_PART.format(k))
        link_file(gen.signatures, folder / SIGNATURES_PART.format(k))
        for (bands, rows), path in gen.bands.items():
            link_file(path, folder / BANDS_PART.format(k, bands, rows))
    return len(parent.generations)


def _write_signatures(path: Path, sigs: Any, rows: np.ndarray, width: int) -> np.ndarray:
    """The given rows of `sigs`, a chunk at a time; the matrix written, as an array (mapped)."""
    if len(rows) == 0:  # numpy cannot map an empty file
        out = np.zeros((0, width), np.uint32)
        np.save(path, out)
        return out
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint32, shape=(len(rows), width))
    for lo in range(0, len(rows), CHUNK):
        out[lo:lo + CHUNK] = sigs[rows[lo:lo + CHUNK]]
    out.flush()
    return out


def _write_bands(folder: Path, gen: int, sigs: np.ndarray, threshold: float) -> None:
    """This generation's band keys for the bandings a child's plan searches with (dedup's
    and the leakage check's at the recipe's threshold), so a child bands only its new rows,
    and the (bands, rows) each banding's search chose (`LSH_FILE`)."""
    done, chosen = set(), []
    for sensitivity in (DEDUP, LEAKAGE):
        index = NearDupIndex(sigs, threshold, sensitivity)
        chosen.append({"threshold": index.tuned, "num_perm": sigs.shape[1],
                       "recall_weight": sensitivity.recall_weight, "bands": index.bands,
                       "rows": index.rows})
        if (index.bands, index.rows) in done:
            continue
        done.add((index.bands, index.rows))
        keys = band_keys(sigs, index.bands, index.rows)
        np.save(folder / BANDS_PART.format(gen, index.bands, index.rows), sort_band_keys(keys))
    (folder / LSH_FILE).write_text(json.dumps(chosen), encoding="utf-8")


def _remember_lsh_params(folder: Path) -> None:
    """The (bands, rows) the version's own run chose, so a child does not search for them
    again (~0.3 s); a file that does not parse is damage."""
    path = folder / LSH_FILE
    if not path.is_file():
        return
    try:
        for entry in json.loads(path.read_text(encoding="utf-8")):
            remember_lsh_params(float(entry["threshold"]), int(entry["num_perm"]),
                                float(entry["recall_weight"]), int(entry["bands"]),
                                int(entry["rows"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise DataprepError(f"{path}: damaged lineage ({str(exc)[:100]})") from None
