"""One JSON value (a JSON Lines line, a `.json` array item) parsed into a raw row, never raising.

`orjson` parses the common case (about 5x faster than `json`); where it refuses a value the
standard library decides, so what is accepted, and every reject's reason and detail, are what
`json.loads` says: `NaN` and integers wider than 64 bits are kept exactly as `json` reads them
(orjson turns those integers into floats, so a line holding a long run of digits goes to `json`).
What `json` accepts but a version cannot hold is rejected with a reason: a lone surrogate escape
(`"\\ud800"`, `invalid_unicode`, it cannot be encoded as UTF-8), an integer of thousands of
digits or nesting thousands deep (`invalid_json`, with what `json` said). In one object a key
given twice keeps its last value, as both parsers do.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .line_blocks import RAW_PREFIX_CHARS, Oversized


class RawRow:
    """One input row before validation: the parsed object, or the error that stopped parsing.
    `raw` is what `rejected.jsonl` shows of the row: kept as bytes (or the object, for Parquet)
    and turned into bounded text only for the few rows that are rejected."""

    __slots__ = ("line", "_raw", "obj", "error", "detail", "size")

    def __init__(self, line: int, raw: Any, obj: Any = None, error: str | None = None,
                 detail: str = "", size: int | None = None) -> None:
        self.line, self._raw, self.obj, self.error, self.detail = line, raw, obj, error, detail
        self.size = size  # the whole row's size in bytes, where `raw` is only its start

    @property
    def raw(self) -> str:
        return bounded(raw_text(self._raw), self.size)

    def __repr__(self) -> str:
        return f"RawRow(line={self.line}, error={self.error!r}, obj={self.obj!r:.80})"


def raw_text(raw: Any) -> str:
    """A row's raw form as text: bytes decoded (bad bytes marked), Parquet objects as JSON."""
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bytes | bytearray | memoryview):
        return bytes(raw).decode("utf-8", "replace")
    try:
        return json.dumps(raw, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return repr(raw)[:RAW_PREFIX_CHARS]


def bounded(text: str, size: int | None = None) -> str:
    """The first RAW_PREFIX_CHARS characters of a long raw row and a note of its whole size,
    so `rejected.jsonl` and the report never hold a 50 MB row."""
    if len(text) <= RAW_PREFIX_CHARS and size is None:
        return text
    total = size if size is not None else len(text.encode("utf-8", "surrogatepass"))
    return f"{text[:RAW_PREFIX_CHARS]}… [{total} bytes in all]"


#: Every digit as "0", every other byte as " ": a run of 19 digits (an integer orjson would turn
#: into a float; also digits inside strings, which only costs those lines the slower parser) is
#: then a plain substring search, ~20x faster than a regular expression over a block.
_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_RUN = b"0" * 19


def long_digits(data: bytes) -> bool:
    """Whether `data` holds a run of 19 or more digits."""
    return _RUN in data.translate(_DIGITS)


def not_an_object(line: int, raw: Any, obj: Any) -> RawRow:
    return RawRow(line, raw, error="not_an_object",
                  detail=f"a JSON {type(obj).__name__} where an object was expected")


def parse_value(line: int, data: bytes, fast: bool = True) -> RawRow:
    """The row of one JSON value (`data` without its line ending); `fast=False` skips orjson
    (for values holding long digit runs)."""
    if fast:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(obj) is not dict:
                return not_an_object(line, data, obj)
            return _too_deep(line, data, obj) or RawRow(line, data, obj)
    return _parse_slow(line, data)


#: The deepest nesting kept. orjson reads 1024 levels and json about 990, but Python code after
#: them (json.dumps of meta, repr, the schema checks) recurses once a level, and would fail on
#: the way; no training record needs more than a few levels.
MAX_DEPTH = 512


def _too_deep(line: int, data: bytes, obj: dict[str, Any]) -> RawRow | None:
    """The reject of a value nested deeper than MAX_DEPTH, else None. A line shorter than two
    brackets a level cannot be that deep; nor can one with fewer opening brackets (counted at
    C speed); the rare rest are measured without recursion."""
    if len(data) < 2 * MAX_DEPTH or len(data) - len(data.translate(None, b"[{")) <= MAX_DEPTH:
        return None
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            return RawRow(line, data, error="invalid_json",
                          detail=f"nested deeper than {MAX_DEPTH} levels")
        children = value.values() if isinstance(value, dict) else value
        stack += [(c, depth + 1) for c in children if isinstance(c, dict | list)]
    return None


def _parse_slow(line: int, data: bytes) -> RawRow:
    """The standard library's verdict, with the checks orjson would have made."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return RawRow(line, data, error="invalid_utf8",
                      detail=f"invalid UTF-8 byte at column {exc.start + 1}")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawRow(line, data, error="invalid_json", detail=f"{exc.msg} (column {exc.colno})")
    except RecursionError:
        return RawRow(line, data, error="invalid_json", detail="nested too deeply to be read")
    except ValueError as exc:  # an integer of more digits than Python converts
        return RawRow(line, data, error="invalid_json", detail=str(exc))
    if not isinstance(obj, dict):
        return not_an_object(line, data, obj)
    deep = _too_deep(line, data, obj)
    if deep:
        return deep
    problem = unencodable(obj)
    if problem:
        return RawRow(line, data, error="invalid_unicode", detail=problem)
    return RawRow(line, data, obj)


def unencodable(obj: Any) -> str | None:
    """Why a parsed value cannot be stored as UTF-8 (a lone surrogate in a key or a string),
    or None. json.dumps walks keys and nested values in C, so this costs only the rare row
    that reaches the standard library's parser."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"a lone surrogate escape (\\u{ord(exc.object[exc.start]):04x}) in a string; "
                "it is not a character and cannot be stored")
    except (ValueError, RecursionError) as exc:
        return f"cannot be stored: {exc}"
    return None


def too_large(note: Oversized, limit: int) -> RawRow:
    """The reject of a row over `max_row_bytes`, with a bounded prefix of it."""
    return RawRow(note.line, note.prefix, error="too_large", size=note.size,
                  detail=f"the row is {note.size} bytes, over the recipe's max_row_bytes "
                         f"({limit})")
