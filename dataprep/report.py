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

import numpy as np
from rich.console import Console
from rich.table import Table

from . import plots
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
    languages: Counter = field(default_factory=Counter)
    output_langs: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})

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


def _stats(values: np.ndarray) -> dict[str, float | None]:
    if values.size == 0:
        return dict.fromkeys(("min", "q1", "median", "q3", "max", "mean"))
    q = np.percentile(values, [0, 25, 50, 75, 100])
    return {"min": float(q[0]), "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]),
            "max": float(q[4]), "mean": round(float(values.mean()), 2)}


def length_report(lengths: dict[str, dict[str, np.ndarray]], bins: int = 24) -> dict[str, Any]:
    """Quartiles per split and histograms over bin edges shared by the splits."""
    out: dict[str, Any] = {"stats": {s: {k: _stats(v) for k, v in lengths[s].items()}
                                     for s in SPLITS}, "histograms": {}}
    for measure in ("chars", "words"):
        every = np.concatenate([lengths[s][measure] for s in SPLITS])
        if every.size == 0:
            continue
        hi = float(np.percentile(every, 99)) or 1.0
        edges = np.linspace(0, hi, bins + 1)
        out["histograms"][measure] = {
            "edges": [round(float(e), 1) for e in edges],
            "counts": {s: np.histogram(np.clip(lengths[s][measure], 0, hi), edges)[0].tolist()
                       for s in SPLITS}}
    return out


def build_report(name: str, version: str, kind: str, run: RunCounts, plan=None,
                 lengths: dict[str, dict[str, np.ndarray]] | None = None,
                 augmentation: list[dict[str, Any]] | None = None) -> dict[str, Any]:
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
        "languages": {"detected": dict(run.languages.most_common()),
                      "output": {s: dict(run.output_langs[s].most_common()) for s in SPLITS}},
        "lengths": length_report(lengths or {s: {"chars": np.zeros(0), "words": np.zeros(0)}
                                             for s in SPLITS}),
        "dedup": _dedup_report(plan),
        "leakage": plan.leakage if plan else {"threshold": 0, "pairs_checked": 0,
                                              "cross_split_pairs": 0, "ok": True,
                                              "missed_by_lsh_and_merged": 0, "examples": []},
        "rare_labels": plan.rare_labels if plan else [],
        "augmentation": augmentation or [],
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


