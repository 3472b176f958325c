"""The data-quality report: where every input row went, checked, and shown three ways.

`report.json` is validated against `schemas/report.schema.json` before it is written; the terminal
view is a compact `rich` table; `report.html` is one self-contained page (inline CSS, no scripts
or network) that opens offline.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import DataprepError
from .schemas import validator

SPLITS = ("train", "validation", "test")
EXAMPLES_PER_REASON = 3


@dataclass
class RunCounts:
    """Counters the pipeline fills while it streams; the report is built from them alone."""

    input: int = 0
    rejected: Counter = field(default_factory=Counter)
    filtered: Counter = field(default_factory=Counter)
    duplicates: Counter = field(default_factory=Counter)
    augmented: Counter = field(default_factory=Counter)
    output: Counter = field(default_factory=Counter)
    labels: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    cleaned: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    examples_rejected: dict[str, list] = field(default_factory=dict)
    examples_removed: dict[str, list] = field(default_factory=dict)

    def add_example(self, bucket: dict[str, list], reason: str, example: dict[str, Any]) -> None:
        items = bucket.setdefault(reason, [])
        if len(items) < EXAMPLES_PER_REASON:
            items.append(example)

    def counts(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "filtered_by_reason": dict(sorted(self.filtered.items())),
            "duplicates": {"exact": self.duplicates["exact"], "near": self.duplicates["near"]},
            "augmented": dict(sorted(self.augmented.items())),
            "output": {s: self.output[s] for s in SPLITS},
        }


def accounting_holds(counts: dict[str, Any]) -> bool:
    """input == rejected + filtered + duplicates + (output - augmented)."""
    accounted = (
        counts["rejected"]
        + sum(counts["filtered_by_reason"].values())
        + counts["duplicates"]["exact"]
        + counts["duplicates"]["near"]
        + sum(counts["output"].values())
        - sum(counts["augmented"].values())
    )
    return counts["input"] == accounted


def build_report(name: str, version: str, kind: str, run: RunCounts) -> dict[str, Any]:
    """Assemble and validate the report; a run whose rows do not add up fails here."""
    counts = run.counts()
    report = {
        "name": name,
        "version": version,
        "kind": kind,
        "counts": counts,
        "accounting_ok": accounting_holds(counts),
        "splits": {
            s: {"rows": run.output[s], "labels": dict(sorted(run.labels[s].items()))}
            for s in SPLITS
        },
        "cleaning": {
            "rows_changed": dict(sorted(run.cleaned.items())),
            "pii": dict(sorted(run.pii.items())),
        },
        "examples": {"rejected": run.examples_rejected, "removed": run.examples_removed},
    }
    errors = list(validator("report").iter_errors(report))
    if errors:
        raise RuntimeError(f"report does not match its schema: {errors[0].message}")
    if not report["accounting_ok"]:
        raise DataprepError(
            f"accounting identity broken: input {counts['input']} != rejected + filtered + "
            f"duplicates + (output - augmented) in {json.dumps(counts)}"
        )
    return report


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """The compact terminal view."""
    console = console or Console()
    c = report["counts"]
    table = Table(
        title=f"{report['name']}@{report['version']} ({report['kind']})",
        show_header=True,
        header_style="bold",
    )
    table.add_column("where rows went")
    table.add_column("rows", justify="right")
    table.add_row("input", str(c["input"]))
    table.add_row("rejected (rejected.jsonl)", str(c["rejected"]))
    for reason, n in c["rejected_by_reason"].items():
        table.add_row(f"  {reason}", str(n), style="dim")
    table.add_row("filtered (removed.jsonl)", str(sum(c["filtered_by_reason"].values())))
    for reason, n in c["filtered_by_reason"].items():
        table.add_row(f"  {reason}", str(n), style="dim")
    table.add_row(
        "duplicates exact / near", f"{c['duplicates']['exact']} / {c['duplicates']['near']}"
    )
    table.add_row("augmented", str(sum(c["augmented"].values())))
    for split in SPLITS:
        table.add_row(f"output {split}", str(c["output"][split]))
    ok = "[green]holds[/green]" if report["accounting_ok"] else "[red]BROKEN[/red]"
    table.add_row("accounting identity", ok)
    pii = report["cleaning"]["pii"]
    if pii:
        table.add_row("PII redacted", ", ".join(f"{k} {v}" for k, v in pii.items()))
    console.print(table)


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.25rem .6rem;text-align:left;
border-bottom:1px solid #eee;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{background:#4a7bd0;height:.8rem;display:inline-block;vertical-align:middle}
.ok{color:#18794e;font-weight:600}.bad{color:#c62828;font-weight:600}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f6f6;padding:.4rem;margin:0;
max-height:8rem;overflow:auto;font-size:12px}
"""


