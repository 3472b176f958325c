"""Clean text columns: unicode repair, control characters, whitespace, PII, optional case folding.

Every step is an Arrow compute kernel over a whole column, except mojibake repair, which only
`ftfy` does well and which is slow: it runs on the few rows that are not ASCII and that ftfy's own
badness check flags, so clean text never pays for it.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable

import ftfy
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from ftfy.badness import is_bad

from . import settings
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
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{80}-\x{9f}\x{200b}\x{feff}]"
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
        steps.append(("control_chars", lambda v: pc.replace_substring_regex(v, _CONTROL, "")))
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
        return Verdict(reasons=batch.kind.empty_after_clean(table), table=table,
                       counters={"cleaned": changed, "pii": pii})
