"""`--recipe-change`: a child made with a recipe other than its parent's puts the parent's rows
through the new recipe's filters again, so that every row of the child passes the recipe the
child names (a stricter language list or length filter would otherwise hold for new rows only).

A parent row keeps its content and its split: a recipe change cannot touch what shaped the
stored rows (`child.FIXED_IN_A_CHILD`), and the stages run here only decide which rows stay (the
first pass's dropping stages: language, filter and the custom stages, without cleaning), then
decontamination for train rows. The rows that go are written to removed.jsonl like any removal,
with `inherited: true`, and counted in the report's `recipe_change`; an augmented row made from
one goes with it (reason `parent_removed`). Planning sees the survivors as the parent (a view of
its lineage, `survivors`), and each split file of the parent that holds a removed row is written
again without it (the others are still hard-linked).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .decontam import Decontamination
from .kinds import RecordKind, get_kind
from .lineage import Lineage
from .parent_splits import link_file
from .stage import Batch, Stage, removed_records, run_stages
from .store import SPLITS

#: What joins a row's source and id into the key that finds it in the split files (a source,
#: `file:line`, alone repeats across generations when every week's file has the same name).
SEP = "\x1f"
#: The reason an augmented row of the parent goes with the row it was made from.
PARENT_REMOVED = "parent_removed"
#: Writes removal records and counts them by reason in the given counter (`RunFiles.remove`).
Remove = Callable[[list[dict], Counter], None]


@dataclass
class Refiltered:
    """What re-filtering the parent decided: the rows that stay (a lineage view), the removed
    rows' keys, and the counts the report shows."""

    lineage: Lineage
    removed_keys: pa.Array
    checked: int
    removed: Counter = field(default_factory=Counter)      # reason -> parent rows
    split_rows: Counter = field(default_factory=Counter)   # split -> rows taken off its files
    labels: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    langs: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})

    def report(self, changed: list[str]) -> dict[str, Any]:
        return {"changed": changed, "parent_rows_checked": self.checked,
                "removed_by_reason": dict(sorted(self.removed.items())),
                "removed_from_splits": {s: self.split_rows[s] for s in SPLITS}}


def refilter(parent: Lineage, stages: list[Stage], decontam: Decontamination | None,
             remove: Remove) -> Refiltered:
    """Run `stages` (and `decontam` on train rows) over the parent's stored rows, a stored
    batch at a time; `remove` writes the removal records and counts them (apart from the new
    rows'). Returns the survivors."""
    kind, split = get_kind(parent.kind), parent.column("split")
    keep = np.ones(len(parent), bool)
    removed: Counter = Counter()
    for rows, table in parent.tables(np.arange(len(parent))):
        stored = table.drop_columns(["lang"]) if "lang" in table.column_names else table
        out = run_stages(stages, Batch(stored, kind), examples=True)
        records = out.removed
        survivors = np.zeros(len(rows), bool)
        survivors[out.kept] = True
        if decontam is not None and survivors.any():
            records += _contaminated(decontam, kind, table.filter(pa.array(survivors)),
                                     split[rows[survivors]], survivors)
        keep[rows[~survivors]] = False
        for record in records:
            record["inherited"] = True
        remove(records, removed)
    gone = np.flatnonzero(~keep)
    keys = _row_keys(parent.strings("source").take(pa.array(gone)),
                     parent.strings("id").take(pa.array(gone)))
    return Refiltered(parent.subset(keep), keys, len(parent), removed)


def _contaminated(decontam: Decontamination, kind: RecordKind, table: pa.Table,
                  split: np.ndarray, survivors: np.ndarray) -> list[dict]:
    """Removal records of the surviving train rows that share an n-gram with an evaluation
    row, taken off `survivors` (a mask over the batch) in place."""
    checked = decontam.check(table, kind.row_text(table), split)
    _, records = removed_records(table, checked.reasons, "decontaminate", checked.extra)
    if records:
        at = np.flatnonzero(survivors)
        survivors[at[~checked.keep]] = False
    return records


def _row_keys(sources: pa.Array, ids: pa.Array) -> pa.Array:
    """One string per row that finds it in a split file: source and id joined."""
    return pc.binary_join_element_wise(sources.cast(pa.string()), ids.cast(pa.string()), SEP)


def split_file_keys(table: pa.Table) -> pa.Array:
    """The key of each row of a split file; an augmented row's is that of the row it was made
    from (its source without the `#augment...` suffix, and its `parent_id`), so it goes too."""
    augmented = pc.is_valid(table.column("parent_id"))
    source = pc.replace_substring_regex(table.column("source"), r"#augment.*$", "")
    row_id = pc.if_else(augmented, table.column("parent_id"), table.column("id"))
    return _row_keys(source, row_id).combine_chunks()


def place_without(refiltered: Refiltered, remove: Remove, label_column: str | None
                  ) -> Callable[[Path, Path, str], None]:
    """A `link_parent_splits` placer: a parent split file that holds no removed row is linked;
    one that does is written again without those rows (their labels and languages counted off,
    an augmented row's removal recorded)."""
    def place(source: Path, target: Path, split: str) -> None:
        with pa.memory_map(str(source)) as mapped:
            reader = pa.ipc.open_stream(mapped)
            table = reader.read_all()
        gone = pc.is_in(split_file_keys(table), value_set=refiltered.removed_keys)
        if not pc.any(gone).as_py():
            link_file(source, target)
            return
        dropped = table.filter(gone)
        refiltered.split_rows[split] += dropped.num_rows
        if label_column and label_column in dropped.column_names:
            refiltered.labels[split].update(dropped.column(label_column).drop_null().to_pylist())
        refiltered.langs[split].update(dropped.column("lang").drop_null().to_pylist())
        augmented = dropped.filter(pc.is_valid(dropped.column("parent_id")))
        records = [{**row, "stage": "refilter", "reason": PARENT_REMOVED, "inherited": True}
                   for row in augmented.select(["id", "source", "parent_id"]).to_pylist()]
        remove(records, refiltered.removed)
        with pa.OSFile(str(target), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table.filter(pc.invert(gone)))

    return place