def _dedup_report(plan) -> dict[str, Any]:
    near = plan.near if plan else None
    exact = plan.exact_cluster_sizes if plan else {}
    return {
        "exact_cluster_sizes": {str(k): v for k, v in exact.items()},
        "near_cluster_sizes": {str(k): v for k, v in (near.cluster_sizes if near else {}).items()},
        "candidate_pairs": near.candidate_pairs if near else 0,
        "verified_pairs": near.verified_pairs if near else 0,
    }


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
    table.add_row("augmented (train only)", str(sum(c["augmented"].values())))
    for entry in report["augmentation"]:
        rejected = sum(entry["rejected_by_reason"].values())
        table.add_row(f"  {entry['augmenter']}",
                      f"{entry['accepted']} of {entry['candidates']} ({rejected} rejected)",
                      style="dim")
    for split in SPLITS:
        table.add_row(f"output {split}", str(c["output"][split]))
    ok = "[green]holds[/green]" if report["accounting_ok"] else "[red]BROKEN[/red]"
    table.add_row("accounting identity", ok)
    leak = report["leakage"]
    table.add_row("near-dup pairs across splits",
                  f"[green]0[/green] of {leak['pairs_checked']} checked" if leak["ok"]
                  else f"[red]{leak['cross_split_pairs']}[/red]")
    langs = report["languages"]["detected"]
    if langs:
        table.add_row("languages", ", ".join(f"{k} {v}" for k, v in list(langs.items())[:6]))
    if report["rare_labels"]:
        table.add_row("labels too rare to split (train only)", ", ".join(report["rare_labels"]))
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
figure{margin:1rem 0}figcaption{font-weight:600;margin-bottom:.3rem}.empty{color:#777}
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


def _stats_table(stats: dict[str, Any]) -> str:
    head = "<tr><th>split</th><th>measure</th>" + "".join(
        f"<th>{k}</th>" for k in ("min", "q1", "median", "q3", "max", "mean")) + "</tr>"
    rows = "".join(
        f"<tr><td>{split}</td><td>{measure}</td>" + "".join(
            f"<td class=n>{'' if v is None else v}</td>" for v in values.values()) + "</tr>"
        for split, per in stats.items() for measure, values in per.items())
    return f"<table>{head}{rows}</table>"


def _augmentation(entries: list[dict[str, Any]]) -> str:
    """Per augmenter: accepted and rejected counts, the similarity histogram, examples."""
    if not entries:
        return "<p>No augmentation in this recipe.</p>"
    head = ("<tr><th>augmenter</th><th>parents</th><th>candidates</th><th>accepted</th>"
            "<th>rejected</th><th>candidates/s</th></tr>")
    rows = "".join(
        f"<tr><td>{html.escape(e['augmenter'])} ({e['origin']})</td><td class=n>{e['parents']}"
        f"</td><td class=n>{e['candidates']}</td><td class=n>{e['accepted']}</td><td class=n>"
        f"{sum(e['rejected_by_reason'].values())}</td><td class=n>"
        f"{e['candidates_per_second'] or ''}</td></tr>" for e in entries)
    parts = [f"<table>{head}{rows}</table>",
             plots.bars("augment-rejected", "Rejected candidates by reason",
                        {e["augmenter"]: e["rejected_by_reason"] for e in entries}),
             plots.histogram("augment-similarity", "Parent-child similarity (all scored "
                             "candidates)", entries[0]["similarity_histogram"]["edges"],
                             {e["augmenter"]: e["similarity_histogram"]["counts"]
                              for e in entries}, series="augmenter")]
    for e in entries:
        pairs = "".join(
            f"<tr><td><pre>{html.escape(x['parent'])}</pre></td><td><pre>"
            f"{html.escape(x['child'])}</pre></td><td class=n>{x['similarity']}</td></tr>"
            for x in e["examples"]) or "<tr><td colspan=3>No candidate was accepted.</td></tr>"
        parts.append(f"<h3>{html.escape(e['augmenter'])}: parent &rarr; child</h3><table>"
                     f"<tr><th>parent</th><th>child</th><th>similarity</th></tr>{pairs}</table>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: no external CSS, scripts, fonts or images; charts are inline SVG."""
    c = report["counts"]
    ok = report["accounting_ok"]
    flow = {"rejected": c["rejected"], "filtered": sum(c["filtered_by_reason"].values()),
            "duplicates": c["duplicates"]["exact"] + c["duplicates"]["near"],
            **{f"output {s}": c["output"][s] for s in SPLITS}}
    splits = report["splits"]
    lengths = report["lengths"]
    hists = "".join(
        plots.histogram(f"length-{m}", f"Length in {m} per split", h["edges"], h["counts"])
        for m, h in lengths["histograms"].items()) or "<p>No output rows.</p>"
    dedup = report["dedup"]
    leak = report["leakage"]
    leak_line = (f"<span class=ok>none</span> ({leak['pairs_checked']} candidate pairs checked at "
                 f"Jaccard &ge; {leak['threshold']})" if leak["ok"] else
                 f"<span class=bad>{leak['cross_split_pairs']} pairs</span>: "
                 + html.escape(str(leak["examples"])))
    rare = ", ".join(report["rare_labels"]) or "none"
    title = html.escape(f"{report['name']}@{report['version']}")
    return f"""<!doctype html>
<html lang=en><head><meta charset=utf-8><title>Data report {title}</title>
<style>{_CSS}</style></head><body>
<h1>Data report: {title} <small>({html.escape(report["kind"])})</small></h1>
<p>{c["input"]} input rows. Accounting identity (input = rejected + filtered + duplicates +
output &minus; augmented):
<span class={"ok" if ok else "bad"}>{"holds" if ok else "BROKEN"}</span>.
Near duplicates across splits: {leak_line}.</p>
<h2>Where the rows went</h2>{plots.bars("flow", "Rows by destination", {"rows": flow})}
<h2>Rejected and removed rows by reason</h2>
{plots.bars("rejected", "Rejected rows by reason", {"rows": c["rejected_by_reason"]})}
{plots.bars("removed", "Removed rows by reason", {"rows": {
        **c["filtered_by_reason"], **{f"duplicate:{k}": v for k, v in c["duplicates"].items()}}})}
<h2>Labels per split</h2>
{plots.bars("labels", "Label distribution per split", {s: splits[s]["labels"] for s in SPLITS})}
<p>Labels too rare to stratify (all rows in train): {html.escape(rare)}.</p>
<h2>Languages</h2>
{plots.bars("languages", "Detected languages (before the language filter)",
            {"rows": report["languages"]["detected"]})}
<h2>Lengths</h2>{hists}{_stats_table(lengths["stats"])}
<h2>Duplicate clusters</h2>
{plots.bars("clusters", "Duplicate cluster sizes (rows per cluster: clusters)",
            {"exact": dedup["exact_cluster_sizes"], "near": dedup["near_cluster_sizes"]})}
<p>{dedup["candidate_pairs"]} LSH candidate pairs, {dedup["verified_pairs"]} verified at the
threshold.</p>
<h2>Cleaning</h2>{_bars(report["cleaning"]["rows_changed"], "step (rows changed)")}
{_bars(report["cleaning"]["pii"], "PII placeholder")}
<h2>Augmentation (train split only)</h2>{_augmentation(report["augmentation"])}
<h2>Examples of rejected rows</h2>{_examples(report["examples"]["rejected"])}
<h2>Examples of removed rows</h2>{_examples(report["examples"]["removed"])}
</body></html>
"""
