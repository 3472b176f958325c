"""Inline SVG charts for the two report pages: a dataset version's report.html (bars,
histograms) and a training run's (lines, histograms).

Hand-written because each page must be one small self-contained file that opens offline: a
plotting library would add a heavy dependency (matplotlib) or a JavaScript bundle for what is
a handful of bar and line charts. Each chart is a <figure data-plot=NAME> so tests can find it.
"""

from __future__ import annotations

import bisect
import html
import math

PALETTE = {"train": "#4a7bd0", "validation": "#e0913a", "test": "#3aa17e", "exact": "#7a5cc2",
           "near": "#d05a5a"}
#: Colours for series without a fixed one (augmenters), in order.
CYCLE = ["#4a7bd0", "#e0913a", "#3aa17e", "#7a5cc2", "#d05a5a", "#8c8c3a"]
_W, _ROW, _LABEL_W = 640, 18, 220


def _color(label: str, i: int) -> str:
    return PALETTE.get(label, CYCLE[i % len(CYCLE)])


def _figure(name: str, title: str, svg: str) -> str:
    return (f"<figure data-plot='{html.escape(name)}'><figcaption>{html.escape(title)}"
            f"</figcaption>{svg}</figure>")


def bars(name: str, title: str, series: dict[str, dict[str, int]]) -> str:
    """Horizontal grouped bars: one row per category, one bar per series (e.g. per split)."""
    # Largest first, ties by name: the categories come from a set, whose order changes from
    # process to process, and the same version must draw the same page.
    categories = sorted({c for values in series.values() for c in values},
                        key=lambda c: (-sum(v.get(c, 0) for v in series.values()), str(c)))[:40]
    if not categories:
        return _figure(name, title, "<p class=empty>No data.</p>")
    top = max((v.get(c, 0) for v in series.values() for c in categories), default=1) or 1
    per_cat = _ROW * len(series) + 6
    height = per_cat * len(categories) + 24
    parts = [f"<svg role=img aria-label='{html.escape(title)}' width={_W + _LABEL_W + 60} "
             f"height={height} font-size=12>"]
    for i, cat in enumerate(categories):
        y0 = i * per_cat
        parts.append(f"<text x={_LABEL_W - 6} y={y0 + per_cat / 2 + 4} text-anchor=end>"
                     f"{html.escape(str(cat)[:34])}</text>")
        for j, (label, values) in enumerate(series.items()):
            v = values.get(cat, 0)
            w = _W * v / top
            y = y0 + j * _ROW
            color = _color(label, j)
            parts.append(f"<rect x={_LABEL_W} y={y} width={w:.1f} height={_ROW - 3} "
                         f"fill='{color}'><title>{html.escape(label)}: {v}</title></rect>"
                         f"<text x={_LABEL_W + w + 4:.1f} y={y + _ROW - 6}>{v}</text>")
    parts.append(_legend(list(series), height - 14))
    parts.append("</svg>")
    return _figure(name, title, "".join(parts))


