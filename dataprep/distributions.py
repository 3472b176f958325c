"""What the report says of the rows' distributions, beyond their counts: each field's lengths,
token lengths against the training max_length, the quality filter's measured quantities against
their thresholds, and whether the splits drift apart more than a random split allows.

Drift is tested, not eyeballed, because a person comparing three histograms cannot tell a skew
from noise: a chi-square test of homogeneity on the splits' label counts, and on their lengths
binned at the pooled quantiles (a binned test, so that one test covers the three splits and
ties, which lengths are full of, are no problem). Where a table expects fewer than five rows in
a cell, the asymptotic p-value is unreliable and a Monte Carlo one is used. Only input
rows are tested: augmented rows join train by design, not by chance. A split is skewed where
p < DRIFT_ALPHA; with a handful of tests a run, a random split warns about once in twenty runs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from . import filters
from .settings import Filters, Report
from .store import SPLITS

#: The p-value under which the splits are said to drift apart.
DRIFT_ALPHA = 0.01
#: Quantile bins of a length's drift test at most (fewer for small splits or few values).
DRIFT_BINS = 10
#: Shuffled tables of the Monte Carlo test used where a cell expects fewer than five rows, and
#: the most rows it shuffles (above that one sparse cell barely moves the asymptotic p-value).
RESAMPLES, MONTE_CARLO_MAX_ROWS = 2000, 20_000
#: What each tested quantity is, as a warning says it.
DRIFT_WHAT = {"label": "labels", "chars": "whole-text lengths", "text": "text lengths",
              "prompt": "prompt lengths", "response": "response lengths",
              "turns": "turns per conversation"}
#: What each per-field measure is, as the page says it.
FIELD_MEASURES = {"text": "text (characters)", "prompt": "prompt (characters)",
                  "response": "response (characters)", "turns": "turns per conversation"}
#: The token measure whose rows over max_length are counted.
TOKEN_TOTAL = ("total", "text")


def stats(values: np.ndarray) -> dict[str, float | None]:
    """Quartiles, extremes and mean (all None for no rows)."""
    if values.size == 0:
        return dict.fromkeys(("min", "q1", "median", "q3", "max", "mean"))
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {"min": float(q[0]), "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]),
            "max": float(q[4]), "mean": round(float(values.mean()), 2)}


def shared_histograms(values: dict[str, dict[str, np.ndarray]], measures, bins: int = 24
                      ) -> dict[str, Any]:
    """Per measure, a histogram per split over bin edges the splits share (0 to the pooled 99th
    percentile; longer rows fall in the last bin)."""
    out: dict[str, Any] = {}
    for measure in measures:
        every = np.concatenate([values[s].get(measure, np.zeros(0)) for s in SPLITS])
        if every.size == 0:
            continue
        hi = float(np.percentile(every, 99)) or 1.0
        edges = np.linspace(0, hi, bins + 1)
        out[measure] = {
            "edges": [round(float(e), 1) for e in edges],
            "counts": {s: np.histogram(np.clip(values[s].get(measure, np.zeros(0)), 0, hi),
                                       edges)[0].tolist() for s in SPLITS}}
    return out


def joined(parts: dict[str, dict[str, list]]) -> dict[str, dict[str, np.ndarray]]:
    """Per split and measure, the arrays gathered batch by batch as one array."""
    return {s: {m: np.concatenate(a) for m, a in parts.get(s, {}).items()} for s in SPLITS}


def _measures(values: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """The measures any split has, in FIELD_MEASURES order."""
    order = list(FIELD_MEASURES)
    return sorted({m for s in SPLITS for m in values[s]},
                  key=lambda m: (order.index(m) if m in order else len(order), m))


def field_report(values: dict[str, dict[str, np.ndarray]], roles: dict[str, Counter]
                 ) -> dict[str, Any]:
    """Each field's lengths per split (quartiles, histograms) and messages per role."""
    measures = _measures(values)
    return {"measures": {m: FIELD_MEASURES.get(m, m) for m in measures},
            "stats": {s: {m: stats(values[s].get(m, np.zeros(0))) for m in measures}
                      for s in SPLITS},
            "histograms": shared_histograms(values, measures),
            "roles": {s: dict(sorted(roles.get(s, Counter()).items())) for s in SPLITS}}


def token_report(values: dict[str, dict[str, np.ndarray]], opts: Report | None
                 ) -> dict[str, Any] | None:
    """Token lengths per split and the rows over max_length (None: no tokenizer named)."""
    if opts is None or opts.tokenizer is None:
        return None
    measures = sorted({m for s in SPLITS for m in values[s]})
    total = next((m for m in TOKEN_TOTAL if m in measures), None)
    over = {}
    for s in SPLITS:
        lengths = values[s].get(total, np.zeros(0)) if total else np.zeros(0)
        rows = int((lengths > opts.max_length).sum())
        over[s] = {"rows": rows, "share": round(rows / lengths.size, 4) if lengths.size else 0.0}
    return {"tokenizer": opts.tokenizer, "max_length": opts.max_length, "measure": total,
            "stats": {s: {m: stats(values[s].get(m, np.zeros(0))) for m in measures}
                      for s in SPLITS},
            "histograms": shared_histograms(values, measures), "over_max_length": over}


