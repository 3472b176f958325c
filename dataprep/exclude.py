"""Rows a user names for removal: `dataprep run --exclude FILE` or the recipe's `exclude` key.

An exclude file is JSON Lines; each line names one row by `source` (the raw input's
`file:line`, as a version's `source` column records it) and/or `id`, with an optional `reason`
(the label-error detector's `label_issues.jsonl` is such a file: one line per suspect row with
`id`, `source`, `label`, `suggested_label`, `score`, `fold`, `reason`). A matched row is removed
in the first pass, before cleaning, with reason `excluded:<reason>` (default: the file's stem),
so the next version says why it is smaller.

A `source` is matched on the input file's *name* and the line (`reviews.csv:12`), not its path:
the path is recorded as it was typed (`data/reviews.csv`, `/abs/data/reviews.csv`), so the same
file re-run from another folder would never match by path. A run whose inputs share a file name
cannot tell them apart, which is a one-line error when an entry names a source. An entry that
gives both `source` and `id` must match both: lines move when a file is edited, and the id keeps
a stale line number from removing another row. Entries that match no row are counted and
reported (`exclude.unmatched`), not an error: the row may have been fixed or already dropped.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataprepError
from .stage import Batch, Stage, Verdict

#: Joins the parts of a match key: a control character, which cleaning-free file names, line
#: numbers and ids in practice never hold.
SEP = "\x1f"


@dataclass(frozen=True)
class ExcludeFile:
    """One exclude file, named for the version id and the report."""

    path: Path
    sha256: str

    @property
    def label(self) -> str:
        return str(self.path)


@dataclass
class Exclusion:
    """Every entry of the run's exclude files as match keys, with the tag each removal gets and
    the file it came from (for the per-file unmatched counts)."""

    keys: pa.Array          # one per distinct entry: "s|name:line", "i|id" or "b|name:line|id"
    tags: pa.Array          # excluded:<reason> per entry
    files: np.ndarray       # index of the entry's file in `names`
    names: list[str]
    entries: list[int]      # entries per file (after dropping repeats)
    by_source: bool         # some entry names a source

    def reasons(self, table: pa.Table) -> tuple[pa.Array, np.ndarray]:
        """The removal reason per row (null where kept), and the entries that matched."""
        sources = pc.replace_substring_regex(table.column("source"), r"^.*/", "")
        ids = pc.cast(table.column("id"), pa.string())
        candidates = [pc.binary_join_element_wise("s", sources, SEP),
                      pc.binary_join_element_wise("i", ids, SEP),
                      pc.binary_join_element_wise("b", sources, ids, SEP)]
        found = pc.coalesce(*(pc.index_in(c, value_set=self.keys) for c in candidates))
        hit = found.to_numpy(zero_copy_only=False)
        matched = np.unique(hit[~np.isnan(hit)].astype(np.int64)) if len(hit) else hit
        return pc.take(self.tags, found), matched


def entry_key(entry: dict[str, Any]) -> str:
    """The match key of an entry: its source's file name and line, its id, or both."""
    source, row_id = entry.get("source"), entry.get("id")
    if source is not None:
        file, _, line = str(source).rpartition(":")
        source = f"{Path(file).name}:{line}"
    if source is not None and row_id is not None:
        return SEP.join(("b", source, str(row_id)))
    return SEP.join(("s", source)) if source is not None else SEP.join(("i", str(row_id)))


def _entries(path: Path) -> list[dict[str, Any]]:
    """The file's entries, or a one-line error naming the file and line that is wrong."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataprepError(f"{path}:{number}: exclude entry is not JSON "
                                    f"({exc.msg})") from None
            if not isinstance(entry, dict) or (entry.get("source") is None
                                               and entry.get("id") is None):
                raise DataprepError(f"{path}:{number}: exclude entry names neither 'source' "
                                    "nor 'id'")
            reason = entry.get("reason")
            if reason is not None and (not isinstance(reason, str) or not reason.strip()):
                raise DataprepError(f"{path}:{number}: exclude entry's 'reason' {reason!r} is "
                                    "not a non-empty string")
            out.append(entry)
    return out


def exclude_files(paths: list[Path]) -> list[ExcludeFile]:
    """The files with their sha256 (part of the version id), or a one-line error for one that
    is missing."""
    out = []
    for path in paths:
        if not path.is_file():
            raise DataprepError(f"{path}: exclude file not found")
        out.append(ExcludeFile(path, hashlib.sha256(path.read_bytes()).hexdigest()))
    return out


@cache
def load_exclusion(files: tuple[ExcludeFile, ...]) -> Exclusion:
    """Every file's entries as match keys; cached by path and content hash, so worker processes
    forked after the first load (and every batch) reuse it, and an edited file is read again."""
    keys: dict[str, tuple[str, int]] = {}
    entries = []
    for index, file in enumerate(files):
        before = len(keys)
        for entry in _entries(file.path):
            tag = entry.get("reason") or file.path.stem
            keys.setdefault(entry_key(entry), (f"excluded:{tag}", index))
        entries.append(len(keys) - before)
    values = list(keys.values())
    return Exclusion(pa.array(list(keys), pa.string()), pa.array([v[0] for v in values],
                                                                 pa.string()),
                     np.array([v[1] for v in values], np.int64), [f.label for f in files],
                     entries, any(k[0] != "i" for k in keys))


def check_names(exclusion: Exclusion, inputs: list[Path]) -> None:
    """Matching by file name needs the run's inputs to have distinct names."""
    if not exclusion.by_source:
        return
    seen: dict[str, Path] = {}
    for path in inputs:
        if path.name in seen:
            raise DataprepError(f"inputs {seen[path.name]} and {path} share the file name "
                                f"{path.name!r}, so an exclude entry's 'source' (matched by "
                                "file name and line) cannot tell them apart; rename one")
        seen[path.name] = path


class ExcludeStage(Stage):
    """Drops the rows the exclude files name; counts, per entry, that it matched (the pipeline
    sums those counters over batches into the report's unmatched count)."""

    name = "exclude"

    def __init__(self, files: tuple[ExcludeFile, ...]) -> None:
        self.files = files

    def __call__(self, batch: Batch) -> Verdict:
        reasons, matched = load_exclusion(self.files).reasons(batch.table)
        removed = Counter({c["values"]: c["counts"]
                           for c in pc.value_counts(pc.drop_null(reasons)).to_pylist()})
        return Verdict(reasons=reasons, counters={"exclude_matched": Counter(matched.tolist()),
                                                  "excluded": removed})


def exclude_report(files: tuple[ExcludeFile, ...], matched: Counter,
                   excluded: Counter) -> dict[str, Any]:
    """The report's `exclude` section: per file its entries and how many matched no row."""
    if not files:
        return {"files": [], "removed": 0, "unmatched": 0}
    exclusion = load_exclusion(files)
    hit = np.zeros(len(exclusion.keys), dtype=bool)
    hit[list(matched)] = True
    per_file = []
    for index, file in enumerate(files):
        mine = exclusion.files == index
        per_file.append({"path": file.label, "sha256": file.sha256,
                         "entries": exclusion.entries[index],
                         "unmatched": int((mine & ~hit).sum())})
    return {"files": per_file,
            "removed": sum(excluded.values()),
            "unmatched": sum(f["unmatched"] for f in per_file)}
