"""Raw bytes of a line-based file as blocks of whole lines, read with flat memory.

The main process of a run only reads: a block is a few MB of bytes cut at a line boundary with
the number of its first line, and the workers parse it. A line longer than the recipe's
`max_row_bytes` is never held whole: it is read through in chunks, only a bounded prefix of it
is kept (for `rejected.jsonl`), and the block carries it as a blank line plus an `Oversized`
note, so line numbers stay right. A file that cannot be read to its end (a truncated or corrupt
`.gz`) is a one-line error naming the file and where it broke.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DataprepError

#: Bytes read at a time; a block is about this size (plus at most one row).
BLOCK_BYTES = 1 << 20
#: Characters of an oversized or rejected row kept in `rejected.jsonl` and the report.
RAW_PREFIX_CHARS = 1000
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Oversized:
    """A line longer than `max_row_bytes`: where it is, how long, and its first bytes."""

    line: int
    size: int
    prefix: bytes


@dataclass(slots=True)
class LineBlock:
    """Whole lines of a file: `data` holds lines first_line, first_line + 1, ... (an oversized
    line is a blank line in `data` and an entry of `oversized`)."""

    first_line: int
    data: bytes
    oversized: list[Oversized] = field(default_factory=list)


def open_binary(path: Path):
    """The file's bytes, decompressed when it is named `.gz`."""
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


class CheckedReader:
    """`read` that turns a broken file into a one-line error naming it and the offset (of the
    decompressed bytes) where it broke: gzip, zlib and the OS raise several types for that.
    `unread` puts bytes back in front (what was read past the end of a skipped line)."""

    def __init__(self, path: Path, start: int = 0, stop: int | None = None) -> None:
        self.path, self.offset, self._back, self._stop = path, start, b"", stop
        self._fh = open_binary(path)
        if start:  # a part of a plain file (the Ray engine's read tasks; never a .gz)
            self._fh.seek(start)

    def read(self, size: int) -> bytes:
        if self._back:
            data, self._back = self._back, b""
            return data
        if self._stop is not None:
            size = max(0, min(size, self._stop - self.offset))
        try:
            data = self._fh.read(size) if size else b""
        except EOFError:
            raise DataprepError(f"{self.path}: the file ends early, after {self.offset} bytes "
                                "(a truncated .gz?); nothing was written") from None
        except (OSError, zlib.error) as exc:
            raise DataprepError(f"{self.path}: cannot be read after {self.offset} bytes "
                                f"({exc}); nothing was written") from None
        self.offset += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self._back = data + self._back

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CheckedReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def line_blocks(path: Path, max_row_bytes: int, block_bytes: int = BLOCK_BYTES,
                span: tuple[int, int, int] | None = None) -> Iterator[LineBlock]:
    """Blocks of whole lines of `path` (a UTF-8 BOM at the start dropped), each line at most
    `max_row_bytes` (longer ones noted as `Oversized`, their bytes skipped unread into memory).
    `span` = (start, stop, number of the first line): only those bytes, cut at line boundaries
    by the caller (one read task of the Ray engine)."""
    start, stop, line = span or (0, None, 1)
    with CheckedReader(path, start, stop) as fh:
        pending, eof, oversized = b"", False, []
        head = fh.read(block_bytes)
        fh.unread(head.removeprefix(UTF8_BOM) if start == 0 else head)
        while True:
            while not eof and (len(pending) < block_bytes or b"\n" not in pending):
                more = fh.read(block_bytes)
                eof = not more
                pending += more
                start = pending.rfind(b"\n") + 1
                if len(pending) - start > max_row_bytes:  # an unfinished line over the limit
                    number = line + pending.count(b"\n", 0, start)
                    note, eof = _skip_line(fh, pending[start:], number)
                    oversized.append(note)
                    pending = pending[:start] + b"\n"
            if not pending:
                break
            cut = len(pending) if eof else pending.rfind(b"\n") + 1
            block = LineBlock(line, pending[:cut], oversized)
            pending, oversized = pending[cut:], []
            line += block.data.count(b"\n")
            yield block
            block = None  # not held while the next block is read


def _skip_line(fh: CheckedReader, head: bytes, line: int) -> tuple[Oversized, bool]:
    """Read through the rest of an oversized line that starts with `head`, keeping a prefix;
    the bytes after its newline go back to `fh`. Also says whether the file ended."""
    prefix, size = head[: RAW_PREFIX_CHARS * 4], len(head)
    while True:
        chunk = fh.read(BLOCK_BYTES)
        if not chunk:
            return Oversized(line, size, prefix), True
        end = chunk.find(b"\n")
        if end >= 0:
            fh.unread(chunk[end + 1:])
            return Oversized(line, size + end, prefix), False
        size += len(chunk)


def text_lines(path: Path, limit: int) -> Iterator[tuple[int, bytes | Oversized]]:
    """(line number, bytes without the newline) of a line-based file parsed here, an oversized
    line as its note; lines are split at LF only, as the file's own numbering counts them.
    Small blocks: these formats are parsed line by line in this process anyway."""
    for block in line_blocks(path, limit, block_bytes=1 << 16):
        oversized = {note.line: note for note in block.oversized}
        data, number, pos = block.data, block.first_line, 0
        del block
        while pos < len(data):
            end = data.find(b"\n", pos)
            end = len(data) if end < 0 else end
            yield number, oversized.get(number, data[pos:end])
            number, pos = number + 1, end + 1
