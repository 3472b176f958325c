"""Checks computed from a version's files alone, written from scratch in plain Python.

Nothing here imports dataprep: the tests use these helpers to recompute, from what a run wrote
(the splits, `rejected.jsonl`, `removed.jsonl`) and from the input they fed it, what the run's
report claims (no leakage across splits, every input row accounted for), so a wrong verdict in
the code cannot make its own test pass.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import datasets


def normalise(text: str) -> list[str]:
    """The README's dedup normalisation: case folded, punctuation (anything that is not a
    letter, a digit or whitespace) dropped, whitespace folded by splitting into words."""
    kept = "".join(c for c in text.lower() if c.isalpha() or c.isnumeric() or c.isspace())
    return kept.split()


def shingles(text: str, n: int = 5) -> frozenset[tuple[str, ...]]:
    """Word n-gram set of the normalised text; a text of fewer than n words is one shingle of
    all its words."""
    words = normalise(text)
    if len(words) < n:
        return frozenset([tuple(words)])
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def row_text(row: Mapping) -> str:
    """The text a row is compared by: a classification version keeps `text`; chat and
    instruction versions keep `messages` (an instruction as its prompt and response turns),
    whose contents are joined with newlines."""
    if row.get("text") is not None:
        return row["text"]
    return "\n".join(turn["content"] for turn in row["messages"])


def load_splits(version_path: Path | str) -> dict[str, list[dict]]:
    ds = datasets.load_from_disk(str(version_path))
    return {split: ds[split].to_list() for split in ds}


@dataclass(frozen=True)
class CrossPair:
    """Row `index_a` of `split_a` and row `index_b` of `split_b`, `split_a` the one named
    first."""

    split_a: str
    index_a: int
    split_b: str
    index_b: int
    jaccard: float


@dataclass
class CrossSplitScan:
    pairs: int                # cross-split pairs sharing at least one shingle (all compared)
    closest: CrossPair | None  # the most similar of them
    leaks: list[CrossPair]    # those at or above the threshold, most similar first


def scan_cross_split(splits: Mapping[str, Sequence[str]], threshold: float,
                     n: int = 5) -> CrossSplitScan:
    """Exact Jaccard of every pair of texts in different splits that shares at least one
    shingle. Per split, an inverted index (shingle -> rows holding it) finds a row's partners
    in another split; how many of the row's shingles a partner appears under is the size of the
    intersection, so |A & B| / (|A| + |B| - |A & B|) is the pair's exact Jaccard, and no pair
    without a shared shingle (Jaccard 0) is ever visited."""
    sets = {split: [shingles(t, n) for t in texts] for split, texts in splits.items()}
    index: dict[str, dict[tuple[str, ...], list[int]]] = {}
    for split, rows in sets.items():
        index[split] = defaultdict(list)
        for i, row in enumerate(rows):
            for shingle in row:
                index[split][shingle].append(i)
    names = list(sets)
    pairs, closest, found = 0, None, []
    for a, name_a in enumerate(names):
        for name_b in names[a + 1:]:
            # walk the smaller split, look its rows up in the larger one's index
            flip = len(sets[name_b]) < len(sets[name_a])
            small, big = (name_b, name_a) if flip else (name_a, name_b)
            big_index, big_sets = index[big], sets[big]
            for i, row in enumerate(sets[small]):
                shared = Counter(chain.from_iterable(big_index.get(s, ()) for s in row))
                pairs += len(shared)
                for j, inter in shared.items():
                    similarity = inter / (len(row) + len(big_sets[j]) - inter)
                    if closest is None or similarity > closest.jaccard:
                        closest = CrossPair(name_a, j if flip else i, name_b, i if flip else j,
                                            similarity)
                    if similarity >= threshold:
                        found.append(CrossPair(name_a, j if flip else i, name_b,
                                               i if flip else j, similarity))
    return CrossSplitScan(pairs, closest, sorted(found, key=lambda p: -p.jaccard))


def scan_version(version_path: Path | str, threshold: float, n: int = 5) -> CrossSplitScan:
    """`scan_cross_split` over a version's written splits."""
    splits = load_splits(version_path)
    return scan_cross_split({s: [row_text(r) for r in rows] for s, rows in splits.items()},
                            threshold, n)


def read_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def jsonl_sources(path: Path | str, as_given: str | None = None) -> list[str]:
    """`file:line` of every row of a JSON Lines input: its non-blank physical lines (1-based),
    the file named as it was given to the run."""
    name = as_given if as_given is not None else str(path)
    with open(path, "rb") as fh:
        return [f"{name}:{i}" for i, line in enumerate(fh, 1) if line.strip()]


def csv_sources(path: Path | str, as_given: str | None = None) -> list[str]:
    """`file:line` of every record of a CSV input (header excluded): the physical line each
    record starts on, a quoted field spanning lines counting as one record."""
    name = as_given if as_given is not None else str(path)
    out = []
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        start = reader.line_num + 1
        for record in reader:
            if record:
                out.append(f"{name}:{start}")
            start = reader.line_num + 1
    return out


@dataclass
class Accounting:
    rejected: int
    removed: int
    original: dict[str, int]
    augmented: int
    places: Counter  # input source -> how many places it was found in

    @property
    def accounted(self) -> int:
        return self.rejected + self.removed + sum(self.original.values())


def account(version_path: Path | str) -> Accounting:
    """Where the version's files put every row: counted from rejected.jsonl, removed.jsonl and
    the splits (augmented rows, `origin` != 'original', are new rows and left out)."""
    path = Path(version_path)
    rejected = read_jsonl(path / "rejected.jsonl")
    removed = read_jsonl(path / "removed.jsonl")
    places: Counter = Counter()
    places.update(f"{r['source']}:{r['line']}" for r in rejected)
    places.update(r["source"] for r in removed)
    original: dict[str, int] = {}
    augmented = 0
    for split, rows in load_splits(path).items():
        kept = [r for r in rows if r["origin"] == "original"]
        augmented += len(rows) - len(kept)
        original[split] = len(kept)
        places.update(r["source"] for r in kept)
    return Accounting(len(rejected), len(removed), original, augmented, places)


def accounting_problems(version_path: Path | str, input_sources: Iterable[str]) -> list[str]:
    """What does not add up between the input rows and where the version says they went."""
    sources = list(input_sources)
    acc = account(version_path)
    problems = []
    if acc.accounted != len(sources):
        problems.append(f"{len(sources)} input rows != {acc.rejected} rejected + {acc.removed} "
                        f"removed + {sum(acc.original.values())} original output rows")
    expected = Counter(sources)
    for source, n in expected.items():
        if acc.places[source] != n:
            problems.append(f"{source} found {acc.places[source]} times")
    for source in acc.places.keys() - expected.keys():
        problems.append(f"{source} is not an input row")
    return problems
