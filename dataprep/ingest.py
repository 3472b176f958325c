"""Read raw files as blocks for the workers, and blocks as raw rows, whatever the format.

The main process of a run only reads (`read_blocks`): bytes of whole lines of a JSON Lines
file, item bytes of a `.json` array, Parquet record batches; a worker turns a block into rows
(`parse_block`), so JSON parsing runs in parallel. CSV and transcripts, whose records span
lines, are split into records where they are read. A reader never raises on a bad row: it
yields the row with an error code so that validation can quarantine it with its file and line;
a file that cannot be read to its end is a one-line error. Memory stays flat: one block at a
time, and no row longer than the recipe's `max_row_bytes` is ever held whole.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common.errors import first_line

from .csv_rows import csv_rows
from .errors import DataprepError
from .json_array import Broken, Item, array_items
from .json_rows import RawRow, long_digits, parse_value, too_large
from .line_blocks import UTF8_BOM, CheckedReader, LineBlock, Oversized, line_blocks, text_lines

BATCH_ROWS = 2048
#: The recipe's default `max_row_bytes`, for callers without a recipe.
MAX_ROW_BYTES = 4 << 20

__all__ = ["BATCH_ROWS", "Block", "RawRow", "check_inputs", "detect_format", "file_sha256",
           "parquet_blocks", "parse_block", "read_batches", "read_blocks"]


@dataclass(slots=True)
class Block:
    """What the main process hands a worker: one of the format's raw forms."""

    fmt: str
    max_row_bytes: int
    lines: LineBlock | None = None         # jsonl: whole lines
    items: list[Item] = field(default_factory=list)  # json: array items
    broken: Broken | None = None           # json: where the array stopped being JSON
    batch: pa.RecordBatch | None = None    # parquet
    first_row: int = 1                     # parquet: the number of the batch's first row
    rows: list[RawRow] = field(default_factory=list)  # csv, tsv, transcripts: parsed here

    def size(self) -> int:
        """Rows in the block, at most (blank lines of JSON Lines included)."""
        if self.lines is not None:
            return self.lines.data.count(b"\n") + 1
        if self.batch is not None:
            return self.batch.num_rows
        return len(self.items) + len(self.rows) + (self.broken is not None)


def detect_format(path: Path) -> str:
    """The input format from the file name (`.gz` allowed on text formats)."""
    name = path.name.lower().removesuffix(".gz")
    suffix = name.rsplit(".", 1)[-1] if "." in name else ""
    mapping = {
        "jsonl": "jsonl",
        "ndjson": "jsonl",
        "json": "json",
        "csv": "csv",
        "tsv": "tsv",
        "parquet": "parquet",
        "txt": "transcript",
    }
    if suffix not in mapping:
        raise DataprepError(
            f"{path}: unsupported input format '.{suffix}' (use .jsonl, .json, .csv, .tsv, "
            ".parquet or .txt transcripts, optionally .gz)"
        )
    return mapping[suffix]


def check_inputs(paths: list[str | Path]) -> list[Path]:
    """Fail early, with one line, on a missing input, an unsupported format or a file named
    twice (by two spellings of its path or through a link)."""
    if not paths:
        raise DataprepError("no input files given")
    checked: list[Path] = []
    seen: dict[Path, Path] = {}
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise DataprepError(f"{path}: input file not found")
        if not path.is_file():
            raise DataprepError(f"{path}: input is not a file")
        detect_format(path)
        real = path.resolve()
        if real in seen:  # its rows would be read twice, with the same `source` values
            raise DataprepError(f"{path}: given twice (also as {seen[real]}); name each input "
                                "file once")
        seen[real] = path
        checked.append(path)
    return checked


