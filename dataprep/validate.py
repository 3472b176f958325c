"""Map raw objects onto a record kind and check them against the kind's JSON Schema.

Field names, aliases, role names and the rules themselves all come from `schemas/`. Rows that do
not fit become rejects with a stable reason code (`missing_field:text`, `null_field:label`, ...).
This step is a per-row Python loop by necessity: raw JSON objects are heterogeneous and each bad
row needs its own reason; everything after it works on Arrow columns.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pyarrow as pa

from .errors import DataprepError
from .ingest import RawRow
from .kinds import KINDS, get_kind
from .kinds.chat import apply_aliases
from .schemas import fast_check, load_schema, validator
from .settings import Recipe


def record_schema(kind: str) -> pa.Schema:
    """The Arrow schema of validated records of one kind."""
    return get_kind(kind).record_schema()


@dataclass(slots=True)
class Reject:
    """A row that cannot be used, kept with enough context to find and fix it."""

    source: str
    line: int
    reason: str
    detail: str
    raw: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "line": self.line,
            "reason": self.reason,
            "detail": self.detail,
            "raw": self.raw,
        }


@dataclass
class Mapping:
    """How raw field names map onto one kind, built from the recipe and the kind's schema."""

    kind: str
    fields: dict[str, str]
    roles: dict[str, str] = field(default_factory=dict)
    group_by: str | None = None

    @classmethod
    def for_kind(cls, kind: str, recipe: Recipe) -> Mapping:
        roles = dict(load_schema("chat").get("x-role-aliases", {}))
        roles.update({k.lower(): v for k, v in recipe.roles.items()})
        return cls(kind, dict(recipe.fields), roles, recipe.split.group_by)


def canonicalise(obj: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """Rename recipe-mapped and aliased fields, and move every other field under `meta`."""
    schema = load_schema(mapping.kind)
    out = dict(obj)
    renamed = {
        c: out.pop(src)
        for c, src in mapping.fields.items()
        if c in schema["properties"] and src in out
    }
    out.update(renamed)
    apply_aliases(out, schema.get("x-aliases", {}))
    for extra, target in schema.get("x-appended-context", {}).items():
        value = out.get(extra)
        if isinstance(value, str) and isinstance(out.get(target), str):
            out.pop(extra)
            if value.strip():
                out[target] = f"{out[target]}\n\n{value}"
    out = get_kind(mapping.kind).canonicalise(out, mapping)
    meta = {k: out.pop(k) for k in list(out) if k not in schema["properties"]}
    if meta:
        out["meta"] = meta
    return out


def detect_kind(objects: Iterable[dict[str, Any]], recipe: Recipe) -> str | None:
    """The kind whose required fields (after mapping and aliases) most sample rows carry."""
    votes: Counter[str] = Counter()
    for obj in objects:
        for kind in KINDS:
            required = load_schema(kind)["required"]
            mapped = canonicalise(obj, Mapping.for_kind(kind, recipe))
            if all(name in mapped for name in required):
                votes[kind] += 1
                break
    return votes.most_common(1)[0][0] if votes else None


def reason_for(error) -> tuple[str, str]:
    """A stable reason code and a readable detail for one JSON Schema error.

    Array indices are left out of the code (so reasons group) but kept in the detail.
    """
    path = [str(p) for p in error.absolute_path if not isinstance(p, int)]
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = next(r for r in error.validator_value if r not in error.instance)
        name = ".".join([*path, missing])
        return (
            f"missing_field:{name}",
            f"field '{'.'.join(filter(None, [where, missing]))}' is missing",
        )
    name = ".".join(path) or "record"
    if error.validator == "type":
        if error.instance is None:
            return f"null_field:{name}", f"field '{where}' is null"
        return (
            f"wrong_type:{name}",
            f"field '{where}' is {type(error.instance).__name__}, expected {error.validator_value}",
        )
    if error.validator in ("pattern", "minLength", "minItems"):
        return f"empty_field:{name}", f"field '{where}' is empty"
    if error.validator in ("enum", "const"):
        return (
            f"invalid_value:{name}",
            f"field '{where}' is {error.instance!r}, expected one of {error.validator_value}",
        )
    if error.validator == "contains":
        wanted = error.validator_value.get("properties", {}).get("role", {}).get("const", "item")
        return f"missing_turn:{wanted}", f"no {wanted} turn in '{where}'"
    return f"invalid:{name}", error.message


@cache
def _property_order(kind: str) -> dict[str, int]:
    return {name: i for i, name in enumerate(load_schema(kind)["properties"])}


def first_error(kind: str, record: dict[str, Any]):
    """The error to report for a record: the shallowest, in schema property order; a missing
    assistant turn last, because a bad role is usually why the turn is missing."""
    order = _property_order(kind)

    def key(err):
        top = err.absolute_path[0] if err.absolute_path else ""
        if err.validator == "required":
            top = next((r for r in err.validator_value if r not in err.instance), "")
        return (err.validator == "contains", len(err.absolute_path) > 1, order.get(top, 99),
                list(map(str, err.absolute_path)))

    errors = list(validator(kind).iter_errors(record))
    return min(errors, key=key) if errors else None


def content_id(kind: str, record: dict[str, Any]) -> str:
    """A stable id from the record's content, for inputs that carry none."""
    body = {k: record[k] for k in get_kind(kind).columns if k in record}
    blob = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def validate_rows(
    rows: list[RawRow], source: str, mapping: Mapping
) -> tuple[pa.Table, list[Reject]]:
    """Split a batch of raw rows into a table of valid records and a list of rejects."""
    kind = mapping.kind
    record_kind = get_kind(kind)
    columns: dict[str, list[Any]] = {name: [] for name in record_kind.record_schema().names}
    rejects: list[Reject] = []
    check = fast_check(kind)
    for row in rows:
        if row.error:
            rejects.append(Reject(source, row.line, row.error, row.detail, row.raw))
            continue
        record = canonicalise(row.obj, mapping)
        if not check(record):
            code, detail = reason_for(first_error(kind, record))
            rejects.append(Reject(source, row.line, code, detail, row.raw))
            continue
        record_id = record.get("id")
        columns["id"].append(str(record_id) if record_id is not None else content_id(kind, record))
        columns["source"].append(f"{source}:{row.line}")
        columns["group"].append(_group_value(row.obj, record, mapping.group_by))
        meta = record.get("meta")
        columns["meta"].append(json.dumps(meta, ensure_ascii=False, default=str) if meta else None)
        for name in record_kind.columns:
            columns[name].append(record_kind.cell(name, record[name]))
    return pa.table(columns, schema=record_kind.record_schema()), rejects


def _group_value(raw: dict[str, Any], record: dict[str, Any], group_by: str | None) -> str | None:
    """The row's `split.group_by` value: the raw input field, else the canonical one."""
    if not group_by:
        return None
    value = raw.get(group_by, record.get(group_by))
    return None if value is None else str(value)


def require_kind(kind: str | None, source: str, sample: list[dict[str, Any]]) -> str:
    """Fail with one line when a file's kind cannot be told from its fields."""
    if kind in KINDS:
        return kind
    seen = sorted({k for obj in sample for k in obj})[:12]
    raise DataprepError(
        f"{source}: cannot tell the record kind from the fields {seen}; set 'kind' and "
        "'fields' in the recipe (e.g. fields: {text: review, label: sentiment})"
    )