def filter_report(counts: Counter, opts: Filters) -> dict[str, Any]:
    """Per quantity the filter measures: its histogram over the rows its check looked at (bins
    summed over batches), and the recipe's bounds, trimmed to the bins with rows or a bound."""
    out = {}
    bounds = filters.thresholds(opts)
    for name, edges in filters.MEASURE_EDGES.items():
        hist = np.zeros(len(edges) - 1, np.int64)
        for key, n in counts.items():
            measure, _, b = key.rpartition(":")
            if measure == name:
                hist[int(b)] += n
        marks = [v for v in bounds[name].values() if v is not None]
        needed = [int(np.flatnonzero(hist).max()) if hist.any() else 0]
        needed += [min(int(np.searchsorted(edges, v, side="right")) - 1, len(hist) - 1)
                   for v in marks]
        top = max(needed) + 1
        out[name] = {"what": filters.MEASURES[name], "rows": int(hist.sum()),
                     "applies_to": (f"rows of {opts.repetition_min_words} words or more"
                                    if name in filters.REPETITION_MEASURES
                                    else "every row the filter saw"),
                     "min": bounds[name]["min"], "max": bounds[name]["max"],
                     "edges": [float(e) for e in edges[:top + 1]],
                     "counts": hist[:top].tolist()}
    return out


def _statistic(tables: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Pearson's chi-square of each table (the last two axes) against `expected`."""
    return ((tables - expected) ** 2 / expected).sum(axis=(-2, -1))


def _monte_carlo_p(table: np.ndarray, expected: np.ndarray) -> float:
    """The share of RESAMPLES tables with the same margins (the rows' categories shuffled
    among the splits) at least as far from independence as `table`, seeded. Hand-written with
    numpy: scipy.stats has it (`MonteCarloMethod`), but importing scipy.stats costs every run
    about two seconds, more than a child version's whole report may take."""
    splits, cats = table.shape
    split = np.repeat(np.arange(splits), table.sum(axis=1))
    cat = np.repeat(np.tile(np.arange(cats), splits), table.ravel())
    rng, observed, hits, chunk = np.random.default_rng(0), _statistic(table, expected), 0, 100
    for _ in range(RESAMPLES // chunk):
        shuffled = rng.permuted(np.tile(cat, (chunk, 1)), axis=1)
        keys = split * cats + shuffled + (np.arange(chunk) * splits * cats)[:, None]
        tables = np.bincount(keys.ravel(), minlength=chunk * splits * cats)
        hits += int((_statistic(tables.reshape(chunk, splits, cats), expected)
                     >= observed * (1 - 1e-9)).sum())
    return (hits + 1) / (RESAMPLES + 1)


def _chi_square(table: np.ndarray) -> dict[str, Any] | None:
    """Chi-square test of homogeneity of a splits x categories table (empty rows and columns
    dropped). Where a cell expects fewer than five rows and the table is small enough to
    shuffle (MONTE_CARLO_MAX_ROWS), the p-value is `_monte_carlo_p`'s; otherwise the chi-square
    distribution's (`scipy.special.chdtrc`). None where there is nothing to compare (one split
    or one value)."""
    from scipy.special import chdtrc

    table = table[table.sum(axis=1) > 0]
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return None
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic, dof = float(_statistic(table, expected)), (table.shape[0] - 1) * (table.shape[1] - 1)
    small = expected.min() < 5 and table.sum() <= MONTE_CARLO_MAX_ROWS
    p = _monte_carlo_p(table, expected) if small else float(chdtrc(dof, statistic))
    return {"test": "chi-square (Monte Carlo)" if small else "chi-square",
            "statistic": round(statistic, 4), "dof": dof, "p_value": p}


def _binned(values: list[np.ndarray]) -> np.ndarray:
    """The splits' values counted in bins at the pooled quantiles (splits x bins): DRIFT_BINS,
    or fewer where the smallest split would expect under five rows a bin (more bins than its
    rows can fill only dilute a shift over more degrees of freedom)."""
    pooled = np.concatenate(values)
    bins = int(np.clip(min(v.size for v in values if v.size) // 5, 2, DRIFT_BINS))
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.array([np.bincount(np.searchsorted(edges, v, side="right"),
                                 minlength=edges.size + 1) for v in values])


def drift_report(labels: dict[str, Counter], rare: list[str],
                 lengths: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """The drift tests: labels (rare labels, all in train by design, left out) and each length
    (`lengths`: split -> measure -> input rows' values), with a warning per skewed quantity."""
    tests = []
    names = sorted({k for s in SPLITS for k in labels[s]} - set(rare))
    if names:
        table = np.array([[labels[s].get(k, 0) for k in names] for s in SPLITS])
        tests.append(("label", "labels", _chi_square(table)))
    for measure in sorted({m for s in SPLITS for m in lengths[s]}):
        per_split = [lengths[s].get(measure, np.zeros(0)) for s in SPLITS]
        if sum(v.size for v in per_split):
            tests.append((measure, DRIFT_WHAT.get(measure, measure),
                          _chi_square(_binned(per_split))))
    out = {"alpha": DRIFT_ALPHA, "tests": [], "warnings": []}
    for quantity, what, result in tests:
        if result is None:
            continue
        drifted = result["p_value"] < DRIFT_ALPHA
        out["tests"].append({"quantity": quantity, **result, "drifted": drifted})
        if drifted:
            out["warnings"].append(
                f"the splits' {what} differ more than a random split allows ({result['test']}, "
                f"p = {result['p_value']:.2g}): one split is skewed")
    return out
