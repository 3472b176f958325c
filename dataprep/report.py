"""The data-quality report: where every input row went, checked, and shown three ways.

`report.json` is validated against `schemas/report.schema.json` before it is written; the terminal
view is a compact `rich` table; `report.html` is one self-contained page (inline CSS, no scripts
or network) that opens offline. What it says of the rows' distributions (lengths per field,
tokens, the filter's quantities, drift between splits) is computed in `distributions.py`; the
removed-row examples carry the row's text (and a duplicate the text of the row it copies),
attached by the stages and the second pass to the few records shown.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup
from rich.console import Console
from rich.table import Table

from common.terminal import plain

from . import plots
from .distributions import (
    drift_report,
    field_report,
    filter_report,
    joined,
    shared_histograms,
    stats,
    token_report,
)
from .errors import DataprepError
from .samples import add_capped
from .schemas import validator
from .settings import Filters, Recipe
from .stage import EXAMPLE_ROWS
from .store import SPLITS

#: Examples kept per reject or removal reason (every row is in rejected.jsonl / removed.jsonl);
#: the stages attach texts to as many removals a reason.
EXAMPLES_PER_REASON = EXAMPLE_ROWS


def _per_split(make) -> dict:
    return {s: make() for s in SPLITS}


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
    exclude_matched: Counter = field(default_factory=Counter)  # exclude entry index -> rows
    excluded: Counter = field(default_factory=Counter)         # excluded:<tag> -> rows
    #: A child version's rows per split taken from its parent (None: not a child); they are
    #: in `output` too, and the accounting identity is that of the new rows.
    inherited: Counter | None = None
    #: A child made with `--recipe-change`: what re-filtering the parent's rows removed
    recipe_change: dict[str, Any] | None = None
    filter_measures: Counter = field(default_factory=Counter)  # quantity:bin -> rows
    # per split: measure -> int32 arrays of the rows written (field lengths, tokens), and which
    # rows are input rows (not augmented); the roles of their messages; augmented rows' labels
    field_lengths: dict[str, dict[str, list]] = field(default_factory=lambda: _per_split(dict))
    token_lengths: dict[str, dict[str, list]] = field(default_factory=lambda: _per_split(dict))
    original_rows: dict[str, list] = field(default_factory=lambda: _per_split(list))
    roles: dict[str, Counter] = field(default_factory=lambda: _per_split(Counter))
    augmented_labels: dict[str, Counter] = field(default_factory=lambda: _per_split(Counter))

    def add_example(self, bucket: dict[str, list], reason: str, example: dict[str, Any]) -> None:
        """Keep `example` under `reason` while fewer than EXAMPLES_PER_REASON are kept."""
        add_capped(bucket, reason, example, EXAMPLES_PER_REASON)

    def counts(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "filtered_by_reason": dict(sorted(self.filtered.items())),
            "duplicates": {"exact": self.duplicates["exact"], "near": self.duplicates["near"]},
            "augmented": dict(sorted(self.augmented.items())),
            "output": {s: self.output[s] for s in SPLITS},
            **({} if self.inherited is None else {
                "inherited": {s: self.inherited[s] for s in SPLITS},
                "new": {s: self.output[s] - self.inherited[s] for s in SPLITS}}),
        }


def accounting_holds(counts: dict[str, Any]) -> bool:
    """input == rejected + filtered + duplicates + (output - augmented - inherited); a fresh
    version inherits nothing."""
    accounted = (
        counts["rejected"]
        + sum(counts["filtered_by_reason"].values())
        + counts["duplicates"]["exact"]
        + counts["duplicates"]["near"]
        + sum(counts["output"].values())
        - sum(counts["augmented"].values())
        - sum(counts.get("inherited", {}).values())
    )
    return counts["input"] == accounted


def length_report(lengths: dict[str, dict[str, np.ndarray]], bins: int = 24) -> dict[str, Any]:
    """Quartiles per split and histograms over bin edges shared by the splits."""
    return {"stats": {s: {k: stats(v) for k, v in lengths[s].items()} for s in SPLITS},
            "histograms": shared_histograms(lengths, ("chars", "words"), bins)}


def build_report(name: str, version: str, kind: str, run: RunCounts, plan=None,
                 lengths: dict[str, dict[str, np.ndarray]] | None = None,
                 augmentation: list[dict[str, Any]] | None = None,
                 exclude: dict[str, Any] | None = None,
                 decontamination: dict[str, Any] | None = None, recipe: Recipe | None = None
                 ) -> dict[str, Any]:
    """Assemble and validate the report; a run whose rows do not add up fails here. `recipe`
    gives the filter thresholds and token settings the report shows (default: the defaults)."""
    counts = run.counts()
    lengths = lengths or {s: {"chars": np.zeros(0), "words": np.zeros(0)} for s in SPLITS}
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
        "lengths": length_report(lengths),
        "dedup": _dedup_report(plan),
        "leakage": plan.leakage if plan else {"threshold": 0, "pairs_checked": 0,
                                              "cross_split_pairs": 0, "ok": True,
                                              "missed_by_lsh_and_merged": 0, "examples": []},
        "rare_labels": plan.rare_labels if plan else [],
        "augmentation": augmentation or [],
        "exclude": exclude or {"files": [], "removed": 0, "unmatched": 0},
        "decontamination": decontamination or no_decontamination(),
    }
    if run.recipe_change is not None:
        report["recipe_change"] = run.recipe_change
    report.update(_distributions(run, plan, lengths, recipe))
    errors = list(validator("report").iter_errors(report))
    if errors:
        raise RuntimeError(f"report does not match its schema: {errors[0].message}")
    if not report["accounting_ok"]:
        raise DataprepError(
            f"accounting identity broken: input {counts['input']} != rejected + filtered + "
            f"duplicates + (output - augmented) in {json.dumps(counts)}"
        )
    return report


def no_decontamination() -> dict[str, Any]:
    """The `decontamination` section of a run whose recipe names no evaluation source."""
    return {"ngram": None, "sources": [], "removed": 0, "overlaps": {"validation": 0, "test": 0},
            "examples": []}


def _distributions(run: RunCounts, plan, lengths: dict[str, dict[str, np.ndarray]],
                   recipe: Recipe | None) -> dict[str, Any]:
    """The sections a person reads the rows by: each field's lengths, token lengths, the
    filter's quantities with its bounds, and drift between the splits (input rows only)."""
    fields = joined(run.field_lengths)

    def inputs(split: str, values: np.ndarray) -> np.ndarray:
        mask = run.original_rows[split]
        mask = np.concatenate(mask) if mask else np.zeros(0, bool)
        return values[mask] if mask.size == values.size else values

    tested = {s: {"chars": inputs(s, lengths[s]["chars"]),
                  **{m: inputs(s, v) for m, v in fields[s].items() if m != "text"}}
              for s in SPLITS}  # a labelled row's text is its whole text: tested once
    labels = {s: run.labels[s] - run.augmented_labels[s] for s in SPLITS}
    return {
        "field_lengths": field_report(fields, run.roles),
        "token_lengths": token_report(joined(run.token_lengths),
                                      recipe.report if recipe else None),
        "filter_measures": filter_report(run.filter_measures,
                                         recipe.filters if recipe else Filters()),
        "drift": drift_report(labels, plan.rare_labels if plan else [], tested),
    }


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
    """The compact terminal view. Reasons, labels and names can come from the data (a custom
    stage's reason, a label): they are cells of text (`plain`), never markup."""
    console = console or Console()
    c = report["counts"]
    table = Table(
        title=plain(f"{report['name']}@{report['version']} ({report['kind']})"),
        show_header=True,
        header_style="bold",
    )
    table.add_column("where rows went")
    table.add_column("rows", justify="right")
    table.add_row("input", str(c["input"]))
    table.add_row("rejected (rejected.jsonl)", str(c["rejected"]))
    for reason, n in c["rejected_by_reason"].items():
        table.add_row(plain(f"  {reason}"), str(n), style="dim")
    table.add_row("filtered (removed.jsonl)", str(sum(c["filtered_by_reason"].values())))
    for reason, n in c["filtered_by_reason"].items():
        table.add_row(plain(f"  {reason}"), str(n), style="dim")
    table.add_row(
        "duplicates exact / near", f"{c['duplicates']['exact']} / {c['duplicates']['near']}"
    )
    table.add_row("augmented (train only)", str(sum(c["augmented"].values())))
    for entry in report["augmentation"]:
        rejected = sum(entry["rejected_by_reason"].values())
        table.add_row(plain(f"  {entry['augmenter']}"),
                      f"{entry['accepted']} of {entry['candidates']} ({rejected} rejected)",
                      style="dim")
    for split in SPLITS:
        table.add_row(f"output {split}", str(c["output"][split]))
        if "inherited" in c:
            table.add_row(f"  inherited / new {split}",
                          f"{c['inherited'][split]} / {c['new'][split]}", style="dim")
    change = report.get("recipe_change")
    if change:
        removed = sum(change["removed_by_reason"].values())
        table.add_row("recipe change: parent rows re-filtered",
                      f"{change['parent_rows_checked']} checked, {removed} removed "
                      f"(changed: {', '.join(change['changed'])})")
    ok = "[green]holds[/green]" if report["accounting_ok"] else "[red]BROKEN[/red]"
    table.add_row("accounting identity", ok)
    leak = report["leakage"]
    table.add_row("near-dup pairs across splits",
                  f"[green]0[/green] of {leak['pairs_checked']} checked" if leak["ok"]
                  else f"[red]{leak['cross_split_pairs']}[/red]")
    _decontamination_rows(table, report.get("decontamination"))
    langs = report["languages"]["detected"]
    if langs:
        table.add_row("languages", plain(", ".join(f"{k} {v}" for k, v in list(langs.items())[:6])))
    if report["rare_labels"]:
        table.add_row("labels too rare to split (train only)",
                      plain(", ".join(report["rare_labels"])))
    pii = report["cleaning"]["pii"]
    if pii:
        table.add_row("PII redacted", plain(", ".join(f"{k} {v}" for k, v in pii.items())))
    _print_person_rows(table, report)
    console.print(table)
    for warning in report.get("drift", {}).get("warnings", []):
        console.print(plain(f"warning: {warning}"), style="red")


