"""Read raw files as a stream of batches of raw rows, whatever their format.

A reader never raises on a bad row: it yields the row with an error code so that validation can
quarantine it with its file and line. Memory stays flat: every reader holds one batch at a time.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from .errors import DataprepError

BATCH_ROWS = 2048


@dataclass(slots=True)
class RawRow:
    """One input row before validation: the parsed object, or the error that stopped parsing."""

    line: int
    raw: str
    obj: Any = None
    error: str | None = None
    detail: str = ""


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
    """Fail early, with one line, on a missing input or an unsupported format."""
    if not paths:
        raise DataprepError("no input files given")
    checked = []
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise DataprepError(f"{path}: input file not found")
        if not path.is_file():
            raise DataprepError(f"{path}: input is not a file")
        detect_format(path)
        checked.append(path)
    return checked


def file_sha256(path: Path) -> str:
    """Hash of the file's bytes, read in chunks; it identifies the input in the version id."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def _batched(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_batches(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[list[RawRow]]:
    """Stream `path` as batches of RawRow, choosing the reader from the file name."""
    fmt = detect_format(path)
    if fmt == "parquet":
        yield from _parquet_batches(path, batch_rows)
        return
    readers = {
        "jsonl": _jsonl_rows,
        "json": _json_rows,
        "csv": _csv_rows,
        "tsv": _csv_rows,
        "transcript": _transcript_rows,
    }
    yield from _batched(readers[fmt](path), batch_rows)


def _decode(data: bytes) -> tuple[str, str | None]:
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), f"invalid UTF-8 byte at column {exc.start + 1}"


def _parse_json_text(line: int, text: str) -> RawRow:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return RawRow(line, text, error="invalid_json", detail=f"{exc.msg} (column {exc.colno})")
    if not isinstance(obj, dict):
        return RawRow(
            line,
            text,
            error="not_an_object",
            detail=f"a JSON {type(obj).__name__} where an object was expected",
        )
    return RawRow(line, text, obj)


def _jsonl_rows(path: Path) -> Iterator[RawRow]:
    """One JSON object per line; blank lines are layout, not rows."""
    with _open_binary(path) as fh:
        for number, data in enumerate(fh, start=1):
            if not data.strip():
                continue
            text, bad = _decode(data.rstrip(b"\r\n"))
            if bad:
                yield RawRow(number, text, error="invalid_utf8", detail=bad)
            else:
                yield _parse_json_text(number, text)


def _json_rows(path: Path) -> Iterator[RawRow]:
    """A `.json` file: a top-level array streamed item by item, or JSON Lines in disguise.

    Written by hand because the standard library only parses whole documents and `ijson` does
    not report line numbers, which every reject must carry. After a syntax error inside an array
    there is no reliable way to find the next item, so the rest of the file is rejected as one row.
    """
    with _open_binary(path) as fh:
        head = fh.read(4096).lstrip()
    if not head.startswith(b"["):
        yield from _jsonl_rows(path)
        return
    with _open_binary(path) as binary:
        stream = io.TextIOWrapper(binary, encoding="utf-8", errors="strict", newline="")
        yield from _json_array_items(stream)


def _json_array_items(stream: io.TextIOBase) -> Iterator[RawRow]:
    decoder = json.JSONDecoder()
    buf, pos, line, eof = "", 0, 1, False
    try:
        buf = stream.read(1 << 16)
    except UnicodeDecodeError as exc:
        yield RawRow(1, "", error="invalid_utf8", detail=str(exc))
        return
    pos = buf.index("[") + 1
    line += buf.count("\n", 0, pos)
    while True:
        # skip whitespace and separators, refilling the buffer as needed
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                line += buf[pos] == "\n"
                pos += 1
            if pos < len(buf) or eof:
                break
            buf, pos = buf[pos:], 0
            chunk = stream.read(1 << 16)
            eof = chunk == ""
            buf += chunk
        if pos >= len(buf) or buf[pos] == "]":
            return
        try:
            obj, end = decoder.raw_decode(buf, pos)
        except json.JSONDecodeError as exc:
            if not eof:  # maybe the item is cut by the buffer end: read more and retry
                try:
                    chunk = stream.read(1 << 16)
                except UnicodeDecodeError as uexc:
                    yield RawRow(line, buf[pos:], error="invalid_utf8", detail=str(uexc))
                    return
                eof = chunk == ""
                buf, pos = buf[pos:] + chunk, 0
                continue
            rest = buf[pos:]
            yield RawRow(
                line,
                rest[:2000],
                error="invalid_json",
                detail=f"{exc.msg}; the rest of the array cannot be read",
            )
            return
        text = buf[pos:end]
        row = (
            RawRow(line, text, obj)
            if isinstance(obj, dict)
            else RawRow(
                line,
                text,
                error="not_an_object",
                detail=f"a JSON {type(obj).__name__} where an object was expected",
            )
        )
        yield row
        line += text.count("\n")
        pos = end


_SURROGATE = re.compile("[\udc80-\udcff]")


def _csv_rows(path: Path) -> Iterator[RawRow]:
    """CSV/TSV with a header line. Undecodable bytes survive as surrogates and reject the row."""
    delimiter = "\t" if detect_format(path) == "tsv" else ","
    with _open_binary(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip().lstrip("\ufeff") for h in header]
        last_line = reader.line_num
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not record:
                continue
            raw = _csv_line(record, delimiter)
            if any(_SURROGATE.search(cell) for cell in record):
                raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield RawRow(start, raw, error="invalid_utf8", detail="invalid UTF-8 bytes")
            elif len(record) != len(header):
                yield RawRow(
                    start,
                    raw,
                    error="wrong_field_count",
                    detail=f"{len(record)} fields where the header has {len(header)}",
                )
            else:
                yield RawRow(start, raw, dict(zip(header, record, strict=True)))


def _csv_line(record: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(record)
    return out.getvalue()


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[list[RawRow]]:
    """Parquet rows, numbered from 1 in file order (Parquet has no lines)."""
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise DataprepError(f"{path}: not a readable Parquet file ({exc})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        rows = []
        for obj in batch.to_pylist():
            number += 1
            rows.append(RawRow(number, json.dumps(obj, ensure_ascii=False, default=str), obj))
        yield rows


_SPEAKER = re.compile(r"^([A-Za-z][A-Za-z0-9 _.-]{0,30}):(?:\s+(.*)|$)")
_COMMENT = re.compile(r"^#\s*([A-Za-z_][\w-]*)\s*:\s*(.*)$")


def _transcript_rows(path: Path) -> Iterator[RawRow]:
    """Plain-text transcripts: `Speaker: text` a line, a blank line between conversations.

    A line without a speaker continues the previous turn; `# key: value` lines before the first
    turn set fields of the conversation (`# id: T-1`). A conversation is one row.
    """
    with _open_binary(path) as fh:
        block: list[tuple[int, bytes]] = []
        for number, data in enumerate(fh, start=1):
            if data.strip():
                block.append((number, data.rstrip(b"\r\n")))
            elif block:
                yield _transcript_block(block)
                block = []
        if block:
            yield _transcript_block(block)


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
