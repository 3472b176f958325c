"""Decontamination: train rows that share a word n-gram with an evaluation row leave the version.

A recipe's `decontaminate` names evaluation sources: files (JSON Lines, JSON, CSV/TSV, Parquet,
of any record kind, relative to the recipe's folder like `exclude`) or `NAME@VERSION:split` (a
split of a store version). At run start every source is read once and the hashes of its word
n-grams (13 words by default, as GPT-3 and lm-evaluation-harness) become one sorted array; a
bad source is a one-line error before anything is written. The check runs where the plan's
split of each row is known (the second pass): a train row holding any indexed n-gram is removed
(`contaminated:<source>`, naming the evaluation row's `source`), a validation or test row that
does is counted and shown, not removed: those rows are the evaluation.

Both sides are hashed as dedup hashes them (`textview.normalise_for_dedup`, then the MinHash
shingle hashing of `minhash.shingles`, vectorised over a whole batch), so "the same n-gram"
means the same case-, punctuation- and whitespace-folded words. Only full n-grams count: a row
shorter than n words has none (lm-evaluation-harness does the same), so a short evaluation row
is never matched; the report counts such rows per source.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataprepError
from .ingest import detect_format, file_sha256, read_batches
from .kinds import get_kind
from .minhash import Words, shingles, words_of
from .stage import removed_records
from .store import SPLITS, resolve
from .textview import normalise_for_dedup

#: Fields that name or label a record rather than hold its text: left out of an evaluation
#: row's text (a chat turn's `role`, a ShareGPT turn's `from`).
NOT_TEXT = frozenset({"id", "source", "label", "group", "meta", "lang", "role", "from", "name"})
#: Evaluation rows hashed at once while the index is built.
BUILD_ROWS = 4096
#: Bits of a hash that pick its slot in the pre-filter bitmap (16 MiB of booleans).
FILTER_BITS = 24
#: Examples of validation/test rows overlapping an evaluation row kept for the report.
EXAMPLES = 5


@dataclass(frozen=True)
class EvalSource:
    """One `decontaminate` entry, as written, with what identifies its content: a file's
    sha256 or a store version's `name@id` (part of the version id)."""

    entry: str
    path: Path | None = None      # a file
    spec: str | None = None       # NAME@ID of a store version
    split: str | None = None
    fingerprint: str = ""

    def resolved(self) -> dict[str, str]:
        key = "sha256" if self.path is not None else "version"
        return {"source": self.entry, key: self.fingerprint}


def resolve_sources(entries: list[str], base_dir: Path, root: Path) -> tuple[EvalSource, ...]:
    """Each entry checked and fingerprinted: a file that does not exist or has no readable
    format, a store spec that does not resolve or names no split, is a one-line error."""
    return tuple(_resolve(entry, base_dir, root) for entry in entries)


def _is_spec(entry: str) -> bool:
    """`NAME@VERSION:split` rather than a file: an `@`, no folder, no file format suffix."""
    if "@" not in entry or "/" in entry or "\\" in entry:
        return False
    try:
        detect_format(Path(entry))
    except DataprepError:
        return True
    return False


def _resolve(entry: str, base_dir: Path, root: Path) -> EvalSource:
    if _is_spec(entry):
        spec, _, split = entry.rpartition(":")
        if not spec or split not in SPLITS:
            raise DataprepError(f"decontaminate: {entry!r}: a store source is NAME@VERSION:SPLIT "
                                f"with SPLIT one of {', '.join(SPLITS)}")
        ref = resolve(root, spec)
        return EvalSource(entry, spec=f"{ref.name}@{ref.version}", split=split,
                          fingerprint=f"{ref.name}@{ref.version}")
    path = base_dir / entry
    if not path.is_file():
        raise DataprepError(f"{entry}: decontamination source not found (looked for {path})")
    detect_format(path)  # an unsupported suffix is a one-line error naming the file
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise DataprepError(f"{entry}: decontamination source cannot be read "
                            f"({exc.strerror})") from None
    return EvalSource(entry, path=path, fingerprint=digest)


