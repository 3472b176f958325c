"""Which stratum each staged row is in, for `split.stratify_by`.

`label` and `lang` (and `auto`: the label when the kind has one) come from the codes the first pass
already keeps. Any other name is an input field: a canonical field is a column of the staging file
(kept like `group_by`), any other input field is a key of the row's `meta` JSON; the raw name a
recipe maps (`fields: {label: sentiment}`) means its canonical field. Rows without the field form
their own stratum (code -1); a field that no row has is an error, never a silent unstratified
split.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataprepError
from .keys import Codes, Keys
from .kinds import RecordKind

#: How many fields of the `meta` column an error message names as the ones rows do have.
FIELDS_NAMED = 12


@dataclass
class Strata:
    codes: np.ndarray  # stratum code per staged row, -1 where the row has no value
    names: list[str]   # the value of each code


def row_strata(keys: Keys, stratify_by: str | None, kind: RecordKind,
               fields: dict[str, str] | None = None, staging: Path | None = None) -> Strata:
    """The strata of `stratify_by` for every row of `keys`; an input field's values are read
    back from the staging file (one pass over its column, or over `meta` parsing only the rows
    that mention the field)."""
    n = len(keys)
    if stratify_by == "auto":
        stratify_by = kind.label_column
    if stratify_by is None:
        return Strata(np.full(n, -1, np.int64), [])
    name = {src: canon for canon, src in (fields or {}).items()}.get(stratify_by, stratify_by)
    if name == "label" and kind.label_column:
        return Strata(keys.labels, keys.label_names)
    if name == "lang":
        return Strata(keys.langs, keys.lang_names)
    if staging is None:
        raise ValueError(f"stratifying by the input field {stratify_by!r} needs the staging file")
    strata, seen = _read_field(staging, name)
    if n and (strata.codes < 0).all():
        raise DataprepError(
            f"split.stratify_by: no record has the field {stratify_by!r}, so the split cannot be "
            f"stratified by it; fields the records have: {', '.join(seen) or 'none'}")
    return strata


def _read_field(staging: Path, name: str) -> tuple[Strata, list[str]]:
    """Codes of `name` per staged row, and the names of the fields rows have (for errors)."""
    codes, parts, seen = Codes(), [], set()
    with pa.OSFile(str(staging)) as source:
        reader = pa.ipc.open_stream(source)
        schema = reader.schema
        columns = [c for c in schema.names if c != "meta"]
        if name in columns:
            _check_scalar(name, schema.field(name).type)
        for batch in reader:
            if name in columns:
                values = batch.column(name)
                values = values if pa.types.is_string(values.type) else values.cast(pa.string())
            else:
                values = _meta_values(batch.column("meta"), name, seen)
            parts.append(codes.encode(values))
    found = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    return Strata(found, codes.names()), columns + sorted(seen)[:FIELDS_NAMED]


def _check_scalar(name: str, kind: pa.DataType) -> None:
    if pa.types.is_nested(kind):
        raise DataprepError(f"split.stratify_by: {name!r} holds a {kind} per row, not one value; "
                            "name a field with one value per row (e.g. intent or topic)")


def _meta_values(meta: pa.Array, name: str, seen: set[str]) -> pa.Array:
    """The field's value in each row's `meta` JSON (null where absent or null). Only rows whose
    JSON contains the name are parsed (a substring check in Arrow first): stratifying should
    not cost a JSON parse of every row. A non-string value is taken as its JSON text."""
    out: list[str | None] = [None] * len(meta)
    plain = json.dumps(name, ensure_ascii=False)[1:-1] == name  # written as is inside the JSON
    if not seen:  # name a few fields for the error message
        for text in meta.drop_null()[:200].to_pylist():
            seen.update(orjson.loads(text))
    mentions = pc.match_substring(meta, name) if plain else pc.is_valid(meta)
    rows = np.flatnonzero(pc.fill_null(mentions, False).to_numpy(zero_copy_only=False))
    for row, text in zip(rows.tolist(), meta.take(pa.array(rows)).to_pylist(), strict=True):
        value = orjson.loads(text).get(name)
        if value is not None:
            out[row] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return pa.array(out, pa.string())
