"""Mapping, kind detection and reject reasons, all driven by the JSON Schemas in schemas/."""

from __future__ import annotations

import json

import pytest

from dataprep.ingest import RawRow, read_batches
from dataprep.kinds import KINDS, get_kind
from dataprep.recipe import resolve_recipe
from dataprep.schemas import load_schema, validator
from dataprep.validate import (
    Mapping,
    detect_kind,
    record_schema,
    validate_rows,
)

RECIPE = resolve_recipe({})


def check(kind, objs, recipe=RECIPE):
    rows = [RawRow(i + 1, json.dumps(o), o) for i, o in enumerate(objs)]
    return validate_rows(rows, "f.jsonl", Mapping.for_kind(kind, recipe))


@pytest.mark.parametrize(("kind", "obj", "reason"), [
    ("classification", {"label": "a"}, "missing_field:text"),
    ("classification", {"text": "hi"}, "missing_field:label"),
    ("classification", {"text": "", "label": "a"}, "empty_field:text"),
    ("classification", {"text": "  \n ", "label": "a"}, "empty_field:text"),
    ("classification", {"text": "hi", "label": None}, "null_field:label"),
    ("classification", {"text": "hi", "label": ""}, "empty_field:label"),
    ("classification", {"text": 5, "label": "a"}, "wrong_type:text"),
    ("classification", {"text": "hi", "label": [1]}, "wrong_type:label"),
    ("instruction", {"instruction": "do", "output": None}, "null_field:response"),
    ("instruction", {"output": "x"}, "missing_field:prompt"),
    ("instruction", {"prompt": "do", "response": 3}, "wrong_type:response"),
    ("chat", {"turns": []}, "empty_field:messages"),
    ("chat", {"messages": "hello"}, "wrong_type:messages"),
    ("chat", {"messages": [{"role": "user", "content": "hi"}]}, "missing_turn:assistant"),
    ("chat", {"messages": [{"role": "robot", "content": "hi"}]}, "invalid_value:messages.role"),
    ("chat", {"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]},
     "missing_field:messages.content"),
    ("chat", {"messages": [{"role": "user", "content": " "},
                           {"role": "assistant", "content": "a"}]}, "empty_field:messages.content"),
    ("chat", {"id": "x"}, "missing_field:messages"),
])
def test_reject_reasons(kind, obj, reason):
    table, rejects = check(kind, [obj])
    assert table.num_rows == 0
    assert [r.reason for r in rejects] == [reason]
    assert rejects[0].source == "f.jsonl" and rejects[0].line == 1


def test_code_rejects_exactly_what_the_schema_rejects():
    """The kept/rejected decision is the schema's own on a varied set of canonical records."""
    samples = {
        "classification": [{"text": t, "label": lab} for t in ["ok", "", " ", None, 3]
                           for lab in ["a", "", None, 1, 1.5, True]],
        "instruction": [{"prompt": p, "response": r} for p in ["do", "", None, 2]
                        for r in ["done", " ", None, []]],
        "chat": [{"messages": m} for m in [
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            [{"role": "assistant", "content": "a"}], [], "x", [{"role": "user", "content": "q"}],
            [{"role": "system", "content": "s"}, {"role": "assistant", "content": ""}],
            [{"role": "assistant", "content": 4}]]],
    }
    for kind, objs in samples.items():
        table, rejects = check(kind, objs)
        expected_valid = [validator(kind).is_valid(o) for o in objs]
        assert table.num_rows == sum(expected_valid)
        assert sorted(r.line - 1 for r in rejects) == [
            i for i, ok in enumerate(expected_valid) if not ok]


def test_arrow_columns_match_schema_properties():
    for kind in KINDS:
        props = set(load_schema(kind)["properties"])
        assert set(get_kind(kind).columns) == props - {"id", "meta"}
        assert set(record_schema(kind).names) == props | {"source", "group"}


def test_aliases_alpaca_input_and_meta():
    table, rejects = check("instruction", [
        {"instruction": "Summarise", "input": "the ticket", "output": "Done", "category": "x"},
        {"instruction": "Greet", "input": "", "output": "Hello"},
        {"prompt": "p", "completion": "c"},
    ])
    assert not rejects
    rows = table.to_pylist()
    assert rows[0]["prompt"] == "Summarise\n\nthe ticket" and rows[0]["response"] == "Done"
    assert json.loads(rows[0]["meta"]) == {"category": "x"}
    assert rows[1]["prompt"] == "Greet" and rows[1]["meta"] is None
    assert rows[2]["response"] == "c"


def test_recipe_field_mapping_and_label_to_string():
    recipe = resolve_recipe({"fields": {"text": "review", "label": "stars", "id": "rid"}})
    table, rejects = check("classification", [{"review": "Nice", "stars": 5, "rid": 7}], recipe)
    assert not rejects
    assert table.to_pylist()[0] == {"id": "7", "source": "f.jsonl:1", "meta": None,
                                    "group": None, "text": "Nice", "label": "5"}


def test_sharegpt_and_speaker_aliases_and_recipe_roles():
    recipe = resolve_recipe({"roles": {"rep": "assistant"}})
    table, rejects = check("chat", [
        {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
        {"messages": [{"role": "Customer", "content": "hi", "ts": 1},
                      {"role": "REP", "content": "hello"}]},
    ], recipe)
    assert not rejects
    rows = table.to_pylist()
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert [m["role"] for m in rows[1]["messages"]] == ["user", "assistant"]
    assert json.loads(rows[1]["meta"]) == {"messages_extra": [{"ts": 1}, {}]}


def test_content_hash_id_is_stable_and_input_id_kept():
    a, _ = check("classification", [{"text": "same", "label": "x"}])
    b, _ = check("classification", [{"text": "same", "label": "x", "other": 1}])
    c, _ = check("classification", [{"text": "same", "label": "x", "id": "R-1"}])
    assert a.column("id")[0] == b.column("id")[0]
    assert len(a.column("id")[0].as_py()) == 16
    assert c.column("id")[0].as_py() == "R-1"


def test_detect_kind_from_fields():
    assert detect_kind([{"text": "a", "label": "b"}], RECIPE) == "classification"
    assert detect_kind([{"instruction": "a", "output": "b"}], RECIPE) == "instruction"
    assert detect_kind([{"conversations": []}], RECIPE) == "chat"
    assert detect_kind([{"review": "a"}], RECIPE) is None
    mapped = resolve_recipe({"fields": {"text": "review", "label": "sentiment"}})
    assert detect_kind([{"review": "a", "sentiment": "b"}], mapped) == "classification"


def test_fixture_reject_reasons(fixtures_dir):
    """The planted defects of fixtures/DEFECTS.md, each with its line and reason."""
    expected = {
        "support_chats.jsonl": {6: "invalid_json", 11: "not_an_object", 15: "invalid_utf8",
                                18: "missing_field:messages", 24: "wrong_type:messages",
                                29: "empty_field:messages.content",
                                32: "invalid_value:messages.role", 37: "missing_turn:assistant"},
        "instructions.jsonl": {16: "invalid_json", 19: "null_field:response",
                               24: "missing_field:prompt", 28: "wrong_type:response"},
        "transcripts.txt": {13: "missing_speaker", 36: "invalid_value:messages.role",
                            43: "invalid_utf8", 51: "missing_turn:assistant"},
    }
    kinds = {"support_chats.jsonl": "chat", "instructions.jsonl": "instruction",
             "transcripts.txt": "chat"}
    for name, reasons in expected.items():
        mapping = Mapping.for_kind(kinds[name], RECIPE)
        found = {}
        for batch in read_batches(fixtures_dir / name):
            _, rejects = validate_rows(batch, name, mapping)
            found.update({r.line: r.reason for r in rejects})
        assert found == reasons, name
