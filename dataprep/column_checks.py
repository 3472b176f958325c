"""Schema checks on whole columns for the rows of a batch that share one set of keys.

Rows of one input mostly have the same keys in the same order, so the field mapping and aliases
(`validate.canonicalise`) are worked out once per key set on a probe object, the values of each
schema field are gathered into a column, and the rules of the kind's JSON Schema (types, nulls,
empty text, enums, list lengths, the assistant turn) are checked on the column at once. A row
any check is unsure of is handed back to the per-row path, so every reject keeps the reason the
schema gives it and every kept row is exactly what the per-row path would have made of it: the
decision is the schema's, this is only the quick way to reach it for rows that clearly pass.

Text emptiness is screened with Arrow's regex (RE2 knows ASCII classes only, so a string with a
printable ASCII character is certainly not empty) and decided with Python's `\\S`, as the schema
does, for the rest. Role names are mapped once per distinct name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .kinds import get_kind
from .kinds.base import MESSAGE_TYPE
from .schemas import load_schema

_NONSPACE = re.compile(r"\S")
#: A printable, non-space ASCII character: its presence proves a string is not empty.
_ASCII_SHOWN = "[!-~]"


@dataclass
class Plan:
    """How one key set maps onto the kind: canonical field -> raw key, the keys that go to
    `meta` (in order), and whether the quick path applies at all."""

    sources: dict[str, str]
    meta_keys: list[str]
    appended: dict[str, str] = field(default_factory=dict)  # raw key -> canonical target
    usable: bool = True


@dataclass
class Checked:
    """The outcome for one group: which of its rows passed, and their columns."""

    ok: np.ndarray
    columns: dict[str, pa.Array]


class _Probe:
    """Stands for a raw value while the mapping runs; remembers which raw key it came from."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


def make_plan(keys: tuple[str, ...], mapping, rename) -> Plan:
    """The plan of a key set, from the per-row path's own renaming (`rename`) run on probes."""
    schema = load_schema(mapping.kind)
    props = schema["properties"]
    out = rename({k: _Probe(k) for k in keys}, mapping, schema)
    sources = {name: v.key for name, v in out.items() if name in props}
    meta_keys = [v.key for name, v in out.items() if name not in props]
    appended = {src: target for src, target in schema.get("x-appended-context", {}).items()
                if src in out}
    usable = ("meta" not in sources and all(r in sources for r in schema["required"])
              and all(t in sources for t in appended.values()))
    if appended:
        meta_keys = [k for k in meta_keys if k not in appended]
    return Plan(sources, meta_keys, {out[s].key: t for s, t in appended.items()}, usable)


def check_group(objs: list[dict[str, Any]], plan: Plan, mapping) -> Checked | None:
    """Check a group's rows on columns; None when the quick path cannot take this group."""
    kind = get_kind(mapping.kind)
    props = load_schema(mapping.kind)["properties"]
    n = len(objs)
    ok = np.ones(n, dtype=bool)
    values: dict[str, list[Any]] = {}
    for name, src in plan.sources.items():
        values[name] = [o[src] for o in objs]
    for src, target in plan.appended.items():
        extra = [o[src] for o in objs]
        ok &= _both_str(values[target], extra)
        values[target] = [_appended(t, e) if good else t for t, e, good in
                          zip(values[target], extra, ok.tolist(), strict=True)]
    columns: dict[str, pa.Array] = {}
    for name in kind.columns:
        if name == "messages":
            got = _messages(values[name], mapping, ok)
            if got is None:
                return None
            columns[name], values[name] = got
        else:
            ok &= _scalar_ok(values[name], props[name])
    if "id" in values:
        ok &= _types_ok(values["id"], props["id"])
    every = bool(ok.all())
    rows = list(range(n)) if every else np.flatnonzero(ok).tolist()

    def kept(column: list[Any]) -> list[Any]:
        return column if every else [column[i] for i in rows]

    for name in kind.columns:
        if name != "messages":
            column = kept(values[name])
            if name == kind.label_column and set(map(type, column)) != {str}:
                column = [v if v.__class__ is str else str(v) for v in column]
            columns[name] = pa.array(column, pa.string())
    columns["id"] = pa.array(_ids(values, kind, rows), pa.string())
    columns["meta"] = pa.array(_metas(kept(objs), plan.meta_keys), pa.string())
    group = _group(kept(objs), {k: kept(v) for k, v in values.items()}, mapping.group_by)
    if group is False:
        return None
    columns["group"] = pa.array(group, pa.string())
    if "messages" in columns and not every:
        columns["messages"] = columns["messages"].take(pa.array(rows, pa.int64()))
    return Checked(ok, columns)


