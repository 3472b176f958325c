"""Map raw objects onto a record kind and check them against the kind's JSON Schema.

Field names, aliases, role names and the rules themselves all come from `schemas/`. Rows that do
not fit become rejects with a stable reason code (`missing_field:text`, `null_field:label`, ...).
Rows that share a key set are checked on whole columns (`column_checks`); the per-row path
(`canonicalise`, the compiled schema, `first_error` and `reason_for`) takes the rows the column
checks are unsure of, so each bad row still gets its own reason.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .column_checks import Checked, Plan, check_group, make_plan
from .errors import DataprepError
from .ingest import RawRow
from .kinds import KINDS, get_kind
from .kinds.chat import apply_aliases
from .schemas import fast_check, load_schema, validator
from .settings import Recipe

#: Groups of fewer rows take the per-row path (the column path costs a few Arrow calls a group).
COLUMN_MIN_ROWS = 8


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


def renamed(obj: dict[str, Any], mapping: Mapping, schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` with recipe-mapped and aliased fields under their canonical names (it
    depends on the keys alone, so the column path works it out once per key set)."""
    out = dict(obj)
    moved = {
        c: out.pop(src)
        for c, src in mapping.fields.items()
        if c in schema["properties"] and src in out
    }
    out.update(moved)
    apply_aliases(out, schema.get("x-aliases", {}))
    return out


def canonicalise(obj: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """Rename recipe-mapped and aliased fields, and move every other field under `meta`."""
    schema = load_schema(mapping.kind)
    out = renamed(obj, mapping, schema)
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
    """Split a batch of raw rows into a table of valid records (in input order) and a list of
    rejects (in input order). Rows sharing a key set are checked on columns (`column_checks`);
    the rows it is unsure of, and small groups, take the per-row path, which gives every
    reject its reason."""
    schema = get_kind(mapping.kind).record_schema()
    rejects: list[tuple[int, Reject]] = []
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, row in enumerate(rows):
        if row.error:
            rejects.append((i, Reject(source, row.line, row.error, row.detail, row.raw)))
        else:
            groups.setdefault(tuple(row.obj), []).append(i)
    order: list[np.ndarray] = []
    tables: list[pa.Table] = []
    slow: list[int] = []
    for keys, idx in groups.items():
        checked = _checked_group(keys, [rows[i].obj for i in idx], mapping)
        if checked is None:
            slow += idx
            continue
        picked = np.asarray(idx)[checked.ok]
        slow += [idx[j] for j in np.flatnonzero(~checked.ok).tolist()]
        lines = pa.array([rows[i].line for i in picked.tolist()], pa.int64())
        checked.columns["source"] = pc.binary_join_element_wise(
            pa.scalar(f"{source}:"), pc.cast(lines, pa.string()), "")
        order.append(picked)
        tables.append(pa.Table.from_arrays([checked.columns[n] for n in schema.names],
                                           schema=schema))
    if slow or not tables:
        slow.sort()
        kept, table, slow_rejects = _per_row(rows, slow, source, mapping)
        order.append(np.asarray(kept, dtype=np.int64))
        tables.append(table)
        rejects += slow_rejects
        rejects.sort(key=lambda pair: pair[0])
    return _in_input_order(tables, order), [r for _, r in rejects]


def _checked_group(keys: tuple[str, ...], objs: list[dict[str, Any]], mapping: Mapping
                   ) -> Checked | None:
    if len(objs) < COLUMN_MIN_ROWS:
        return None
    plan = _plan(mapping.kind, tuple(mapping.fields.items()), keys)
    return check_group(objs, plan, mapping) if plan.usable else None


@lru_cache(maxsize=4096)
def _plan(kind: str, fields: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> Plan:
    return make_plan(keys, Mapping(kind, dict(fields)), renamed)


def _in_input_order(tables: list[pa.Table], order: list[np.ndarray]) -> pa.Table:
    """One table of the pieces' rows in input order, one chunk a column."""
    if len(tables) == 1:
        return tables[0].combine_chunks()
    table = pa.concat_tables(tables)
    position = np.concatenate(order)
    if np.any(position[1:] < position[:-1]):
        table = table.take(pa.array(np.argsort(position, kind="stable")))
    return table.combine_chunks()


def _per_row(rows: list[RawRow], which: list[int], source: str, mapping: Mapping
             ) -> tuple[list[int], pa.Table, list[tuple[int, Reject]]]:
    """The per-row path over rows[which]: the kept indices, their table, the rejects."""
    kind = mapping.kind
    record_kind = get_kind(kind)
    columns: dict[str, list[Any]] = {name: [] for name in record_kind.record_schema().names}
    rejects: list[tuple[int, Reject]] = []
    kept: list[int] = []
    check = fast_check(kind)
    for i in which:
        row = rows[i]
        record = canonicalise(row.obj, mapping)
        if not check(record):
            error = first_error(kind, record)
            code, detail = (reason_for(error) if error is not None else
                            ("invalid:record", "the record does not match the schema"))
            rejects.append((i, Reject(source, row.line, code, detail, row.raw)))
            continue
        kept.append(i)
        record_id = record.get("id")
        columns["id"].append(str(record_id) if record_id is not None else content_id(kind, record))
        columns["source"].append(f"{source}:{row.line}")
        columns["group"].append(_group_value(row.obj, record, mapping.group_by))
        meta = record.get("meta")
        columns["meta"].append(json.dumps(meta, ensure_ascii=False, default=str) if meta else None)
        for name in record_kind.columns:
            columns[name].append(record_kind.cell(name, record[name]))
    return kept, pa.table(columns, schema=record_kind.record_schema()), rejects


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
