"""What a record kind is: its schema, columns, text view, cleanable text, augmentable units and
conversation view. Every per-kind decision of the pipeline is a method here, so a new kind is one
module (a subclass registered in `kinds/__init__.py`) plus one schema in `schemas/`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MESSAGE_TYPE = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
#: Columns every validated record has, whatever its kind.
COMMON_COLUMNS: dict[str, pa.DataType] = {"id": pa.string(), "source": pa.string(),
                                          "group": pa.string(), "meta": pa.string()}
#: Cleans one string array (the clean stage's steps, counted); kinds say where their text is.
CleanText = Callable[[pa.Array], pa.Array]


def two_turns(user: pa.Array, assistant: pa.Array) -> pa.Array:
    """A user/assistant conversation per row, built with Arrow list arrays (no per-row Python)."""
    n = len(user)
    roles = pa.array(np.tile(np.array(["user", "assistant"], dtype=object), n), pa.string())
    contents = pc.take(
        pa.concat_arrays([user, assistant]),
        pa.array(np.column_stack([np.arange(n), np.arange(n) + n]).ravel()),
    )
    structs = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), structs)


def empty_reasons(table: pa.Table, columns: list[str]) -> pa.Array:
    """`empty_after_clean:<column>` for rows whose column is empty (the first such column)."""
    reasons = np.full(table.num_rows, None, dtype=object)
    for name in reversed(columns):
        empty = pc.equal(pc.utf8_length(table.column(name)), 0).to_numpy(zero_copy_only=False)
        reasons[empty] = f"empty_after_clean:{name}"
    return pa.array(reasons, pa.string())


class RecordKind:
    """One kind of record. Subclasses set the class attributes and the text-view methods."""

    #: The kind's name: the recipe's `kind`, the manifest's `kind`, its schema's file name.
    name: str = ""
    #: The kind's own columns (besides COMMON_COLUMNS) in a validated record.
    columns: dict[str, pa.DataType] = {}
    #: The column holding the class label, if the kind has one (stratified splits, metrics).
    label_column: str | None = None
    #: Source columns kept beside the training view in the written splits.
    kept_columns: tuple[str, ...] = ()
    #: Raw field names a recipe's `fields:` may map beyond the kind's columns.
    extra_mappable_fields: tuple[str, ...] = ()

    def record_schema(self) -> pa.Schema:
        """The Arrow schema of validated records of this kind."""
        return pa.schema({**COMMON_COLUMNS, **self.columns})

    def canonicalise(self, record: dict[str, Any], mapping) -> dict[str, Any]:
        """Kind-specific renaming inside a raw record after the field aliases (default none)."""
        return record

    def cell(self, name: str, value: Any) -> Any:
        """A validated field's value as stored (labels are strings in a version)."""
        return str(value) if name == self.label_column else value

    def row_text(self, table: pa.Table) -> pa.Array:
        """The row's whole text: what language ID, filters and dedup look at."""
        raise NotImplementedError

    def clean(self, table: pa.Table, clean_text: CleanText) -> pa.Table:
        """The table with every text column passed through `clean_text`."""
        raise NotImplementedError

    def empty_after_clean(self, table: pa.Table) -> pa.Array:
        """A reason for each row whose required text is empty after cleaning, else null."""
        raise NotImplementedError

    def text_units(self, table: pa.Table) -> tuple[pa.Array, np.ndarray]:
        """The texts an augmenter may rewrite and the row each belongs to (never an answer)."""
        raise NotImplementedError

    def with_units(self, table: pa.Table, units: pa.Array) -> pa.Table:
        """The table with its text units replaced (the inverse of `text_units`)."""
        raise NotImplementedError

    def to_messages(self, table: pa.Table, classification_prompt: str, labels: list[str]
                    ) -> pa.Array:
        """The conversation view (OpenAI messages) of every row."""
        raise NotImplementedError


def set_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def single_column(table: pa.Table, name: str) -> pa.Array:
    """A column as one array (a table straight from validation has one chunk a column)."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