def _both_str(a: list[Any], b: list[Any]) -> np.ndarray:
    return np.fromiter((x.__class__ is str and y.__class__ is str for x, y in zip(a, b,
                        strict=True)), dtype=bool, count=len(a))


def _appended(target: str, extra: str) -> str:
    """canonicalise's rule: a non-blank context is appended after a blank line."""
    return f"{target}\n\n{extra}" if extra.strip() else target


@cache
def _allowed(prop_json: str) -> frozenset[type]:
    prop = json.loads(prop_json)
    types = prop.get("type", [])
    types = [types] if isinstance(types, str) else types
    return frozenset({"string": str, "integer": int}[t] for t in types)


def _types_ok(column: list[Any], prop: dict[str, Any]) -> np.ndarray:
    allowed = _allowed(json.dumps(prop, sort_keys=True))
    if set(map(type, column)) <= allowed:  # the common case, without a per-value loop
        return np.ones(len(column), dtype=bool)
    return np.fromiter((v.__class__ in allowed for v in column), dtype=bool, count=len(column))


def _scalar_ok(column: list[Any], prop: dict[str, Any]) -> np.ndarray:
    """Type and `\\S` pattern of one scalar field (the only rules the kinds' scalars have)."""
    ok = _types_ok(column, prop)
    if "pattern" in prop:
        ok &= _not_blank(column, ok)
    return ok


def _not_blank(column: list[Any], typed: np.ndarray) -> np.ndarray:
    """True where a value is not a string, or is a string holding a non-space character."""
    strings = column if typed.all() and set(map(type, column)) == {str} else \
        [v if v.__class__ is str else "x" for v in column]
    shown = pc.match_substring_regex(pa.array(strings, pa.string()), _ASCII_SHOWN)
    result = shown.to_numpy(zero_copy_only=False).copy()
    for i in np.flatnonzero(~result & typed):
        result[i] = _NONSPACE.search(column[i]) is not None
    return result


def _messages(column: list[Any], mapping, ok: np.ndarray
              ) -> tuple[pa.Array, list[Any]] | None:
    """The messages of a chat group on columns. Rows whose messages are not a non-empty list of
    objects of the group's usual shape (two keys that map to role and content) are marked in
    `ok` for the per-row path; so are rows with a bad role, a bad content or no assistant turn.
    Returns the Arrow column (all rows) and the canonical messages for the content ids, or None
    when no shape of the group maps to role and content."""
    listed = [v if v.__class__ is list else [] for v in column]
    lengths = np.fromiter((len(v) for v in listed), dtype=np.int64, count=len(column))
    ok &= lengths > 0
    flat = [m for v in listed for m in v]
    shapes = [tuple(m) if m.__class__ is dict else None for m in flat]
    common = Counter(shapes).most_common(1)
    if not common or common[0][0] is None:
        return None
    shape = common[0][0]
    role_key, content_key = _message_keys(shape, mapping)
    if role_key is None:
        return None
    owners = np.repeat(np.arange(len(column)), lengths)
    usual = np.fromiter((s == shape for s in shapes), dtype=bool, count=len(flat))
    raw_roles = [m[role_key] if u else None for m, u in zip(flat, usual.tolist(), strict=True)]
    contents = [m[content_key] if u else None for m, u in zip(flat, usual.tolist(),
                                                               strict=True)]
    names = {r: _role(r, mapping) for r in {r for r in raw_roles if r.__class__ is str}}
    roles = [names.get(r, "") if r.__class__ is str else "" for r in raw_roles]
    allowed = set(load_schema("chat")["properties"]["messages"]["items"]["properties"]["role"]
                  ["enum"])
    good = usual & np.fromiter((r in allowed for r in roles), dtype=bool, count=len(roles))
    typed = np.fromiter((c.__class__ is str for c in contents), dtype=bool, count=len(roles))
    good &= typed & _not_blank(contents, typed)
    assistant = np.fromiter((r == "assistant" for r in roles), dtype=bool, count=len(roles))
    bad_rows = np.bincount(owners, weights=~good, minlength=len(column)) > 0
    has_assistant = np.bincount(owners, weights=assistant, minlength=len(column)) > 0
    ok &= ~bad_rows & has_assistant
    contents = [c if t else "" for c, t in zip(contents, typed.tolist(), strict=True)]
    structs = pa.StructArray.from_arrays([pa.array(roles, pa.string()),
                                          pa.array(contents, pa.string())],
                                         names=["role", "content"])
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    array = pa.ListArray.from_arrays(offsets, structs).cast(MESSAGE_TYPE)
    canonical, pos = [], 0
    for length in lengths.tolist():
        canonical.append([{"role": roles[j], "content": contents[j]}
                          for j in range(pos, pos + length)])
        pos += length
    return array, canonical


