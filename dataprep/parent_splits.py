"""A child version's split files: its parent's, hard-linked (never copied), then one file of
new rows a split, all named in each split's `state.json`, so the parent's rows are never moved
or copied and the child loads with `datasets.load_from_disk` like any version."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from .errors import DataprepError
from .store import SPLITS


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