def histogram(name: str, title: str, edges: list[float], counts: dict[str, list[int]],
              series: str = "split", marks: dict[str, float] | None = None) -> str:
    """Vertical histogram with one outlined series per split (or augmenter) over shared bin
    edges, each series as shares of its own rows; `marks` (label: value) are drawn as dashed
    vertical lines, e.g. a filter's thresholds."""
    if not edges or not any(sum(c) for c in counts.values()):
        return _figure(name, title, "<p class=empty>No data.</p>")
    width, height, pad = 640, 200, 40
    bins = len(edges) - 1
    bw = width / bins
    parts = [f"<svg role=img aria-label='{html.escape(title)}' width={width + 2 * pad} "
             f"height={height + 50} font-size=11>"]
    shares = {label: [v / (sum(vals) or 1) for v in vals] for label, vals in counts.items()}
    top = max(max(s) for s in shares.values()) or 1
    fmt = "{:.0f}" if edges[-1] > 10 else "{:.2g}"
    for k, (label, values) in enumerate(counts.items()):
        color = _color(label, k)
        for i, v in enumerate(values):
            h = height * shares[label][i] / top
            parts.append(f"<rect x={pad + i * bw:.1f} y={height - h + 5:.1f} width={bw - 1:.1f} "
                         f"height={h:.1f} fill='{color}' fill-opacity=0.35 stroke='{color}'>"
                         f"<title>{html.escape(label)} {fmt.format(edges[i])}-"
                         f"{fmt.format(edges[i + 1])}: {v}"
                         f"</title></rect>")
    for i in range(0, bins + 1, max(bins // 5, 1)):
        parts.append(f"<text x={pad + i * bw:.1f} y={height + 20} text-anchor=middle>"
                     f"{fmt.format(edges[i])}</text>")
    if marks:
        parts.append(_marks(marks, edges, pad, bw, height))
    parts.append(_legend(list(counts), height + 38, x=pad))
    parts.append("</svg>")
    return _figure(name, title + f" (share of each {series}'s rows)", "".join(parts))


def lines(name: str, title: str, series: dict[str, list[tuple[float, float]]],
          x_label: str = "step") -> str:
    """Line chart over a shared numeric x axis: one line per series (e.g. training and
    validation loss by step), a dot per point so that a one-point series still shows, and the
    value of each point in its tooltip. Points that are not finite numbers are left out."""
    series = {label: [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
              for label, points in series.items()}
    every = [p for points in series.values() for p in points]
    if not every:
        return _figure(name, title, "<p class=empty>No data.</p>")
    width, height, left, top_pad = 640, 200, 70, 8
    x0, x1 = min(x for x, _ in every), max(x for x, _ in every)
    y0, y1 = min(y for _, y in every), max(y for _, y in every)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - (abs(y0) * 0.05 or 1), y1 + (abs(y1) * 0.05 or 1)

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + width * (x - x0) / (x1 - x0),
                top_pad + height * (1 - (y - y0) / (y1 - y0)))

    parts = [f"<svg role=img aria-label='{html.escape(title)}' width={width + left + 30} "
             f"height={height + top_pad + 52} font-size=11>"]
    for k in range(3):  # min, middle and max of the values, with a faint grid line each
        value = y0 + (y1 - y0) * k / 2
        _, y = at(x0, value)
        parts.append(f"<line x1={left} y1={y:.1f} x2={left + width} y2={y:.1f} stroke='#ddd'/>"
                     f"<text x={left - 6} y={y + 4:.1f} text-anchor=end>{value:.4g}</text>")
    ticks = {round(x0 + (x1 - x0) * k / 4, 6) for k in range(5)}
    if all(float(x).is_integer() for x, _ in every):  # steps: no tick at step 2.5
        ticks = {round(t) for t in ticks}
    for value in sorted(ticks):
        x, _ = at(value, y0)
        parts.append(f"<text x={x:.1f} y={height + top_pad + 18} text-anchor=middle>"
                     f"{value:.6g}</text>")
    parts.append(f"<text x={left + width / 2} y={height + top_pad + 32} text-anchor=middle>"
                 f"{html.escape(x_label)}</text>")
    for i, (label, points) in enumerate(series.items()):
        color = _color(label, i)
        xy = [at(x, y) for x, y in sorted(points)]
        parts.append(f"<polyline fill=none stroke='{color}' stroke-width=2 points='"
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + "'/>")
        for (x, y), (sx, sy) in zip(xy, sorted(points), strict=True):
            parts.append(f"<circle cx={x:.1f} cy={y:.1f} r=2.5 fill='{color}'>"
                         f"<title>{html.escape(label)} {html.escape(x_label)} {sx:.6g}: "
                         f"{sy:.6g}</title></circle>")
    parts.append(_legend(list(series), height + top_pad + 48, x=left))
    parts.append("</svg>")
    return _figure(name, title, "".join(parts))


def _legend(labels: list[str], y: float, x: float = _LABEL_W) -> str:
    out = []
    if len(labels) == 1:
        return ""
    for i, label in enumerate(labels):
        out.append(f"<rect x={x} y={y - 9} width=10 height=10 fill='{_color(label, i)}'/>"
                   f"<text x={x + 14} y={y}>{html.escape(label)}</text>")
        x += 30 + 7 * len(label)
    return "".join(out)


def _mark_x(edges: list[float], value: float) -> tuple[float, bool]:
    """Where `value` falls on a histogram's axis, in bins (linear inside its bin, so uneven
    edges, such as logarithmic ones, place it right), and whether it lies beyond the axis (then
    it is drawn at the nearer end)."""
    if value <= edges[0] or value >= edges[-1]:
        return (0.0 if value <= edges[0] else len(edges) - 1.0), not edges[0] <= value <= edges[-1]
    i = min(bisect.bisect_right(edges, value) - 1, len(edges) - 2)
    lo, hi = edges[i], edges[i + 1]
    return i + ((value - lo) / (hi - lo) if hi > lo else 0.0), False


def _marks(marks: dict[str, float], edges: list[float], pad: float, bw: float, height: float
           ) -> str:
    out = []
    for k, (label, value) in enumerate(marks.items()):
        at, beyond = _mark_x(edges, value)
        x = pad + at * bw
        text = f"{label} {value:g}" + (" (beyond the axis)" if beyond else "")
        anchor = "end" if at > (len(edges) - 1) / 2 else "start"
        dx = -3 if anchor == "end" else 3
        out.append(f"<line class=mark x1={x:.1f} y1=5 x2={x:.1f} y2={height + 5} "
                   f"stroke='#c62828' stroke-width=1.5 stroke-dasharray='4 3'>"
                   f"<title>{html.escape(text)}</title></line>"
                   f"<text x={x + dx:.1f} y={16 + 13 * k} text-anchor={anchor} fill='#c62828'>"
                   f"{html.escape(text)}</text>")
    return "".join(out)