def _print_person_rows(table: Table, report: dict[str, Any]) -> None:
    """Rows over the token limit and the drift tests' verdict, in the terminal table."""
    tokens = report.get("token_lengths")  # absent from reports made before they existed
    if tokens:
        over = tokens["over_max_length"]
        table.add_row(plain(f"over {tokens['max_length']} tokens ({tokens['tokenizer']})"),
                      " / ".join(str(over[s]["rows"]) for s in SPLITS))
    drift = report.get("drift")
    if drift is None:
        return
    drifted = sum(t["drifted"] for t in drift["tests"])
    table.add_row(f"split drift (p < {drift['alpha']})",
                  f"[red]{drifted}[/red] of {len(drift['tests'])} tests" if drifted
                  else f"[green]none[/green] in {len(drift['tests'])} tests")


def _decontamination_rows(table: Table, section: dict[str, Any] | None) -> None:
    """Train rows removed and validation/test rows overlapping the evaluation sources (the
    overlaps are kept, so they are shown in red: the evaluation shares text with the data)."""
    if not section or not section["sources"]:
        return
    table.add_row(f"contaminated train rows removed ({section['ngram']}-grams)",
                  str(section["removed"]))
    overlaps = section["overlaps"]
    style = "red" if overlaps["validation"] or overlaps["test"] else "green"
    table.add_row("validation / test rows overlapping evaluation",
                  f"[{style}]{overlaps['validation']} / {overlaps['test']}[/{style}]")


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    """Every figure of the page, drawn by `plots` and marked safe for the template (the chart
    functions escape the labels they draw)."""
    c = report["counts"]
    flow = {"rejected": c["rejected"], "filtered": sum(c["filtered_by_reason"].values()),
            "duplicates": c["duplicates"]["exact"] + c["duplicates"]["near"],
            **{f"output {s}": c["output"][s] for s in SPLITS}}
    removed = {**c["filtered_by_reason"],
               **{f"duplicate:{k}": v for k, v in c["duplicates"].items()}}
    dedup = report["dedup"]
    cleaning = report["cleaning"]
    charts = {
        "flow": plots.bars("flow", "Rows by destination", {"rows": flow}),
        "rejected": plots.bars("rejected", "Rejected rows by reason",
                               {"rows": c["rejected_by_reason"]}),
        "removed": plots.bars("removed", "Removed rows by reason", {"rows": removed}),
        "labels": plots.bars("labels", "Label distribution per split",
                             {s: report["splits"][s]["labels"] for s in SPLITS}),
        "languages": plots.bars("languages", "Detected languages (before the language filter)",
                                {"rows": report["languages"]["detected"]}),
        "lengths": [plots.histogram(f"length-{m}", f"Length in {m} per split", h["edges"],
                                    h["counts"])
                    for m, h in report["lengths"]["histograms"].items()],
        "clusters": plots.bars("clusters", "Duplicate cluster sizes (rows per cluster: clusters)",
                               {"exact": dedup["exact_cluster_sizes"],
                                "near": dedup["near_cluster_sizes"]}),
        "cleaning": plots.bars("cleaning", "Rows changed by each cleaning step",
                               {"rows": cleaning["rows_changed"]}),
        "pii": plots.bars("pii", "PII placeholders inserted, by kind", {"found": cleaning["pii"]}),
    }
    charts.update(_distribution_charts(report))
    entries = report["augmentation"]
    if entries:
        charts["augment_rejected"] = plots.bars(
            "augment-rejected", "Rejected candidates by reason",
            {e["augmenter"]: e["rejected_by_reason"] for e in entries})
        charts["augment_similarity"] = plots.histogram(
            "augment-similarity", "Parent-child similarity (all scored candidates)",
            entries[0]["similarity_histogram"]["edges"],
            {e["augmenter"]: e["similarity_histogram"]["counts"] for e in entries},
            series="augmenter")
    return {k: [Markup(f) for f in v] if isinstance(v, list) else Markup(v)
            for k, v in charts.items()}


