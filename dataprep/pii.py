"""PII redaction: emails, phone numbers, IP addresses and Luhn-valid card numbers.

Arrow's regex engine (RE2) finds the rows that might hold PII in one vectorised pass; only those
rows go through Python's `re`, because deciding card vs phone vs harmless number needs a callback
(the Luhn checksum, digit counts, date shapes) that RE2 substitution cannot run.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PLACEHOLDERS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip": "<IP>", "card": "<CARD>"}

_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
_IPV4 = r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    rf"(?:(?:{_H}:){{7}}{_H}"  # full form
    rf"|(?:{_H}:){{1,7}}:(?:{_H}(?::{_H}){{0,6}})?"  # compressed, '::' after a group
    rf"|::(?:{_H}(?::{_H}){{0,6}}))"
)  # leading '::'
# A run of digits with the separators people type in phone and card numbers.
_NUMBER = r"\+?\(?\d[\d \t().-]{5,}\d"

# Pre-filter in RE2 syntax: anything that could be an email, an IP or a long number.
CANDIDATE_RE2 = r"@|\d[\d \t().-]{5,}\d|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:"

_EMAIL_RE = re.compile(rf"(?<![\w.+-]){_EMAIL}")
_IPV6_RE = re.compile(rf"(?<![\w:]){_IPV6}(?![\w:])")
_IPV4_RE = re.compile(rf"(?<![\w.]){_IPV4}(?![\w.]|\.\d)")
_NUMBER_RE = re.compile(rf"(?<![\w+]){_NUMBER}(?!\w)")
_DATE_RE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_PHONE_SHAPE = re.compile(
    r"\+?\d{0,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,5}){1,4}|\+?\d{10,12}"
)


def _classify_number(match: str) -> str | None:
    """'card', 'phone' or None (an order number, a date, a price range) for one digit run."""
    digits = re.sub(r"\D", "", match)
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card"
    if _DATE_RE.fullmatch(match) or not 7 <= len(digits) <= 15:
        return None
    if len(digits) > 12 and not match.startswith("+"):
        return None  # too long for a phone number without a country code: an id, not PII
    return "phone" if _PHONE_SHAPE.fullmatch(match) else None


def redact_text(text: str, enabled: dict[str, bool], counts: Counter) -> str:
    """Replace PII in one string; `counts` gains one per placeholder inserted."""

    def sub(pattern: re.Pattern, kind: str, value: str) -> str:
        def repl(m: re.Match) -> str:
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        return pattern.sub(repl, value)

    if enabled.get("email"):
        text = sub(_EMAIL_RE, "email", text)
    if enabled.get("ip"):
        text = sub(_IPV6_RE, "ip", text)
        text = sub(_IPV4_RE, "ip", text)
    if enabled.get("card") or enabled.get("phone"):

        def number(m: re.Match) -> str:
            kind = _classify_number(m.group(0))
            if kind and enabled.get(kind):
                counts[kind] += 1
                return PLACEHOLDERS[kind]
            return m.group(0)

        text = _NUMBER_RE.sub(number, text)
    return text


def redact_array(values: pa.Array, enabled: dict[str, bool]) -> tuple[pa.Array, Counter]:
    """Redact a string array; rows without a PII candidate are not touched by Python."""
    counts: Counter = Counter()
    if not any(enabled.values()) or len(values) == 0:
        return values, counts
    mask = pc.fill_null(pc.match_substring_regex(values, CANDIDATE_RE2), False)
    hits = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if hits.size == 0:
        return values, counts
    fixed = [redact_text(s, enabled, counts) for s in pc.take(values, pa.array(hits)).to_pylist()]
    return pc.replace_with_mask(values, mask, pa.array(fixed, pa.string())), counts