def file_sha256(path: Path) -> str:
    """Hash of the file's bytes, read in chunks; it identifies the input in the version id."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()




def read_blocks(path: Path, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[Block]:
    """Stream `path` as blocks, choosing the reader from the file name (main process)."""
    fmt = detect_format(path)
    if fmt == "parquet":
        yield from parquet_blocks(path, max_row_bytes)
    elif fmt == "json":
        yield from _json_blocks(path, max_row_bytes)
    elif fmt == "jsonl":
        for lines in line_blocks(path, max_row_bytes):
            yield Block(fmt, max_row_bytes, lines=lines)
    else:
        reader = csv_rows if fmt in ("csv", "tsv") else _transcript_rows
        for rows in _batched(reader(path, fmt, max_row_bytes), BATCH_ROWS):
            yield Block(fmt, max_row_bytes, rows=rows)


def parse_block(block: Block) -> list[RawRow]:
    """The block's rows, in file order (in a worker)."""
    return list(iter_rows(block))


def iter_rows(block: Block) -> Iterator[RawRow]:
    """The block's rows, in file order, one at a time."""
    if block.lines is not None:
        yield from _jsonl_rows(block.lines, block.max_row_bytes)
    elif block.batch is not None:
        yield from _parquet_rows(block.batch, block.first_row)
    elif block.rows:
        yield from block.rows
    else:
        for i in block.items:
            yield (too_large(i.oversized, block.max_row_bytes) if i.oversized else
                   parse_value(i.line, i.data, not long_digits(i.data)))
        if block.broken is not None:
            b = block.broken
            yield RawRow(b.line, b.prefix, error="invalid_json", detail=b.detail)


def read_batches(path: Path, batch_rows: int = BATCH_ROWS, max_row_bytes: int = MAX_ROW_BYTES
                 ) -> Iterator[list[RawRow]]:
    """Stream `path` as batches of at most `batch_rows` raw rows (in one process)."""
    batch: list[RawRow] = []
    for block in read_blocks(path, max_row_bytes):
        rows = iter_rows(block)
        del block  # only `rows` holds it, so it goes before the next block is read
        for row in rows:
            batch.append(row)
            if len(batch) >= batch_rows:
                yield batch
                batch = []
    if batch:
        yield batch