def _strings(value: Any, out: list[str]) -> None:
    """Every string inside a raw field, in order (nested lists and objects included)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in NOT_TEXT:
                _strings(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _strings(inner, out)


def record_text(record: dict[str, Any]) -> str:
    """All of a raw record's text, fields joined by newlines: for the kinds' own fields the
    same text as their text views (a chat record's message contents, a classification record's
    text, an instruction's prompt and response), and for a record of another kind (a benchmark's
    question and choices) every string it holds, names and labels left out."""
    out: list[str] = []
    _strings(record, out)
    return "\n".join(out)


def _file_rows(source: EvalSource, max_row_bytes: int) -> Iterator[tuple[pa.Array, list[str]]]:
    """(texts, `file:line` sources) of a file's rows, a batch at a time; a row that cannot be
    read is a one-line error (a skipped row would be a benchmark item never checked)."""
    assert source.path is not None
    try:
        for rows in read_batches(source.path, BUILD_ROWS, max_row_bytes):
            texts, where = [], []
            for row in rows:
                if row.error is not None or not isinstance(row.obj, dict):
                    why = f"{row.error}: {row.detail}" if row.error else "not a record (object)"
                    raise DataprepError(f"{source.entry}:{row.line}: evaluation row cannot be "
                                        f"read ({why})")
                texts.append(record_text(row.obj))
                where.append(f"{source.entry}:{row.line}")
            yield pa.array(texts, pa.string()), where
    except OSError as exc:
        raise DataprepError(f"{source.entry}: decontamination source cannot be read "
                            f"({exc.strerror})") from None


def _split_rows(source: EvalSource, root: Path) -> Iterator[tuple[pa.Array, list[str]]]:
    """(texts, sources) of a store split's rows: the text view of the version's kind (a
    classification row's text, any other row's message contents)."""
    assert source.spec is not None and source.split is not None
    ref = resolve(root, source.spec)
    kind = ref.read_manifest()["kind"]
    table = ref.load_data()[source.split].data.table
    view = get_kind("classification" if kind == "classification" else "chat")
    for batch in table.to_batches(BUILD_ROWS):
        part = pa.Table.from_batches([batch])
        yield view.row_text(part), part.column("source").to_pylist()


def full_ngrams(texts: pa.Array, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, row of each, words per row) of every full word n-gram of the normalised texts,
    by `minhash.shingles` over the words of the rows of at least n words only (it would make
    one shingle of a shorter row, and re-sort its output to place it)."""
    words = words_of(normalise_for_dedup(pc.fill_null(texts, "")))
    long = np.flatnonzero(words.counts >= ngram)
    if long.size == words.counts.size:
        return (*shingles(words, ngram), words.counts)
    keep = words.counts[words.row] >= ngram
    hashes, rows = shingles(Words(words.hashes[keep], np.searchsorted(long, words.row[keep]),
                                  words.counts[long]), ngram)
    return hashes, long[rows], words.counts


@dataclass
class SourceStats:
    """What the report says of one source: rows, rows too short to index, distinct n-grams,
    train rows removed and validation/test rows overlapping."""

    source: EvalSource
    rows: int = 0
    short_rows: int = 0
    ngrams: int = 0
    removed: int = 0
    overlaps: dict[str, int] = field(default_factory=lambda: {"validation": 0, "test": 0})

    def as_dict(self) -> dict[str, Any]:
        return {**self.source.resolved(), "rows": self.rows, "short_rows": self.short_rows,
                "ngrams": self.ngrams, "removed": self.removed, "overlaps": dict(self.overlaps)}


def _distinct(values: np.ndarray) -> int:
    """How many distinct values: by one sort (numpy's hash-based `unique` of 64-bit values was
    several times slower here)."""
    ordered = np.sort(values)
    return int(ordered.size and 1 + np.count_nonzero(ordered[1:] != ordered[:-1]))


class EvalIndex:
    """The n-gram hashes of every evaluation row, sorted and unique, each with the first
    evaluation row (in recipe order) that holds it. Membership is a bitmap pre-filter on the
    hash's top bits (one gather per n-gram: most n-grams of a corpus are not in the index)
    and `np.searchsorted` for the few that pass it."""

    def __init__(self, sources: tuple[EvalSource, ...], ngram: int, root: Path,
                 max_row_bytes: int) -> None:
        self.ngram, self.stats = ngram, [SourceStats(s) for s in sources]
        parts, owners, row_sources, row_entry = [], [], [], []
        for number, stats in enumerate(self.stats):
            mine = []
            for texts, where in self._rows(stats.source, root, max_row_bytes):
                hashes, rows, counts = full_ngrams(texts, ngram)
                mine.append(hashes)
                owners.append(rows + len(row_sources))
                stats.rows += len(where)
                stats.short_rows += int((counts < ngram).sum())
                row_sources += where
                row_entry += [number] * len(where)
            stats.ngrams = _distinct(np.concatenate(mine)) if mine else 0
            self._check_usable(stats)
            parts += mine
        hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
        owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
        order = np.argsort(hashes, kind="stable")  # equal hashes: the first row keeps it
        hashes, owner = hashes[order], owner[order]
        first = np.ones(hashes.size, dtype=bool)
        first[1:] = hashes[1:] != hashes[:-1]
        self.hashes, self.owner = hashes[first], owner[first]
        self.row_sources, self.row_entry = row_sources, np.array(row_entry, np.int64)
        self.bitmap = np.zeros(1 << FILTER_BITS, dtype=bool)
        self.bitmap[self.hashes >> np.uint64(64 - FILTER_BITS)] = True

    @staticmethod
    def _rows(source: EvalSource, root: Path, max_row_bytes: int):
        if source.path is not None:
            yield from _file_rows(source, max_row_bytes)
        else:
            yield from _split_rows(source, root)

    def _check_usable(self, stats: SourceStats) -> None:
        """An empty source, or one with no row of n words, would check nothing: say so."""
        if stats.rows == 0:
            raise DataprepError(f"{stats.source.entry}: decontamination source holds no rows")
        if stats.ngrams == 0:
            raise DataprepError(f"{stats.source.entry}: no evaluation row has {self.ngram} "
                                "words, so no row could be checked against it; lower "
                                "decontaminate.ngram")

    def matches(self, texts: pa.Array) -> np.ndarray:
        """For each text, the evaluation row of its first n-gram found in the index, else -1."""
        out = np.full(len(texts), -1, dtype=np.int64)
        hashes, rows, _ = full_ngrams(texts, self.ngram)
        maybe = np.flatnonzero(self.bitmap[hashes >> np.uint64(64 - FILTER_BITS)])
        if maybe.size == 0 or self.hashes.size == 0:
            return out
        at = np.minimum(np.searchsorted(self.hashes, hashes[maybe]), self.hashes.size - 1)
        found = self.hashes[at] == hashes[maybe]
        hit_rows, hit_at = rows[maybe][found], at[found]
        first_rows, first = np.unique(hit_rows, return_index=True)  # rows are non-decreasing
        out[first_rows] = self.owner[hit_at[first]]
        return out


