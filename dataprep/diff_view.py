"""The comparison of `dataprep diff`, shown: compact `rich` tables on the terminal, one line for
`--quiet`, and one self-contained HTML page (inline CSS and SVG, no scripts or network) in the
style of the version report. Labels, languages, reasons and specs come from the data: they are
cells of text (`common.terminal.plain`) and escaped on the page, never markup."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from rich.console import Console
from rich.table import Table

from common.terminal import plain

from . import plots
from .report import page_template
from .store import SPLITS

#: PSI rules of thumb (Siddiqi, "Credit Risk Scorecards"): below 0.1 no real shift, 0.1 to 0.25
#: a moderate one, above 0.25 a large one. Shown beside the figure, never used to fail.
PSI_LEVELS = ((0.25, "large"), (0.1, "moderate"), (0.0, "small"))
#: Labels or languages printed per split on the terminal (the page and --json have them all).
TOP_CATEGORIES = 12


def psi_level(psi: float | None) -> str:
    if psi is None:
        return "n/a"
    return next(name for bound, name in PSI_LEVELS if psi >= bound or bound == 0.0)


def shift_text(entry: dict[str, Any]) -> str:
    """`PSI 0.31 (large), chi-square p 0.0001`: both figures, labelled."""
    if entry["psi"] is None:
        return "no rows on one side"
    return (f"PSI {entry['psi']:.3f} ({psi_level(entry['psi'])}), "
            f"chi-square p {entry['chi2_p']:.3g}")


def summary_line(diff: dict[str, Any]) -> str:
    """The comparison in one line: what `--quiet` prints."""
    parts = [f"{s} +{r['added']} -{r['removed']} moved {r['moved_out']} out / {r['moved_in']} in"
             for s, r in diff["rows"].items()]
    aug = diff["augmented"]
    return (f"{diff['a']['spec']} -> {diff['b']['spec']}: " + "; ".join(parts)
            + f"; moved {diff['moved']['total']}; augmented "
            f"+{sum(v['added'] for v in aug.values())} -{sum(v['removed'] for v in aug.values())}")


def print_diff(diff: dict[str, Any], console: Console | None = None) -> None:
    """Rows, moves, labels, languages, lengths and the reports' counts, one table each."""
    console = console or Console()
    a, b = diff["a"], diff["b"]
    console.print(plain(f"A = {a['spec']} ({a['kind']}), B = {b['spec']} ({b['kind']}); "
                        f"rows matched by {diff['key']}"), highlight=False)
    console.print(_rows_table(diff))
    if diff["moved"]["total"]:
        console.print(_moves_table(diff["moved"]))
    for name, title in (("labels", "Labels"), ("languages", "Languages")):
        if diff[name] is not None:
            console.print(_distribution_table(diff[name], title))
    console.print(_lengths_table(diff["lengths"]))
    console.print(_counts_table(diff["counts"]))