def _batched(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _jsonl_rows(block: LineBlock, limit: int) -> Iterator[RawRow]:
    """One JSON object per line; blank lines are layout, not rows. A line holding a run of 19
    or more digits goes to the standard library's parser (see json_rows)."""
    number = block.first_line
    oversized = {note.line: note for note in block.oversized}
    digits = long_digits(block.data)
    for line in block.data.split(b"\n"):
        if not line.strip():
            if number in oversized:
                yield too_large(oversized[number], limit)
        elif len(line) > limit:
            yield too_large(Oversized(number, len(line), line[:4096]), limit)
        else:
            line = line.rstrip(b"\r")
            yield parse_value(number, line, not digits or not long_digits(line))
        number += 1


def _json_blocks(path: Path, limit: int) -> Iterator[Block]:
    """A `.json` file: a top-level array streamed item by item, or JSON Lines in disguise
    (what follows an optional BOM and whitespace tells which)."""
    with CheckedReader(path) as fh:
        head = fh.read(1 << 16).removeprefix(UTF8_BOM)
        while head.isspace() and len(head) < (1 << 24):
            more = fh.read(1 << 16)
            if not more:
                break
            head += more
        if not head.lstrip().startswith(b"["):
            fh.close()
            yield from (Block("jsonl", limit, lines=lines) for lines in line_blocks(path, limit))
            return
        block = Block("json", limit)
        for item in array_items(fh, head, limit):
            if isinstance(item, Broken):
                block.broken = item
                break
            block.items.append(item)
            if len(block.items) >= BATCH_ROWS:
                yield block
                block = Block("json", limit)
        if block.items or block.broken:
            yield block


def _parquet_rows(batch: pa.RecordBatch, first_row: int) -> Iterator[RawRow]:
    """A Parquet batch's rows as objects. Parquet does not check that a string column holds
    UTF-8, so where the whole batch cannot be decoded each row is tried alone and a row with
    invalid bytes is rejected (the rest of the batch is kept)."""
    try:
        objects = batch.to_pylist()
    except UnicodeDecodeError:
        objects = None
    if objects is not None:
        yield from (RawRow(n, obj, obj) for n, obj in enumerate(objects, start=first_row))
        return
    for i in range(batch.num_rows):
        try:
            obj = batch.slice(i, 1).to_pylist()[0]
        except UnicodeDecodeError as exc:
            yield RawRow(first_row + i, "", error="invalid_utf8",
                         detail=f"invalid UTF-8 in a string column (byte {exc.start + 1})")
            continue
        yield RawRow(first_row + i, obj, obj)


def parquet_blocks(path: Path, limit: int, row_groups: list[int] | None = None,
                   first_row: int = 1, name: str | None = None) -> Iterator[Block]:
    """Parquet rows, numbered from 1 in file order (Parquet has no lines). A corrupt page is a
    one-line error naming the file and the rows read before it. `row_groups` (whose first row
    is `first_row`) and `name` (the file as the user gave it): one read task of the Ray
    engine."""
    name = name or str(path)
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        why = first_line(exc)
        raise DataprepError(f"{name}: not a readable Parquet file ({why})") from None
    number = first_row
    batches = parquet.iter_batches(batch_size=BATCH_ROWS, row_groups=row_groups)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt page or column chunk: several pyarrow types
            why = first_line(exc)
            raise DataprepError(f"{name}: cannot be read after row {number - 1} ({why}); "
                                "nothing was written") from None
        yield Block("parquet", limit, batch=batch, first_row=number)
        number += batch.num_rows


_SPEAKER = re.compile(r"^([A-Za-z][A-Za-z0-9 _.-]{0,30}):(?:\s+(.*)|$)")
_COMMENT = re.compile(r"^#\s*([A-Za-z_][\w-]*)\s*:\s*(.*)$")


def _transcript_rows(path: Path, fmt: str, limit: int) -> Iterator[RawRow]:
    """Plain-text transcripts: `Speaker: text` a line, a blank line between conversations.

    A line without a speaker continues the previous turn; `# key: value` lines before the first
    turn set fields of the conversation (`# id: T-1`). A conversation is one row.
    """
    block: list[tuple[int, bytes]] = []
    for number, data in text_lines(path, limit):
        if isinstance(data, Oversized):
            if block:
                yield _transcript_block(block)
                block = []
            yield too_large(data, limit)
        elif data.strip():
            block.append((number, data.rstrip(b"\r\n")))
        elif block:
            yield _transcript_block(block)
            block = []
    if block:
        yield _transcript_block(block)


def _decode(data: bytes) -> tuple[str, str | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), f"invalid UTF-8 byte at column {exc.start + 1}"


def _transcript_block(block: list[tuple[int, bytes]]) -> RawRow:
    first = block[0][0]
    lines = []
    for number, data in block:
        text, bad = _decode(data)
        if bad:
            raw = "\n".join(d.decode("utf-8", "replace") for _, d in block)
            return RawRow(number, raw, error="invalid_utf8", detail=bad)
        lines.append((number, text))
    raw = "\n".join(text for _, text in lines)
    obj: dict[str, Any] = {}
    messages: list[dict[str, str]] = []
    for number, text in lines:
        comment = _COMMENT.match(text)
        if comment and not messages:
            obj[comment.group(1)] = comment.group(2).strip()
            continue
        turn = _SPEAKER.match(text)
        if turn:
            messages.append({"role": turn.group(1).strip(), "content": turn.group(2) or ""})
        elif messages:
            messages[-1]["content"] += "\n" + text
        else:
            return RawRow(
                number,
                raw,
                error="missing_speaker",
                detail="the first line of a conversation must start with 'Speaker:'",
            )
    obj["messages"] = messages
    return RawRow(first, raw, obj)
