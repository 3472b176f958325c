"""Inline SVG charts for report.html.

Hand-written because the page must be one small self-contained file that opens offline: a
plotting library would add a heavy dependency (matplotlib) or a JavaScript bundle for what is
a handful of bar charts. Each chart is a <figure data-plot=NAME> so tests can find it.
"""

from __future__ import annotations

import html

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
              series: str = "split") -> str:
    """Vertical histogram with one outlined series per split (or augmenter) over shared bin
    edges, each series as shares of its own rows."""
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
    parts.append(_legend(list(counts), height + 38, x=pad))
    parts.append("</svg>")
    return _figure(name, title + f" (share of each {series}'s rows)", "".join(parts))


def _legend(labels: list[str], y: float, x: float = _LABEL_W) -> str:
    out = []
    if len(labels) == 1:
        return ""
    for i, label in enumerate(labels):
        out.append(f"<rect x={x} y={y - 9} width=10 height=10 fill='{_color(label, i)}'/>"
                   f"<text x={x + 14} y={y}>{html.escape(label)}</text>")
        x += 30 + 7 * len(label)
    return "".join(out)