def _rows_table(diff: dict[str, Any]) -> Table:
    table = Table(title="Rows per split (input rows; augmented apart)", header_style="bold")
    for col in ("split", "A", "B", "added", "removed", "kept", "moved out", "moved in"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, r in diff["rows"].items():
        table.add_row(split, *(str(r[k]) for k in ("a", "b", "added", "removed", "kept",
                                                   "moved_out", "moved_in")))
    for split, r in diff["augmented"].items():
        if r["a"] or r["b"]:
            table.add_row(f"{split} augmented", str(r["a"]), str(r["b"]), str(r["added"]),
                          str(r["removed"]), "", "", "", style="dim")
    total = diff["moved"]["total"]
    table.add_row("moved", "", "", "", "", "", "[green]0[/green]" if not total else str(total),
                  "")
    return table


def _moves_table(moved: dict[str, Any]) -> Table:
    """The split -> split matrix of moved rows (rows: the split in A; columns: in B)."""
    table = Table(title="Moved rows (A split -> B split)", header_style="bold")
    table.add_column("from \\ to")
    for split in SPLITS:
        table.add_column(split, justify="right")
    for src, to in moved["from_to"].items():
        table.add_row(src, *("" if dst == src else str(to[dst]) for dst in SPLITS))
    return table


def _distribution_table(per_split: dict[str, Any], title: str) -> Table:
    table = Table(title=f"{title} per split (A / B rows)", header_style="bold")
    table.add_column(title.lower().rstrip("s"))
    for split in SPLITS:
        table.add_column(split, justify="right")
    categories = sorted({c for e in per_split.values() for side in ("a", "b") for c in e[side]},
                        key=lambda c: (-sum(e["a"].get(c, 0) + e["b"].get(c, 0)
                                            for e in per_split.values()), c))
    for cat in categories[:TOP_CATEGORIES]:
        table.add_row(plain(cat), *(f"{e['a'].get(cat, 0)} / {e['b'].get(cat, 0)}"
                                    for e in per_split.values()))
    if len(categories) > TOP_CATEGORIES:
        table.add_row(f"(+{len(categories) - TOP_CATEGORIES} more)", "", "", "", style="dim")
    table.add_row("shift", *(shift_text(e) for e in per_split.values()), style="bold")
    return table


def _lengths_table(lengths: dict[str, Any]) -> Table:
    table = Table(title="Lengths of the row text (A / B)", header_style="bold")
    for col in ("split", "measure", "median", "q1 - q3", "mean", "max"):
        table.add_column(col, justify="left" if col in ("split", "measure") else "right")

    def pair(x: dict[str, Any], y: dict[str, Any], key: str) -> str:
        return f"{_num(x[key])} / {_num(y[key])}"

    for measure, entry in lengths.items():
        for split, sides in entry["splits"].items():
            x, y = sides["a"]["stats"], sides["b"]["stats"]
            table.add_row(split, measure, pair(x, y, "median"),
                          f"{_num(x['q1'])}-{_num(x['q3'])} / {_num(y['q1'])}-{_num(y['q3'])}",
                          pair(x, y, "mean"), pair(x, y, "max"))
    return table


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _counts_table(counts: dict[str, Any]) -> Table:
    table = Table(title="The versions' reports side by side", header_style="bold")
    for col in ("count", "A", "B", "B - A"):
        table.add_column(col, justify="left" if col == "count" else "right")
    for name, v in counts["headline"].items():
        table.add_row(name.replace("_", " "), str(v["a"]), str(v["b"]), f"{v['b'] - v['a']:+d}")
    for field, label in (("rejected_by_reason", "rejected"), ("filtered_by_reason", "filtered")):
        for reason, v in counts[field].items():
            table.add_row(plain(f"  {label}: {reason}"), str(v["a"]), str(v["b"]),
                          f"{v['b'] - v['a']:+d}", style="dim")
    return table


def _charts(diff: dict[str, Any]) -> dict[str, Any]:
    """The page's figures, drawn by `plots` (which escapes what it draws), marked safe."""
    rows = diff["rows"]
    charts: dict[str, Any] = {
        "rows": plots.bars("rows", "Input rows added, removed and moved, per split",
                           {k.replace("_", " "): {s: rows[s][k] for s in SPLITS}
                            for k in ("added", "removed", "moved_out", "moved_in")}),
        "lengths": [plots.histogram(f"length-{m}-{s}", f"{s}: length in {m}", e["edges"],
                                    {"A": sides["a"]["counts"], "B": sides["b"]["counts"]},
                                    series="version")
                    for m, e in diff["lengths"].items() for s, sides in e["splits"].items()],
    }
    for name in ("labels", "languages"):
        charts[name] = [plots.bars(f"{name}-{s}", f"{s}: {name}", {"A": e["a"], "B": e["b"]})
                        for s, e in (diff[name] or {}).items()]
    return {k: [Markup(f) for f in v] if isinstance(v, list) else Markup(v)
            for k, v in charts.items()}


def render_html(diff: dict[str, Any]) -> str:
    """One self-contained page: no external CSS, scripts, fonts or images."""
    return page_template("diff.html.j2").render(diff=diff, charts=_charts(diff))
