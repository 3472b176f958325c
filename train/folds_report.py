"""`report.html` of a k-fold run: the folds' metrics, their mean ± standard deviation, the
out-of-fold scores and the label-issue table, in the run report's style (one self-contained
page: inline CSS and SVG, no scripts), from what `folds.json` and `label_issues.jsonl` hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.plots import bars

from .run_report import REPORT_HTML, page_template

#: Rows of the label-issue table on the page (the file lists them all).
ISSUES_SHOWN = 200
#: Metrics the tables show, in this order, where the folds have them.
SHOWN = ("loss", "accuracy", "macro_f1")


def render_folds_report(summary: dict[str, Any], issues: list[dict[str, Any]]) -> str:
    metrics = {split: [m for m in SHOWN if m in summary["mean_std"][split]]
               for split in ("validation", "test")}
    chart = bars("fold_accuracy", "Accuracy per fold (validation = the held-out fold)",
                 {split: {f"fold {f['fold']}": round(100 * f[split].get("accuracy", 0.0))
                          for f in summary["per_fold"]} for split in ("validation", "test")})
    return page_template("folds_report.html.j2").render(
        s=summary, metrics=metrics, issues=issues[:ISSUES_SHOWN], n_issues=len(issues),
        chart=chart)


def write_folds_report(directory: Path, summary: dict[str, Any], issues: list[dict[str, Any]]
                       ) -> Path:
    path = directory / REPORT_HTML
    path.write_text(render_folds_report(summary, issues), encoding="utf-8")
    return path
