"""Inputs a hostile user would try: each ends as a per-row reject with a named reason, or as a
one-line error (exit 1, no traceback) with nothing published. Rows over `max_row_bytes` are
tested with a small limit set in a recipe; the multi-GB cases belong to the benchmark."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataprep.errors import DataprepError
from dataprep.ingest import check_inputs, read_batches
from dataprep.line_blocks import RAW_PREFIX_CHARS
from dataprep.pipeline import run_pipeline
from dataprep.sources import validate_only

from .conftest import run_cli

GOOD = [{"text": f"an ordinary review number {i}", "label": "pos" if i % 2 else "neg"}
        for i in range(6)]


def jsonl(rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n"
                    for r in rows)


def rejects_of(result) -> list[dict]:
    return [json.loads(line) for line in (result.path / "rejected.jsonl").open()]


def run(tmp_path, *inputs, recipe: dict | None = None):
    path = None
    if recipe:
        path = tmp_path / "recipe.yaml"
        path.write_text(json.dumps(recipe))  # JSON is YAML
    return run_pipeline([str(p) for p in inputs], "hostile", path, tmp_path / "store")


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def nothing_published(store) -> bool:
    return not (store / "hostile").exists() or not any(
        (p / "manifest.json").exists() for p in (store / "hostile").iterdir() if p.is_dir())


# --- values JSON accepts but a version cannot hold ---------------------------------------------

SURROGATES = [b'{"text": "a \\ud800 b", "label": "x"}',
              b'{"text": "ok", "label": "x", "extra": {"deep": ["\\udfff"]}}',
              b'{"text": "ok", "label": "x", "k\\ud83d": 1}']
HUGE = [b'{"text": "ok", "label": "x", "n": 1' + b"0" * 5000 + b"}",
        b'{"text": "ok", "label": "x", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"text": "ok", "label": "x", "n": ' + b"[" * 1000 + b"]" * 1000 + b"}"]  # orjson reads it


def test_surrogates_huge_integers_and_deep_nesting_are_rejected_per_row(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl([GOOD[0], *SURROGATES, *HUGE, GOOD[1]]))
    result = run(tmp_path, path)
    reasons = {r["line"]: r["reason"] for r in rejects_of(result)}
    assert reasons == {2: "invalid_unicode", 3: "invalid_unicode", 4: "invalid_unicode",
                       5: "invalid_json", 6: "invalid_json", 7: "invalid_json"}
    details = {r["line"]: r["detail"] for r in rejects_of(result)}
    assert "digits" in details[5] and "nested" in details[6] and "nested" in details[7]
    assert result.report["counts"]["input"] == 8


def test_the_same_values_in_a_json_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"[\n" + b",\n".join([json.dumps(GOOD[0]).encode(), *SURROGATES, *HUGE,
                                          json.dumps(GOOD[1]).encode()]) + b"\n]\n")
    rows = [r for batch in read_batches(path) for r in batch]
    assert [r.error for r in rows] == [None, "invalid_unicode", "invalid_unicode",
                                       "invalid_unicode", "invalid_json", "invalid_json",
                                       "invalid_json", None]
    assert [r.line for r in rows] == [2, 3, 4, 5, 6, 7, 8, 9]


def test_integers_wider_than_64_bits_stay_integers(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl([{"id": 123456789012345678901234567890, "text": "t", "label": "x"}]))
    (row,) = next(read_batches(path))
    assert row.obj["id"] == 123456789012345678901234567890


def test_duplicate_keys_keep_the_last_value(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "first", "label": "x", "text": "second"}\n')
    (row,) = next(read_batches(path))
    assert row.obj == {"text": "second", "label": "x"}


def test_validate_command_reports_them_without_a_traceback(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl([GOOD[0], *SURROGATES, *HUGE]))
    proc = run_cli("validate", str(path))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "invalid_unicode" in proc.stdout and "invalid_json" in proc.stdout


# --- byte order marks --------------------------------------------------------------------------

def test_bom_at_the_start_of_json_lines_is_not_a_reject(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + jsonl(GOOD))
    assert [r.error for b in read_batches(path) for r in b] == [None] * len(GOOD)


def test_bom_before_a_json_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(b"\xef\xbb\xbf \n" + json.dumps(GOOD).encode())
    assert [r.obj for b in read_batches(path) for r in b] == GOOD


# --- rows over max_row_bytes -------------------------------------------------------------------

LIMIT = {"max_row_bytes": 2048}


def assert_bounded_too_large(reject, size):
    assert reject["reason"] == "too_large"
    assert str(size) in reject["raw"] and len(reject["raw"]) < RAW_PREFIX_CHARS + 100
    assert "2048" in reject["detail"]


@pytest.mark.parametrize("size", [5000, 3 << 20])  # inside one read block, and across several
def test_a_long_json_line_is_too_large_and_kept_bounded(tmp_path, size):
    long_row = json.dumps({"text": "x" * size, "label": "x"}).encode()
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl([GOOD[0], long_row, GOOD[1]]))
    result = run(tmp_path, path, recipe=LIMIT)
    (reject,) = rejects_of(result)
    assert reject["line"] == 2
    assert_bounded_too_large(reject, len(long_row))
    assert result.report["counts"]["input"] == 3


def test_a_long_line_in_a_gzip_file(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    long_row = json.dumps({"text": "y" * (3 << 20), "label": "x"}).encode()
    with gzip.open(path, "wb") as fh:
        fh.write(jsonl([GOOD[0], long_row, *GOOD[1:]]))
    rows = [r for b in read_batches(path, max_row_bytes=2048) for r in b]
    assert [r.error for r in rows] == [None, "too_large"] + [None] * (len(GOOD) - 1)
    assert [r.line for r in rows] == list(range(1, len(GOOD) + 2))


def test_a_long_json_array_item_is_skipped_to_its_end(tmp_path):
    path = tmp_path / "a.json"
    items = [GOOD[0], {"text": "z" * (2 << 20), "label": "x", "n": [1, {"a": "]}"}]}, GOOD[1]]
    path.write_text(json.dumps(items, indent=1))
    rows = [r for b in read_batches(path, max_row_bytes=2048) for r in b]
    assert [r.error for r in rows] == [None, "too_large", None]
    assert rows[2].obj == GOOD[1] and len(rows[1].raw) < RAW_PREFIX_CHARS + 100


def test_a_long_csv_record_is_too_large(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\nfine,x\n\"" + "w" * 5000 + "\",x\n\"two\nlines\",y\nlast,z\n")
    result = run(tmp_path, path, recipe=LIMIT)
    (reject,) = rejects_of(result)
    assert reject["line"] == 3 and reject["reason"] == "too_large"
    assert result.report["counts"]["input"] == 4


def test_a_csv_cell_over_128_kb_is_read(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("text,label\n\"" + "big text " * 20_000 + "\",x\nsmall,y\n")
    rows = [r for b in read_batches(path) for r in b]
    assert [r.error for r in rows] == [None, None] and len(rows[0].obj["text"]) > 128_000


def test_every_reject_raw_is_bounded(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl([b'{"text": "' + b"v" * 3000 + b'", "label": ', GOOD[0]]))
    result = run(tmp_path, path)
    (reject,) = rejects_of(result)
    assert reject["reason"] == "invalid_json" and len(reject["raw"]) < RAW_PREFIX_CHARS + 100


# --- a JSON array with a bad byte late in the file --------------------------------------------

def test_a_bad_byte_after_the_first_64_kb_of_a_json_array(tmp_path):
    path = tmp_path / "a.json"
    items = [json.dumps({"text": f"row {i} " + "pad " * 50, "label": "x"}).encode()
             for i in range(400)]
    items[300] = items[300].replace(b"pad", b"p\xffd", 1)
    path.write_bytes(b"[" + b",\n".join(items) + b"]")
    rows = [r for b in read_batches(path) for r in b]
    assert len(rows) == 400
    assert [i for i, r in enumerate(rows) if r.error] == [300]
    assert rows[300].error == "invalid_utf8" and rows[300].line == 301


# --- files that cannot be read to their end: one line, nothing published ----------------------

def broken_files(tmp_path):
    whole = gzip.compress(jsonl(GOOD * 2000))
    (tmp_path / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "notgzip.jsonl.gz").write_bytes(jsonl(GOOD))
    (tmp_path / "trailing.jsonl.gz").write_bytes(whole + b"garbage after the stream")
    table = pa.table({"text": [f"t{i} " * 20 for i in range(20_000)], "label": ["x"] * 20_000})
    pq.write_table(table, tmp_path / "corrupt.parquet", row_group_size=5000,
                   compression="snappy")
    data = bytearray((tmp_path / "corrupt.parquet").read_bytes())
    middle = len(data) // 2
    data[middle:middle + 2000] = os.urandom(2000)
    (tmp_path / "corrupt.parquet").write_bytes(bytes(data))
    return ["truncated.jsonl.gz", "notgzip.jsonl.gz", "trailing.jsonl.gz", "corrupt.parquet"]


def test_unreadable_files_fail_the_run_with_one_line(tmp_path):
    for name in broken_files(tmp_path):
        store = tmp_path / f"store-{name}"
        proc = run_cli("run", str(tmp_path / name), "--name", "hostile", "--store", str(store),
                       "-q")
        assert_one_line_error(proc, name)
        assert nothing_published(store), name
        proc = run_cli("validate", str(tmp_path / name))
        assert_one_line_error(proc, name)


def test_unreadable_files_in_process(tmp_path):
    """The same, as errors of the library (cheaper to run for every broken file)."""
    for name in broken_files(tmp_path):
        with pytest.raises(DataprepError, match=name):
            validate_only([tmp_path / name])


# --- the same file twice -----------------------------------------------------------------------

def test_the_same_file_given_twice_is_refused(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(jsonl(GOOD))
    (tmp_path / "link.jsonl").symlink_to(path)
    for twice in ([path, tmp_path / "." / "a.jsonl"], [path, tmp_path / "link.jsonl"]):
        with pytest.raises(DataprepError, match="given twice"):
            check_inputs(twice)
    proc = run_cli("run", "a.jsonl", "./a.jsonl", "--name", "hostile", "--store",
                   str(tmp_path / "store"), cwd=tmp_path)
    assert_one_line_error(proc, "given twice")
    assert nothing_published(tmp_path / "store")
