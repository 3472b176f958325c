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
