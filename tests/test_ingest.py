"""Every input format streams into raw rows with file lines; bad rows carry an error code."""

from __future__ import annotations

import gzip
import json
import tracemalloc

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataprep.errors import DataprepError
from dataprep.ingest import BATCH_ROWS, check_inputs, read_batches


def rows_of(path):
    return [row for batch in read_batches(path) for row in batch]


def test_jsonl_lines_errors_and_blank_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "ok", "label": "x"}\n\n{"text": "cut\n[1, 2]\n'
                     b'{"text": "bad \xff byte", "label": "x"}\n')
    rows = rows_of(path)
    assert [(r.line, r.error) for r in rows] == [
        (1, None), (3, "invalid_json"), (4, "not_an_object"), (5, "invalid_utf8")]
    assert rows[0].obj == {"text": "ok", "label": "x"}
    assert "\ufffd" in rows[3].raw  # the raw text is kept, undecodable bytes marked


def test_jsonl_gz(tmp_path):
    path = tmp_path / "a.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i in range(5):
            fh.write(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) + "\n")
    rows = rows_of(path)
    assert [r.line for r in rows] == [1, 2, 3, 4, 5]
    assert rows[4].obj == {"prompt": "p4", "response": "r4"}


def test_json_array_streams_items_with_line_numbers(tmp_path):
    path = tmp_path / "a.json"
    items = [{"text": f"row {i}", "label": "a"} for i in range(3)]
    path.write_text("[\n" + ",\n".join(json.dumps(i, indent=1) for i in items) + "\n]\n")
    rows = rows_of(path)
    assert [r.obj for r in rows] == items
    assert [r.line for r in rows] == [2, 6, 10]


def test_json_array_large_items_cross_buffer_boundaries(tmp_path):
    path = tmp_path / "big.json"
    items = [{"text": "word " * 5000 + str(i), "label": "a"} for i in range(40)]
    path.write_text(json.dumps(items))
    assert [r.obj for r in rows_of(path)] == items


def test_json_array_syntax_error_rejects_the_rest(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"text": "fine", "label": "a"},\n{"text": "broken" "label": 1},\n{"x": 1}]')
    rows = rows_of(path)
    assert rows[0].error is None
    assert (rows[1].line, rows[1].error) == (2, "invalid_json")
    assert len(rows) == 2


def test_json_array_non_object_item(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[{"text": "a", "label": "b"}, 3]')
    assert [r.error for r in rows_of(path)] == [None, "not_an_object"]


def test_json_file_holding_json_lines(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"text": "a", "label": "b"}\n{"text": "c", "label": "d"}\n')
    assert [r.obj["text"] for r in rows_of(path)] == ["a", "c"]


def test_csv_multiline_records_keep_their_first_line(fixtures_dir):
    rows = rows_of(fixtures_dir / "reviews.csv")
    by_id = {r.obj["review_id"]: r for r in rows if r.obj}
    assert by_id["R-1054"].line == 55 and "\n" in by_id["R-1054"].obj["review"]
    assert by_id["R-1059"].line == 61  # the line after the two-line record
    errors = {r.line: r.error for r in rows if r.error}
    assert errors == {17: "invalid_utf8", 50: "wrong_field_count"}
    assert len(rows) == 71


def test_tsv(tmp_path):
    path = tmp_path / "a.tsv"
    path.write_text("text\tlabel\nhello, world\tgreeting\n")
    assert rows_of(path)[0].obj == {"text": "hello, world", "label": "greeting"}


def test_parquet_rows_numbered_from_one(tmp_path):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(5000)], "label": ["a"] * 5000}),
                   path, row_group_size=1000)
    rows = rows_of(path)
    assert len(rows) == 5000 and rows[0].line == 1 and rows[-1].line == 5000
    assert rows[1234].obj == {"text": "t1234", "label": "a"}


def test_transcripts(fixtures_dir):
    rows = rows_of(fixtures_dir / "transcripts.txt")
    assert len(rows) == 16
    errors = {r.line: r.error for r in rows if r.error}
    assert errors == {13: "missing_speaker", 43: "invalid_utf8"}
    continued = next(r for r in rows if r.line == 23)
    assert any("\n" in m["content"] for m in continued.obj["messages"])
    commented = next(r for r in rows if r.obj and r.obj.get("id") == "TR-0002")
    assert commented.obj["messages"][0]["role"] in ("Customer", "User")


def test_batches_are_bounded(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps({"text": str(i), "label": "a"}) + "\n"
                            for i in range(3 * BATCH_ROWS + 5)))
    sizes = [len(b) for b in read_batches(path)]
    assert sizes == [BATCH_ROWS, BATCH_ROWS, BATCH_ROWS, 5]


def _peak_reading(path):
    tracemalloc.start()
    for _batch in read_batches(path):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


@pytest.mark.parametrize("suffix", ["jsonl", "csv", "txt", "json"])
def test_memory_does_not_grow_with_file_size(tmp_path, suffix):
    def write(path, n):
        if suffix == "jsonl":
            path.write_text("".join(json.dumps({"text": "a fairly ordinary line " * 5,
                                                "label": "x"}) + "\n" for _ in range(n)))
        elif suffix == "json":
            path.write_text(json.dumps([{"text": "a fairly ordinary line " * 5, "label": "x"}] * n))
        elif suffix == "csv":
            path.write_text("text,label\n" + "a fairly ordinary line,x\n" * n)
        else:
            path.write_text("Customer: hello there\nAgent: hi, how can I help?\n\n" * n)
    small, large = tmp_path / f"s.{suffix}", tmp_path / f"l.{suffix}"
    write(small, 10_000)
    write(large, 80_000)
    assert _peak_reading(large) < 1.5 * _peak_reading(small)


def test_missing_and_unsupported_inputs(tmp_path):
    with pytest.raises(DataprepError, match="input file not found"):
        check_inputs([tmp_path / "nope.jsonl"])
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(DataprepError, match="unsupported input format"):
        check_inputs([tmp_path / "notes.md"])
