"""Quality filters, Gopher/datatrove style: each check has a recipe bound and a named drop reason.

All measures are vectorised over the batch: word and line lists come from Arrow split kernels,
repeated lines and n-grams are counted with integer ids from `dictionary_encode` and numpy.
Repetition checks only look at texts of `repetition_min_words` words or more, because in a short
support message ("thanks, thanks!") repetition says nothing about quality.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import settings
from .stage import Batch, Stage, Verdict


def _per_row_sum(values: np.ndarray, parents: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(parents, weights=values, minlength=n)


def _pair_keys(parents: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, int]:
    """(row, id) pairs as one int64 each, so 1-D np.unique can count them fast."""
    width = int(ids.max(initial=0)) + 1
    return parents.astype(np.int64) * width + ids, width


def _max_repeat(ids: np.ndarray, parents: np.ndarray, n: int) -> np.ndarray:
    """Per row, how often its most frequent id occurs."""
    out = np.zeros(n, dtype=np.int64)
    if ids.size == 0:
        return out
    keys, width = _pair_keys(parents, ids)
    uniq, counts = np.unique(keys, return_counts=True)
    np.maximum.at(out, uniq // width, counts)
    return out


def measure(texts: pa.Array) -> dict[str, np.ndarray]:
    """Per-row measures: chars, words, share of words with a letter, duplicate-line fraction,
    and the share of words covered by the most repeated word bigram."""
    n = len(texts)
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
    words = pc.utf8_split_whitespace(texts)
    n_words = pc.list_value_length(words).to_numpy(zero_copy_only=False)
    flat = words.flatten()
    parents = pc.list_parent_indices(words).to_numpy()
    has_letter = pc.match_substring_regex(flat, r"\p{L}").to_numpy(zero_copy_only=False)
    alpha = _per_row_sum(has_letter.astype(np.float64), parents, n) / np.maximum(n_words, 1)

    word_ids = pc.dictionary_encode(pc.utf8_lower(flat)).indices.to_numpy().astype(np.int64)
    same_row = parents[1:] == parents[:-1] if parents.size else np.array([], dtype=bool)
    bigrams = word_ids[:-1] * (int(word_ids.max(initial=0)) + 1) + word_ids[1:]
    top_bigram = _max_repeat(bigrams[same_row], parents[:-1][same_row], n)
    ngram_frac = np.where(n_words > 0, 2 * top_bigram / np.maximum(n_words, 1), 0.0)
    ngram_frac = np.where(top_bigram > 1, ngram_frac, 0.0)

    lines = pc.split_pattern(texts, "\n")
    flat_lines = pc.utf8_trim_whitespace(lines.flatten())
    line_parents = pc.list_parent_indices(lines).to_numpy()
    nonempty = pc.greater(pc.utf8_length(flat_lines), 0).to_numpy(zero_copy_only=False)
    line_ids = pc.dictionary_encode(flat_lines).indices.to_numpy().astype(np.int64)[nonempty]
    line_parents = line_parents[nonempty]
    n_lines = np.bincount(line_parents, minlength=n)
    distinct = np.zeros(n, dtype=np.int64)
    if line_ids.size:
        keys, width = _pair_keys(line_parents, line_ids)
        distinct = np.bincount(np.unique(keys) // width, minlength=n)
    dup_lines = np.where(n_lines > 1, 1 - distinct / np.maximum(n_lines, 1), 0.0)
    return {"chars": chars, "words": n_words, "alpha": alpha, "dup_lines": dup_lines,
            "top_bigram": ngram_frac}


def filter_reasons(texts: pa.Array, opts: settings.Filters
                   ) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """A reason per row that fails a bound (null where the row passes), and the measures."""
    m = measure(texts)
    long_enough = m["words"] >= opts.repetition_min_words
    checks = [  # first failing check names the reason
        ("too_short:chars", m["chars"] < opts.min_chars),
        ("too_short:words", m["words"] < opts.min_words),
        ("too_long:chars", m["chars"] > opts.max_chars),
        ("too_long:words", m["words"] > opts.max_words),
        ("non_alpha", m["alpha"] < opts.min_alpha_word_fraction),
        ("repetition:lines", long_enough & (m["dup_lines"] > opts.max_duplicate_line_fraction)),
        ("repetition:ngrams", long_enough & (m["top_bigram"] > opts.max_top_bigram_fraction)),
    ]
    reasons = np.full(len(texts), None, dtype=object)
    for reason, failed in reversed(checks):
        reasons[failed] = reason
    return pa.array(reasons, pa.string()), m


#: What each quantity of `measure` is, as the report names it.
MEASURES = {"chars": "characters", "words": "words",
            "alpha": "share of words with a letter",
            "dup_lines": "share of duplicate lines",
            "top_bigram": "share of words in the most repeated bigram"}
#: Quantities whose checks look only at rows of `repetition_min_words` words or more.
REPETITION_MEASURES = ("dup_lines", "top_bigram")


def thresholds(opts: settings.Filters) -> dict[str, dict[str, float | None]]:
    """The recipe's bounds on each quantity: a row below `min` or above `max` is removed."""
    return {"chars": {"min": opts.min_chars, "max": opts.max_chars},
            "words": {"min": opts.min_words, "max": opts.max_words},
            "alpha": {"min": opts.min_alpha_word_fraction, "max": None},
            "dup_lines": {"min": None, "max": opts.max_duplicate_line_fraction},
            "top_bigram": {"min": None, "max": opts.max_top_bigram_fraction}}


def _log_edges(decades: int) -> np.ndarray:
    """0, then ten bins a decade from 1 to 10**decades (whole numbers, repeats dropped): lengths
    span orders of magnitude, and a linear axis up to max_chars would put every row in one bin."""
    return np.concatenate([[0.0], np.unique(np.round(np.logspace(0, decades, 10 * decades + 1)))])


#: Fixed bin edges of each quantity's histogram, the same for every batch, so the histograms the
#: worker processes return add up (no per-row value leaves a batch); the last bin also holds
#: every larger value.
MEASURE_EDGES = {"chars": _log_edges(6), "words": _log_edges(5),
                 **{name: np.linspace(0, 1, 21) for name in ("alpha", *REPETITION_MEASURES)}}


def measure_histograms(m: dict[str, np.ndarray], opts: settings.Filters) -> Counter:
    """`quantity:bin` -> rows, over the rows each check looks at: every row the filter sees, and
    for the repetition checks the rows of `repetition_min_words` words or more."""
    out: Counter = Counter()
    long_enough = m["words"] >= opts.repetition_min_words
    for name, edges in MEASURE_EDGES.items():
        values = m[name][long_enough] if name in REPETITION_MEASURES else m[name]
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        found, counts = np.unique(bins, return_counts=True)
        out.update({f"{name}:{b}": c for b, c in zip(found.tolist(), counts.tolist(), strict=True)})
    return out


class QualityFilter(Stage):
    """Drop rows outside the recipe's length and repetition bounds, naming the first bound each
    fails (`too_short:chars`, `repetition:ngrams`, ...). Its counters are the histograms of the
    quantities it measured (`measure_histograms`), which the report draws with the bounds."""

    name = "filter"

    def __init__(self, opts: settings.Filters) -> None:
        self.opts = opts

    def __call__(self, batch: Batch) -> Verdict:
        reasons, measures = filter_reasons(batch.texts, self.opts)
        return Verdict(reasons=reasons,
                       counters={"filter_measures": measure_histograms(measures, self.opts)})