def _distribution_charts(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of each field's lengths, roles, token lengths (max_length drawn on) and the
    filter's quantities (its bounds drawn on)."""
    fields, tokens = report["field_lengths"], report["token_lengths"]
    charts: dict[str, Any] = {
        "fields": [plots.histogram(f"field-{m}", f"Length of the {fields['measures'][m]} per "
                                   "split", h["edges"], h["counts"])
                   for m, h in fields["histograms"].items()],
        "roles": plots.bars("roles", "Messages per role", fields["roles"])
        if any(fields["roles"].values()) else "",
        "filters": [plots.histogram(
            f"filter-{m}", f"{m}: {f['what']}, over {f['applies_to']}", f["edges"],
            {"rows": f["counts"]}, series="check",
            marks={k: f[k] for k in ("min", "max") if f[k] is not None})
            for m, f in report["filter_measures"].items()],
        "tokens": [],
    }
    if tokens:
        charts["tokens"] = [plots.histogram(
            f"tokens-{m}", f"Tokens of the {m} per split ({tokens['tokenizer']})", h["edges"],
            h["counts"], marks={"max_length": tokens["max_length"]} if m == tokens["measure"]
            else None) for m, h in tokens["histograms"].items()]
    return charts


@cache
def page_template(name: str) -> jinja2.Template:
    """`templates/<name>`, loaded from the installed package (it ships in the wheel), escaping
    everything it is given: the pages quote text from the data."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("dataprep", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    return env.get_template(name)


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: no external CSS, scripts, fonts or images; charts are inline SVG."""
    return page_template("report.html.j2").render(report=report, counts=report["counts"],
                                                  charts=_charts(report))
