"""Clean text columns: unicode repair, control characters, whitespace, PII, optional case folding.

Every step is an Arrow compute kernel over a whole column, except mojibake repair, which only
`ftfy` does well and which is slow: it runs on the few rows that are not ASCII and that ftfy's own
badness check flags, so clean text never pays for it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable
from functools import partial

import ftfy
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ftfy.badness import is_bad

from . import settings
from .kinds.base import empty_reasons, set_column, single_column
from .pii import redact_array
from .stage import Batch, Stage, Verdict

# ftfy's repairs minus the ones that change correct text (curly quotes and full-width forms are
# legitimate) or that other steps own (HTML, control characters).
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    uncurl_quotes=False,
    fix_character_width=False,
    remove_control_chars=False,
    explain=False,
)
# Bidi marks, embeddings, overrides and isolates (LRM/RLM, ALM, LRE..RLO, LRI..PDI): invisible,
# they reorder what a reader or a terminal shows ("Trojan Source"), and no training text needs them.
_BIDI = r"\x{200e}\x{200f}\x{61c}\x{202a}-\x{202e}\x{2066}-\x{2069}"
# C0 and C1 controls but tab, newline and CR (CR becomes a newline first), zero-width space, BOM.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}\x{200b}\x{feff}" + _BIDI + "]"
# Terminal escape sequences, removed whole (not only their ESC, which would leave "[31m"): CSI
# (ESC [ or U+009B, parameters, intermediates, a final byte), OSC (ESC ] ... BEL or ESC \\) and
# the two-character escapes.
_ANSI = (r"(?:\x1b\[|\x{9b})[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]{0,1000}(?:\x07|\x1b\\)"
         r"|\x1b[@-_]")
# Line breaks other than "\n": CR / CRLF, NEL, and the line and paragraph separators.
_LINE_BREAK = r"\r\n?|[\x{85}\x{2028}\x{2029}]"
# In a label, id or group every control goes, tab and newline too (a blank becomes a space).
_ANY_BLANK = r" *[\t\n\x0b\x0c\r\x{85}\x{2028}\x{2029}][ \t\n\x0b\x0c\r\x{85}\x{2028}\x{2029}]*"
_ANY_CONTROL = r"[\x00-\x1f\x7f\x{80}-\x{9f}\x{200b}\x{feff}" + _BIDI + "]"
# In `meta` (JSON text, whose encoder escapes C0 controls itself) the rest: C1, bidi, separators.
_META_CONTROL = r"[\x7f\x{80}-\x{9f}\x{200b}\x{feff}\x{2028}\x{2029}" + _BIDI + "]"
_HTML_TAG = r"</?[A-Za-z][^<>]{0,500}>"
_SPECIAL = r"(<(?:EMAIL|PHONE|IP|CARD)>)|[^\p{L}\p{N}\s.,!?'\"():;%&/+-]"


# UTF-8 read as Latin-1/cp1252 (what mojibake is) leaves a lead-byte character (Â..ô) followed by
# a continuation-byte character (U+0080..U+00BF or a cp1252 special such as € ™ “ ’). Only rows
# holding such a pair are shown to ftfy's own (slower) badness check.
_MOJIBAKE_HINT = ("[\\x{c2}-\\x{f4}][\\x{80}-\\x{bf}\\x{152}\\x{153}\\x{160}\\x{161}\\x{178}"
                  "\\x{17d}\\x{17e}\\x{192}\\x{2c6}\\x{2dc}\\x{2013}\\x{2014}\\x{2018}-\\x{201e}\\x{2020}-\\x{2022}"
                  "\\x{2026}\\x{2030}\\x{2039}\\x{203a}\\x{20ac}\\x{2122}]")


def _fix_mojibake(values: pa.Array) -> pa.Array:
    suspect = pc.fill_null(pc.match_substring_regex(values, _MOJIBAKE_HINT), False)
    rows = np.flatnonzero(suspect.to_numpy(zero_copy_only=False))
    if rows.size == 0:
        return values
    texts = pc.take(values, pa.array(rows)).to_pylist()
    bad = [i for i, t in zip(rows, texts, strict=True) if is_bad(t)]
    if not bad:
        return values
    mask = np.zeros(len(values), dtype=bool)
    mask[bad] = True
    fixed = [ftfy.fix_text(t, _FTFY) for t in pc.take(values, pa.array(bad)).to_pylist()]
    return pc.replace_with_mask(values, pa.array(mask), pa.array(fixed, pa.string()))


def _unescape_html(values: pa.Array) -> pa.Array:
    mask = pc.fill_null(
        pc.match_substring_regex(values, r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);"), False
    )
    if not pc.any(mask).as_py():
        return values
    fixed = [html.unescape(t) for t in pc.filter(values, mask).to_pylist()]
    return pc.replace_with_mask(values, mask, pa.array(fixed, pa.string()))


def _whitespace(values: pa.Array) -> pa.Array:
    values = pc.replace_substring_regex(values, r"\r\n?", "\n")
    # only runs of 2+ or other blanks: replacing every single space costs 5x more
    blank = r"\t\x{a0}\x{2000}-\x{200a}\x{3000}"
    values = pc.replace_substring_regex(values, f"[ {blank}]{{2,}}|[{blank}]", " ")
    values = pc.replace_substring_regex(values, r" ?\n ?", "\n")
    values = pc.replace_substring_regex(values, r"\n{3,}", "\n\n")
    return pc.utf8_trim_whitespace(values)


# Any character the two steps below may change, as one character class: a class is one fast
# scan, while the escape-sequence alternation (with its bounded OSC repetition) is many times
# slower, so only the rare rows that hold such a character are shown to the full patterns.
_SEPARATORS = r"\x{200b}\x{feff}\x{2028}\x{2029}"
_CONTROL_HINT = r"[\x00-\x08\x0b-\x1f\x7f\x{80}-\x{9f}" + _SEPARATORS + _BIDI + "]"
_IDENTIFIER_HINT = r"[\x00-\x1f\x7f\x{80}-\x{9f}" + _SEPARATORS + _BIDI + "]"


def _where_matching(values: pa.Array, hint: str, step: Callable[[pa.Array], pa.Array]
                    ) -> pa.Array:
    """`step` applied only to the rows in which `hint` matches (the others are left as they
    are, which `step` would do too, only slower)."""
    hit = pc.fill_null(pc.match_substring_regex(values, hint), False)
    if not pc.any(hit).as_py():
        return values
    return pc.replace_with_mask(values, hit, step(pc.filter(values, hit)))


def _strip_controls(values: pa.Array) -> pa.Array:
    """Line breaks made "\n", then every other control and bidi character removed."""
    def strip(rows: pa.Array) -> pa.Array:
        rows = pc.replace_substring_regex(rows, _LINE_BREAK, "\n")
        return pc.replace_substring_regex(rows, f"{_ANSI}|{_CONTROL}", "")

    return _where_matching(values, _CONTROL_HINT, strip)


def clean_identifier(values: pa.Array, trim: bool = False) -> pa.Array:
    """A label, id or group with no control or bidi character at all (blanks become a space):
    done whatever `clean.control_chars` says, as a label holding an escape sequence is never
    what a user meant and would be printed to terminals as one."""
    def strip(rows: pa.Array) -> pa.Array:
        rows = pc.replace_substring_regex(rows, _ANY_BLANK, " ")
        return pc.replace_substring_regex(rows, f"{_ANSI}|{_ANY_CONTROL}", "")

    values = _where_matching(values, _IDENTIFIER_HINT, strip)
    return pc.utf8_trim_whitespace(values) if trim else values


def _steps(opts: settings.Clean) -> list[tuple[str, Callable | None]]:
    """The enabled steps, in the order that keeps each one correct (PII before special-char
    stripping, which would otherwise break emails; lower-casing before PII, so placeholders stay
    upper-case)."""
    steps: list[tuple[str, Callable | None]] = []
    if opts.fix_unicode:
        steps += [("mojibake", _fix_mojibake), ("nfc", lambda v: pc.utf8_normalize(v, "NFC"))]
    if opts.strip_html:
        steps += [("html", lambda v: _unescape_html(pc.replace_substring_regex(v, _HTML_TAG, "")))]
    if opts.control_chars:
        steps.append(("control_chars", _strip_controls))
    if opts.lowercase:
        steps.append(("lowercase", pc.utf8_lower))
    steps.append(("pii", None))
    if opts.strip_special:
        steps.append(("strip_special", lambda v: pc.replace_substring_regex(v, _SPECIAL, r"\1")))
    if opts.whitespace:
        steps.append(("whitespace", _whitespace))
    return steps


def clean_strings(
    values: pa.Array, opts: settings.Clean, changed: Counter, pii: Counter
) -> pa.Array:
    """Run the enabled cleaning steps over one string array, counting rows each step changed."""
    for name, step in _steps(opts):
        before = values
        if name == "pii":
            values, found = redact_array(values, opts.pii.model_dump())
            pii.update(found)
        else:
            values = step(values)
        changed[name] += int(pc.sum(pc.fill_null(pc.not_equal(before, values), False)).as_py() or 0)
    return values


class CleanStage(Stage):
    """Clean every text of the kind (and normalise a label); drop rows left without a required
    text (`empty_after_clean:<field>`). Counts the rows each step changed and the PII found."""

    name = "clean"

    def __init__(self, opts: settings.Clean) -> None:
        self.opts = opts

    def __call__(self, batch: Batch) -> Verdict:
        changed: Counter = Counter()
        pii: Counter = Counter()
        table = batch.kind.clean(batch.table.combine_chunks(),
                                 lambda values: clean_strings(values, self.opts, changed, pii))
        table = _clean_identifiers(table, batch.kind.label_column, changed)
        reasons = batch.kind.empty_after_clean(table)
        if batch.kind.label_column:  # a label of nothing but controls is no label
            reasons = pc.coalesce(reasons, empty_reasons(table, [batch.kind.label_column]))
        return Verdict(reasons=reasons, table=table, counters={"cleaned": changed, "pii": pii})


def _clean_identifiers(table: pa.Table, label: str | None, changed: Counter) -> pa.Table:
    """The label, id, group and meta columns cleaned of controls (see `clean_identifier`),
    counted as `label` / `identifiers` only when a row changed (they rarely do)."""
    steps = [(label, "label", partial(clean_identifier, trim=True))] if label else []
    steps += [("id", "identifiers", clean_identifier), ("group", "identifiers", clean_identifier),
              ("meta", "identifiers", lambda v: pc.replace_substring_regex(v, _META_CONTROL, ""))]
    for column, counter, step in steps:
        if column not in table.column_names:
            continue
        before = single_column(table, column)
        after = step(before)
        n = int(pc.sum(pc.fill_null(pc.not_equal(before, after), False)).as_py() or 0)
        if n:
            changed[counter] += n
            table = set_column(table, column, after)
    return table
