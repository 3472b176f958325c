"""CSV and TSV files as raw rows: a header line, then records that may span lines.

Parsed where they are read (a record's end depends on its quotes, so a block cannot be cut
without parsing it); the standard library's reader, fed lines as a file opened with newline=""
gives them, keeps each record's first line. Its field size limit is raised to the recipe's
`max_row_bytes`, and a longer record is rejected as `too_large`, never a crash.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

from .errors import DataprepError
from .json_rows import RawRow, too_large
from .line_blocks import Oversized, text_lines

_SURROGATE = re.compile("[\udc80-\udcff]")


def csv_rows(path: Path, fmt: str, limit: int) -> Iterator[RawRow]:
    """CSV/TSV with a header line. Undecodable bytes survive as surrogates and reject the row;
    a record longer than `max_row_bytes` is rejected as too_large."""
    delimiter = "\t" if fmt == "tsv" else ","
    csv.field_size_limit(max(csv.field_size_limit(), limit))
    pending: list[Oversized] = []

    def text() -> Iterator[str]:
        """Lines as csv reads them from a file opened with newline="" (split at \\r too)."""
        for _, data in text_lines(path, limit):
            if isinstance(data, Oversized):
                pending.append(data)
                yield "\n"
            else:
                for piece in (data + b"\n").splitlines(True):  # bytes split at CR and LF only
                    yield piece.decode("utf-8", "surrogateescape")

    reader = csv.reader(text(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataprepError(f"{path}: the header line cannot be read ({exc})") from None
    if any(_SURROGATE.search(cell) for cell in header):
        raise DataprepError(f"{path}: line 1: the header line holds invalid UTF-8 bytes")
    header = [h.strip().lstrip("\ufeff") for h in header]
    last_line = reader.line_num
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader resumes at the next line
            start, last_line = last_line + 1, reader.line_num
            big = "field limit" in str(exc)
            yield RawRow(start, "", error="too_large" if big else "invalid_csv",
                         detail=f"{exc}" + (f" (the recipe's max_row_bytes, {limit})" if big
                                            else ""))
            continue
        start, last_line = last_line + 1, reader.line_num
        while pending:
            yield too_large(pending.pop(0), limit)
        if record:
            yield _csv_row(start, record, header, delimiter, limit)
    while pending:
        yield too_large(pending.pop(0), limit)


def _csv_row(start: int, record: list[str], header: list[str], delimiter: str, limit: int
             ) -> RawRow:
    raw = _csv_line(record, delimiter)
    if any(_SURROGATE.search(cell) for cell in record):
        raw = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return RawRow(start, raw, error="invalid_utf8", detail="invalid UTF-8 bytes")
    if len(raw) > limit:
        return too_large(Oversized(start, len(raw.encode("utf-8")), raw[:4096].encode()), limit)
    if len(record) != len(header):
        return RawRow(start, raw, error="wrong_field_count",
                      detail=f"{len(record)} fields where the header has {len(header)}")
    return RawRow(start, raw, dict(zip(header, record, strict=True)))


def _csv_line(record: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="").writerow(record)
    return out.getvalue()
