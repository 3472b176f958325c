"""The items of a top-level JSON array, found in a byte stream in linear time and flat memory.

Written by hand because the standard library parses only whole documents and `ijson` reports no
line numbers, which every reject must carry. A small scanner follows strings, escapes and
brackets (with regular expressions, so Python runs once per token, not per byte) to find where
each item ends; the item's bytes are then parsed like a JSON Lines line, in a worker. An item
longer than `max_row_bytes` is scanned through without being kept (only a prefix) and rejected
as `too_large`. After a syntax error (an item that is not JSON) the scanner's idea of where
strings start cannot be trusted, so the rest of the file is rejected as one row, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson

from .json_rows import parse_value
from .line_blocks import BLOCK_BYTES, RAW_PREFIX_CHARS, CheckedReader, Oversized

_TOKEN = re.compile(rb'["\[\]{},]')
_STRING_END = re.compile(rb'["\\]')
_GAP = re.compile(rb"[ \t\r\n,]*")
_CANDIDATE = re.compile(rb"[}\]][ \t\r\n]*[,\]]")
#: Candidate ends tried before the token scanner takes over (bounds the cost of an item with
#: many nested objects, each of whose ends is a candidate).
QUICK_TRIES = 8


@dataclass(slots=True)
class Item:
    """One array item: its first line and bytes, or (oversized) a note of it."""

    line: int
    data: bytes = b""
    oversized: Oversized | None = None


@dataclass(slots=True)
class Broken:
    """Where the array stops being JSON: the rest of the file is one reject."""

    line: int
    prefix: bytes
    detail: str


class _Scanner:
    """The stream and the part of it not yet handed out as items."""

    def __init__(self, fh: CheckedReader, buf: bytes) -> None:
        self.fh, self.buf, self.eof = fh, buf, False
        self.line, self.mark = 1, 0  # the line number at buf[mark]

    def line_at(self, pos: int) -> int:
        """The line number at buf[pos] (pos never goes back: lines are counted once)."""
        self.line += self.buf.count(b"\n", self.mark, pos)
        self.mark = pos
        return self.line

    def more(self, keep_from: int) -> int:
        """Drop the bytes before `keep_from` (counting their lines), read a chunk; returns how
        far the kept bytes moved."""
        self.line_at(keep_from)
        chunk = self.fh.read(BLOCK_BYTES)
        self.eof = not chunk
        self.buf, self.mark = self.buf[keep_from:] + chunk, 0
        return keep_from


def array_items(fh: CheckedReader, head: bytes, max_row_bytes: int
                ) -> Iterator[Item | Broken]:
    """Items of the array that starts in `head` (the file's first bytes, BOM removed)."""
    scan = _Scanner(fh, head)
    pos = head.index(b"[") + 1
    while True:
        gap = _GAP.match(scan.buf, pos)
        pos = gap.end()
        if pos >= len(scan.buf):
            if scan.eof:
                return
            pos -= scan.more(pos)
            continue
        if scan.buf[pos:pos + 1] == b"]":
            return
        item = _item(scan, pos, max_row_bytes)
        if isinstance(item, Broken):
            yield item
            return
        yield item[0]
        pos = item[1]


def _item(scan: _Scanner, start: int, limit: int) -> tuple[Item, int] | Broken:
    """The item that starts at `start`, and the position just after it."""
    line = scan.line_at(start)
    quick = _quick_item(scan.buf, start, limit)
    if quick is not None:
        return Item(line, scan.buf[start:quick]), quick
    depth, pos, in_string = 0, start, False
    skipped, prefix = 0, b""  # an oversized item: bytes dropped so far, and its first bytes
    while True:
        match = (_STRING_END if in_string else _TOKEN).search(scan.buf, pos)
        if match is None or (match.group() == b"\\" and match.end() >= len(scan.buf)):
            if scan.eof:
                return _broken(scan, start, line, "the array is not closed")
            # no token before here: the next search starts here (never rescans, never
            # re-copies the scanned bytes of an oversized item, so the cost stays linear)
            scanned = len(scan.buf) if match is None else match.start()
            if not prefix and len(scan.buf) - start > limit:
                prefix = scan.buf[start:start + RAW_PREFIX_CHARS * 4]
            if prefix:  # drop what is scanned, keep counting
                skipped += scanned - start
                scan.more(scanned)
                start = pos = 0
            else:
                moved = scan.more(start)
                start, pos = start - moved, scanned - moved
            continue
        token, pos = match.group(), match.end()
        if in_string:
            if token == b"\\":
                pos += 1  # the escaped byte
            else:
                in_string = False
        elif token == b'"':
            in_string = True
        elif token in b"[{":
            depth += 1
        elif token in b"]}":
            depth -= 1
            if depth < 0:  # a scalar item closed by the array's own bracket
                return _finish(scan, line, start, pos - 1, skipped, prefix, limit)
            if depth == 0:
                return _finish(scan, line, start, pos, skipped, prefix, limit)
        elif depth == 0:  # a comma after a scalar item
            return _finish(scan, line, start, pos - 1, skipped, prefix, limit)


def _quick_item(buf: bytes, start: int, limit: int) -> int | None:
    """Where the item ends, found without the token loop in the common case: the first closing
    bracket before a separator such that the bytes up to it parse as JSON. A JSON value that
    parses is the whole item (a value's end is fixed by its start). None: use the scanner."""
    pos = start
    for _ in range(QUICK_TRIES):
        match = _CANDIDATE.search(buf, pos, min(len(buf), start + limit + 1))
        if match is None:
            return None
        end = match.start() + 1
        try:
            orjson.loads(buf[start:end])
        except orjson.JSONDecodeError:
            pos = end
            continue
        return end
    return None


def _finish(scan: _Scanner, line: int, start: int, end: int, skipped: int, prefix: bytes,
            limit: int) -> tuple[Item, int] | Broken:
    """The item's bytes, checked for JSON syntax here: after an item that is not JSON the item
    boundaries found are not to be trusted."""
    data = scan.buf[start:end].rstrip()
    if prefix or len(data) > limit:
        size = skipped + len(data)
        head = prefix or data[:RAW_PREFIX_CHARS * 4]
        return Item(line, oversized=Oversized(line, size, head)), end
    row = parse_value(line, data)
    if row.error == "invalid_json" and "column" in row.detail:
        return _broken(scan, start, line, row.detail.rsplit(" (column", 1)[0])
    return Item(line, data), end


def _broken(scan: _Scanner, start: int, line: int, why: str) -> Broken:
    return Broken(line, scan.buf[start:start + RAW_PREFIX_CHARS * 4],
                  f"{why}; the rest of the array cannot be read")
