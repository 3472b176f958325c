"""Cleaning: unicode repair, control characters, whitespace, PII, and the optional folds."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest

import dataprep.clean as clean_mod
from dataprep.clean import CleanStage, clean_strings
from dataprep.kinds import get_kind
from dataprep.pii import luhn_ok, redact_text
from dataprep.recipe import resolve_recipe
from dataprep.stage import Batch
from dataprep.validate import record_schema

DEFAULT = resolve_recipe({}).clean
ALL_PII = {"email": True, "phone": True, "ip": True, "card": True}


def clean(texts, **overrides):
    opts = type(DEFAULT).model_validate({**DEFAULT.model_dump(), **overrides})
    changed, pii = Counter(), Counter()
    out = clean_strings(pa.array(texts, pa.string()), opts, changed, pii).to_pylist()
    return out, changed, pii


@pytest.mark.parametrize(("text", "expected"), [
    ("mail jane.doe+tag@example.co.uk now", "mail <EMAIL> now"),
    ("call +1 (415) 555-0132 or 020 7946 0958 or 415-555-0199.",
     "call <PHONE> or <PHONE> or <PHONE>."),
    ("from 203.0.113.45 and 2001:db8:85a3::8a2e:370:7334", "from <IP> and <IP>"),
    ("card 4111 1111 1111 1111 ok", "card <CARD> ok"),
    ("card 4242-4242-4242-4242", "card <CARD>"),
    # fails Luhn: not a card, too long for a phone: it must stay
    ("card 4111 1111 1111 1112 stays", "card 4111 1111 1111 1112 stays"),
    ("order #88412 on 2026-03-15 at 10:30:45 for 12.50 - 13.99", None),
    ("firmware 1.2.3 and pi 3.14159, ticket 123456789012345", None),
])
def test_pii(text, expected):
    counts = Counter()
    assert redact_text(text, ALL_PII, counts) == (expected or text)


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112")


def test_pii_types_can_be_switched_off():
    out, _, pii = clean(["a@b.io 415-555-0199"], pii={**ALL_PII, "email": False})
    assert out == ["a@b.io <PHONE>"] and pii == Counter(phone=1)


def test_unicode_repair_nfc_control_and_whitespace():
    texts = ["Iâ€™m at the cafÃ©", "Rene\u0301e", "ring\u0007ing\x00 bell\u200b",
             "  lots   of\t\tspace  \n\n\n\nnext line  ", "plain ascii stays"]
    out, changed, _ = clean(texts)
    assert out == ["I’m at the café", "Renée", "ringing bell", "lots of space\n\nnext line",
                   "plain ascii stays"]
    assert changed["mojibake"] == 1 and changed["nfc"] == 1 and changed["control_chars"] == 1


def test_curly_quotes_and_full_width_are_left_alone():
    out, _, _ = clean(["“Quoted” and ｆｕｌｌ"])
    assert out == ["“Quoted” and ｆｕｌｌ"]


def test_ftfy_runs_only_on_suspect_rows(monkeypatch):
    calls = []
    real = clean_mod.ftfy.fix_text
    monkeypatch.setattr(clean_mod.ftfy, "fix_text", lambda t, c: calls.append(t) or real(t, c))
    clean(["clean ascii"] * 1000 + ["naïve but fine", "donâ€™t"])
    assert calls == ["donâ€™t"]


def test_lowercase_and_strip_special_are_opt_in():
    text = ["Hello WORLD ★ email a@b.io #tag"]
    assert clean(text)[0] == ["Hello WORLD ★ email <EMAIL> #tag"]
    assert clean(text, lowercase=True, strip_special=True)[0] == ["hello world email <EMAIL> tag"]


def test_strip_html_is_opt_in():
    text = ["<p>Fish &amp; chips</p><br/>"]
    assert clean(text)[0] == text
    assert clean(text, strip_html=True)[0] == ["Fish & chips"]


def test_chat_messages_cleaned_in_place_and_empty_rows_flagged():
    table = pa.table({
        "id": ["a", "b"], "source": ["f:1", "f:2"], "group": [None, None],
        "meta": [None, None],
        "messages": [[{"role": "user", "content": "mail x@y.org"},
                      {"role": "assistant", "content": "ok  "}],
                     [{"role": "user", "content": "\u200b"},
                      {"role": "assistant", "content": "fine"}]],
    }, schema=record_schema("chat"))
    verdict = CleanStage(DEFAULT)(Batch(table, get_kind("chat")))
    assert verdict.table.column("messages").to_pylist()[0] == [
        {"role": "user", "content": "mail <EMAIL>"}, {"role": "assistant", "content": "ok"}]
    assert verdict.counters["pii"] == Counter(email=1)
    assert verdict.reasons.to_pylist() == [None, "empty_after_clean:messages.content"]


def test_empty_after_clean_names_the_field():
    table = pa.table({"id": ["a", "b"], "source": ["f:1", "f:2"], "group": [None, None],
        "meta": [None, None],
                      "prompt": ["\x07", "ok"], "response": ["fine", "\x00"]},
                     schema=record_schema("instruction"))
    verdict = CleanStage(DEFAULT)(Batch(table, get_kind("instruction")))
    assert verdict.reasons.to_pylist() == [
        "empty_after_clean:prompt", "empty_after_clean:response"]


#: Characters no cleaned text keeps: C0/C1 controls, bidi marks, embeddings, overrides, isolates.
UNSAFE = ("\x00\x07\x1b\x7f\x9b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
          "\u200e\u200f\u061c")


def _no_unsafe(value: str) -> bool:
    return not any(c in value for c in UNSAFE + "\u2028\u2029\x85")


@pytest.mark.parametrize("control_chars", [True, False])
def test_labels_lose_every_control_whatever_the_recipe_says(control_chars):
    table = pa.table({"id": ["a", "b", "c"], "source": ["f:1", "f:2", "f:3"],
                      "group": [None, None, None], "meta": [None, None, None],
                      "text": ["fine text", "more text", "third text"],
                      "label": ["pos\u0000\u001b[31m", "very\n\tpositive\u202e", "\x00\x1b[0m "]},
                     schema=record_schema("classification"))
    opts = type(DEFAULT).model_validate({**DEFAULT.model_dump(), "control_chars": control_chars})
    verdict = CleanStage(opts)(Batch(table, get_kind("classification")))
    assert verdict.table.column("label").to_pylist() == ["pos", "very positive", ""]
    assert verdict.reasons.to_pylist() == [None, None, "empty_after_clean:label"]
    assert verdict.counters["cleaned"]["label"] == 3


def test_bidi_separators_and_escape_sequences_leave_every_text():
    out, changed, _ = clean([f"a b{c}" for c in UNSAFE] + ["one\u2028two\u2029three\x85four",
                                                          "x\x1b]0;title\x07y\x1b[2Jz\x1b[0m"])
    assert out[:len(UNSAFE)] == ["a b"] * len(UNSAFE)
    assert out[-2:] == ["one\ntwo\nthree\nfour", "xyz"]
    assert changed["control_chars"] == len(UNSAFE) + 2


def test_control_chars_off_leaves_text_alone_but_not_labels():
    out, _, _ = clean(["a\u202eb"], control_chars=False)
    assert out == ["a\u202eb"]


@pytest.mark.parametrize("kind", ["classification", "instruction", "chat"])
def test_every_text_column_of_every_kind_is_cleaned(kind):
    dirty = "hi \u202ethere\u2028you \x1b[31mred\x9b1m"
    columns = {"classification": {"text": [dirty], "label": [f"pos{UNSAFE}"]},
               "instruction": {"prompt": [dirty], "response": [dirty]},
               "chat": {"messages": [[{"role": "user", "content": dirty},
                                      {"role": "assistant", "content": dirty}]]}}[kind]
    table = pa.table({"id": [f"id{UNSAFE}"], "source": ["f:1"], "group": [f"g\u202e{UNSAFE}"],
                      "meta": ['{"x": "a\u2066b\x9b"}'], **columns},
                     schema=record_schema(kind))
    verdict = CleanStage(DEFAULT)(Batch(table, get_kind(kind)))
    row = verdict.table.to_pylist()[0]
    strings = [v for v in row.values() if isinstance(v, str)]
    strings += [m[k] for m in row.get("messages") or [] for k in ("role", "content")]
    assert strings and all(_no_unsafe(s) for s in strings), row
    texts = [row[c] for c in ("text", "prompt", "response") if c in row]
    texts += [m["content"] for m in row.get("messages") or []]
    assert set(texts) == {"hi there\nyou red"}
    assert row["id"] == "id" and row["group"] == "g" and row["meta"] == '{"x": "ab"}'