def _bars(items: dict[str, int], caption: str) -> str:
    if not items:
        return "<p>None.</p>"
    top = max(items.values()) or 1
    rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td class=n>{v}</td>"
        f"<td><span class=bar style='width:{int(300 * v / top)}px'></span></td></tr>"
        for k, v in sorted(items.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return f"<table><tr><th>{html.escape(caption)}</th><th>rows</th><th></th></tr>{rows}</table>"


def _examples(examples: dict[str, list]) -> str:
    if not examples:
        return "<p>None.</p>"
    parts = []
    for reason, items in sorted(examples.items()):
        rows = "".join(
            f"<tr><td>{html.escape(str(e.get('source', '')))}:{e.get('line', '')}</td>"
            f"<td><pre>{html.escape(str(e.get('detail') or e.get('raw') or e.get('text') or ''))}"
            f"</pre></td></tr>"
            for e in items
        )
        parts.append(f"<h3>{html.escape(reason)}</h3><table>{rows}</table>")
    return "".join(parts)


def _where(example: dict[str, Any]) -> str:
    """`file:line` for a reject (source + line), or the row's own `source` for a removal."""
    line = example.get("line")
    return f"{example.get('source', '')}:{line}" if line is not None else str(example["source"])


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: no external CSS, scripts, fonts or images."""
    c = report["counts"]
    ok = report["accounting_ok"]
    flow = {
        "rejected": c["rejected"],
        "filtered": sum(c["filtered_by_reason"].values()),
        "duplicates": c["duplicates"]["exact"] + c["duplicates"]["near"],
        **{f"output {s}": c["output"][s] for s in SPLITS},
    }
    labels = "".join(
        f"<h3>{s}</h3>{_bars(report['splits'][s]['labels'], 'label')}"
        for s in SPLITS
        if report["splits"][s]["labels"]
    )
    title = html.escape(f"{report['name']}@{report['version']}")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>Data report {title}</title>
<style>{_CSS}</style></head><body>
<h1>Data report: {title} <small>({html.escape(report["kind"])})</small></h1>
<p>{c["input"]} input rows. Accounting identity (input = rejected + filtered + duplicates +
output &minus; augmented):
<span class={"ok" if ok else "bad"}>{"holds" if ok else "BROKEN"}</span>.</p>
<h2>Where the rows went</h2>{_bars(flow, "destination")}
<h2>Rejected rows by reason</h2>{_bars(c["rejected_by_reason"], "reason")}
<h2>Removed rows by reason</h2>{_bars(c["filtered_by_reason"], "reason")}
<h2>Label distribution per split</h2>{labels or "<p>No labels in this kind.</p>"}
<h2>Cleaning</h2>{_bars(report["cleaning"]["rows_changed"], "step (rows changed)")}
{_bars(report["cleaning"]["pii"], "PII placeholder")}
<h2>Examples of rejected rows</h2>{_examples(report["examples"]["rejected"])}
<h2>Examples of removed rows</h2>{_examples(report["examples"]["removed"])}
</body></html>
"""