@dataclass
class Checked:
    """A batch after the check: the rows to keep, a removal reason per row (null where kept)
    and, per removed row, the evaluation row it matched (`contaminated_by`)."""

    keep: np.ndarray
    reasons: pa.Array
    extra: dict[str, list]


class Decontamination:
    """The run's check: the index, and what it found, counted for the report."""

    def __init__(self, index: EvalIndex) -> None:
        self.index = index
        self.examples: list[dict[str, Any]] = []

    def remove(self, staged: pa.Table, texts: pa.Array, split: np.ndarray, *more: np.ndarray
               ) -> tuple[list[dict], tuple]:
        """The removal records of the batch's contaminated train rows (their split is known
        only in the second pass; reason `contaminated:<source>`, counted as filtered by the
        caller), and the rows that stay: the table, texts, splits and each of `more` (arrays
        a row, e.g. units) filtered alike."""
        checked = self.check(staged, texts, split)
        _, records = removed_records(staged, checked.reasons, "decontaminate", checked.extra)
        if not records:
            return [], (staged, texts, split, *more)
        keep = pa.array(checked.keep)
        return records, (staged.filter(keep), texts.filter(keep), split[checked.keep],
                         *(values[checked.keep] for values in more))

    def check(self, table: pa.Table, texts: pa.Array, split: np.ndarray) -> Checked:
        """Reasons (null where kept) for rows bound for `split` (0 train, 1 validation, 2
        test): a train row matching an evaluation row goes; any other match is counted."""
        owner = self.index.matches(texts)
        hit = owner >= 0
        if not hit.any():  # nearly every batch
            return Checked(np.ones(len(owner), bool), pa.nulls(len(owner), pa.string()),
                           {"contaminated_by": []})
        drop = hit & (split == 0)
        reasons = np.full(len(owner), None, dtype=object)
        entries = self.index.row_entry[owner[drop]]
        reasons[drop] = [f"contaminated:{self.index.stats[e].source.entry}" for e in entries]
        for e in entries.tolist():
            self.index.stats[e].removed += 1
        self._count_overlaps(table, owner, np.flatnonzero(hit & (split != 0)), split)
        extra = {"contaminated_by": [self.index.row_sources[o] for o in owner[drop].tolist()]}
        return Checked(~drop, pa.array(reasons, pa.string()), extra)

    def _count_overlaps(self, table: pa.Table, owner: np.ndarray, rows: np.ndarray,
                        split: np.ndarray) -> None:
        if rows.size == 0:
            return
        named = table.take(pa.array(rows)).select(["id", "source"]).to_pylist()
        for row, here in zip(rows.tolist(), named, strict=True):
            stats = self.index.stats[int(self.index.row_entry[owner[row]])]
            name = SPLITS[int(split[row])]
            stats.overlaps[name] += 1
            if len(self.examples) < EXAMPLES:
                self.examples.append({"split": name, "id": here["id"], "source": here["source"],
                                      "evaluation_source": stats.source.entry,
                                      "evaluation_row": self.index.row_sources[owner[row]]})

    def report(self) -> dict[str, Any]:
        """The report's `decontamination` section."""
        sources = [s.as_dict() for s in self.index.stats]
        return {"ngram": self.index.ngram, "sources": sources,
                "removed": sum(s["removed"] for s in sources),
                "overlaps": {name: sum(s["overlaps"][name] for s in sources)
                             for name in ("validation", "test")},
                "examples": self.examples}


def load_decontamination(sources: tuple[EvalSource, ...], ngram: int, root: Path,
                         max_row_bytes: int) -> Decontamination | None:
    """The run's check, built once at run start (every source read and indexed here, so a
    bad one fails the run before anything is written); None without sources."""
    if not sources:
        return None
    return Decontamination(EvalIndex(sources, ngram, root, max_row_bytes))