def _role(raw: str, mapping) -> str:
    role = raw.strip().lower()
    return mapping.roles.get(role, role)


def _message_keys(shape: tuple[str, ...], mapping) -> tuple[str | None, str | None]:
    """The raw keys holding role and content in messages of this shape, by the per-row path's
    own mapping; (None, None) when the shape maps to anything but exactly those two."""
    from .kinds.chat import _canonical_messages

    probe = {k: k for k in shape}
    out, extras = _canonical_messages([probe], mapping)
    message = out[0]
    if extras or set(message) != {"role", "content"}:
        return None, None
    # the role value went through strip/lower/aliasing: find its key by elimination
    content_key = message["content"]
    role_key = next(k for k in shape if k != content_key)
    return role_key, content_key


def _ids(values: dict[str, list[Any]], kind, rows: list[int]) -> list[str]:
    """The input's id where it has one, else the content hash of `validate.content_id`."""
    if "id" in values:
        ids = values["id"]
        return [ids[i] if ids[i].__class__ is str else str(ids[i]) for i in rows]
    names = sorted(kind.columns)
    cols = [values[name] for name in names]
    return [_content_id({name: col[i] for name, col in zip(names, cols, strict=True)})
            for i in rows]


def _content_id(body: dict[str, Any]) -> str:
    """`validate.content_id`, with orjson writing the same bytes as json.dumps(ensure_ascii=False,
    sort_keys=True, separators=(",", ":")) (falls back to json for integers over 64 bits)."""
    try:
        blob = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        blob = json.dumps(body, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _metas(objs: list[dict[str, Any]], keys: list[str]) -> list[str | None] | pa.Array:
    """`json.dumps(meta, ensure_ascii=False, default=str)` of each row's meta fields, made as
    Arrow joins of each field's encoded column (the same bytes, about 10x faster)."""
    if not keys:
        return [None] * len(objs)
    pieces: list[Any] = []
    for j, key in enumerate(keys):
        prefix = ("{" if j == 0 else ", ") + json.dumps(key, ensure_ascii=False) + ": "
        pieces += [pa.scalar(prefix), pa.array(_encoded([o[key] for o in objs]), pa.string())]
    return pc.binary_join_element_wise(*pieces, pa.scalar("}"), "")


#: Characters json.dumps(ensure_ascii=False) escapes in a string.
_ESCAPED = re.compile('["\\\x00-\x1f]')


def _encoded(column: list[Any]) -> list[str] | pa.Array:
    """Each value as json.dumps(value, ensure_ascii=False, default=str) writes it: on Arrow for
    a column of plain strings (no character to escape) or of nulls, else value by value."""
    classes = set(map(type, column))
    if classes == {type(None)}:
        return pa.array(["null"] * len(column), pa.string())
    if classes == {str}:
        strings = pa.array(column, pa.string())
        if not pc.any(pc.match_substring_regex(strings, _ESCAPED.pattern)).as_py():
            return pc.binary_join_element_wise('"', strings, '"', "")
    out = []
    for v in column:
        cls = v.__class__
        if cls is str and _ESCAPED.search(v) is None:
            out.append(f'"{v}"')
        elif v is None:
            out.append("null")
        elif cls is int:
            out.append(int.__repr__(v))
        else:
            out.append(json.dumps(v, ensure_ascii=False, default=str))
    return out


def _group(objs: list[dict[str, Any]], values: dict[str, list[Any]], group_by: str | None
           ) -> list[str | None] | bool:
    """`validate._group_value` on the group: the raw field, else the canonical one; False when
    the canonical value would be a rewritten one (the per-row path decides)."""
    if not group_by:
        return [None] * len(objs)
    if objs and group_by in objs[0]:
        column = [o[group_by] for o in objs]
    elif group_by in values and group_by != "messages":
        column = values[group_by]
    elif group_by in ("messages", "meta"):
        return False
    else:
        return [None] * len(objs)
    return [None if v is None else v if v.__class__ is str else str(v) for v in column]
