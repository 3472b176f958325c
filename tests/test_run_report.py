"""`train report runs/<run>`: report.json and a self-contained report.html that training leaves
and the command rewrites; the page opened in headless Chromium (every plot drawn, nothing
fetched), the log history read back from a checkpoint for runs without history.json, and a run
whose dataset version is gone still reported."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataprep.store import open_version
from train.errors import TrainError
from train.run_dir import open_run
from train.run_report import build_report, curves, metrics_table, write_run_report

from .conftest import ROOT

#: Data that would run or fetch were it not escaped (Chromium would request the image).
HOSTILE = '<script>alert(1)</script><img src="http://127.0.0.1:9/x.png">'


def run_train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def copy_run(source: Path, tmp_path: Path) -> Path:
    """A copy to change: the session's fixture runs are shared by every test."""
    return Path(shutil.copytree(source, tmp_path / source.name))


def classifier_analysis(labels: list[str]) -> dict:
    """analysis.json as the error analysis writes it for a labelled split (made-up numbers:
    the page is under test, not the model)."""
    n = len(labels)
    matrix = [[(3 if i == j else 1) + i for j in range(n)] for i in range(n)]

    def split(name: str) -> dict:
        return {"dataset": "reviews@x", "split": name, "rows": sum(map(sum, matrix)),
                "metrics": {"accuracy": 0.5, "macro_f1": 0.4}, "overlap_with_training": 1,
                "labels": labels, "confusion_matrix": matrix,
                "per_label": {label: {"precision": 0.5, "recall": 0.25, "f1": 0.33,
                                      "support": sum(matrix[i])}
                              for i, label in enumerate(labels)},
                "confident_mistakes": [{"id": "r1", "source": "reviews.csv:7", "text": HOSTILE,
                                        "label": labels[0], "predicted": labels[-1],
                                        "confidence": 0.91}],
                "highest_loss": [{"id": "r2", "source": "reviews.csv:9", "text": "meh",
                                  "reference": labels[0], "loss": 2.5}]}

    return {"validation": split("validation"), "test": split("test")}


def sft_analysis() -> dict:
    def split(name: str) -> dict:
        return {"dataset": "support@x", "split": name, "rows": 4, "metrics": {"loss": 6.4},
                "overlap_with_training": 0, "labels": [],
                "highest_loss": [{"id": "s1", "source": "chats.jsonl:3", "text": "hi",
                                  "reference": "hello", "loss": 7.5}],
                "loss_distribution": {"count": 4, "mean": 6.4, "p50": 6.3, "p90": 7.2,
                                      "p99": 7.5, "max": 7.5,
                                      "histogram": {"edges": [5.0, 6.0, 7.0, 8.0],
                                                    "counts": [1, 2, 1]}},
                "generations": [{"id": "s1", "source": "chats.jsonl:3", "input": "hi",
                                 "reference": "hello", "prediction": HOSTILE}],
                "generation_metrics": {"exact_match": 0.0, "chrf": 3.1, "rouge_l": 0.05,
                                       "rows": 4}}

    return {"validation": split("validation"), "test": split("test")}


def open_in_chromium(page_file: Path, screenshot: Path) -> dict:
    """The page as Chromium draws it: its figures, tables and link, and every request it made
    (any that is not the file itself is intercepted, counted and refused)."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    refused: list[str] = []

    def intercept(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.route("**/*", intercept)
        page.goto(page_file.as_uri())
        seen = {
            "plots": page.eval_on_selector_all("figure[data-plot]", """els => els.map(e => ({
                name: e.dataset.plot, width: e.getBoundingClientRect().width,
                height: e.getBoundingClientRect().height,
                marks: e.querySelectorAll('svg polyline, svg circle, svg rect').length}))"""),
            "metrics": page.eval_on_selector_all("table.metrics tr", "rs => rs.length"),
            "confusion": page.eval_on_selector_all("table[data-confusion]", """ts => ts.map(
                t => ({split: t.dataset.confusion, cells: [...t.querySelectorAll('tr')].slice(1)
                       .map(r => [...r.querySelectorAll('td')].map(c => +c.textContent))}))"""),
            "links": page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)"),
            "text": page.inner_text("body")}
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    seen["refused"], seen["requests"] = refused, requests
    return seen


def test_training_leaves_its_history_and_report(trained):
    for path in (trained.sft, trained.sft_labels, trained.classifier):
        history = json.loads((path / "history.json").read_text())["log_history"]
        assert any("loss" in e for e in history) and any("eval_loss" in e for e in history)
        report = json.loads((path / "report.json").read_text())
        assert report["history"]["source"] == "history.json"
        assert [s for s, _ in report["history"]["train_loss"]] == [2, 4]  # logging every 2
        assert report["metrics"] == json.loads((path / "metrics.json").read_text())
        # written after the error analysis, so the report carries it
        assert report["analysis"] == json.loads((path / "analysis.json").read_text())
        assert set(report["analysis"]) == {"validation", "test"}
        assert "No error analysis in this run" not in (path / "report.html").read_text()


@pytest.mark.parametrize("kind", ["classifier", "sft"])
def test_report_page_draws_every_plot_and_fetches_nothing(trained, tmp_path, kind):
    run_dir = copy_run(getattr(trained, kind), tmp_path)
    run = open_run(run_dir)
    analysis = classifier_analysis(run.labels) if kind == "classifier" else sft_analysis()
    (run_dir / "analysis.json").write_text(json.dumps(analysis))
    report = write_run_report(run)
    page_file = run_dir / "report.html"
    html = page_file.read_text()
    for external in ("<script", "<link", "<img", "<iframe"):
        assert external not in html, external
    style = html[html.index("<style>"):html.index("</style>")]
    assert "url(" not in style and "@import" not in style and "@font-face" not in style
    assert "&lt;script&gt;alert(1)" in html  # the data is escaped, not run

    seen = open_in_chromium(page_file, tmp_path / "report.png")
    assert seen["refused"] == [] and seen["requests"] == [page_file.as_uri()]
    names = {"loss", "learning-rate"} | ({"validation-metrics"} if kind == "classifier" else
                                        {"loss-histogram-validation", "loss-histogram-test"})
    assert {p["name"] for p in seen["plots"]} == names
    for plot in seen["plots"]:
        assert plot["width"] > 100 and plot["height"] > 40 and plot["marks"] > 0, plot
    assert seen["metrics"] == 1 + len(metrics_table(report["metrics"])["rows"])
    version = open_version(run.dataset, run.config["store"])
    assert seen["links"] == [version.report_html.resolve().as_uri()]
    assert version.report_html.is_file()
    if kind == "classifier":
        assert seen["confusion"] == [{"split": s, "cells": analysis[s]["confusion_matrix"]}
                                     for s in ("validation", "test")]
        assert HOSTILE in seen["text"]  # shown as text in the confident mistakes
    else:
        assert seen["confusion"] == []
        assert "exact match 0.0000, chrF 3.1000" in seen["text"]
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_command_terminal_json_html_and_errors(trained, tmp_path, train_main):
    """The terminal table and --html as a user's shell runs the command (a subprocess); --json
    and the errors through the same entry point in this process."""
    run_dir = copy_run(trained.classifier, tmp_path)
    run = open_run(run_dir)
    (run_dir / "analysis.json").write_text(json.dumps(classifier_analysis(run.labels)))
    (run_dir / "report.json").unlink()
    copy = tmp_path / "page.html"
    shown = run_train("report", str(run_dir), "--html", str(copy), "--store",
                      str(trained.store))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == str(copy)
    assert copy.read_text() == (run_dir / "report.html").read_text()
    assert "confusion matrix, test" in shown.stdout and "macro_f1" in shown.stdout

    as_json = train_main("report", run_dir, "--json", "--store", trained.store)
    assert as_json.returncode == 0, as_json.stderr
    printed = json.loads(as_json.stdout)  # nothing but the JSON on stdout
    assert printed == json.loads((run_dir / "report.json").read_text())
    assert printed["analysis"]["test"]["confusion_matrix"]
    assert printed["facts"]["labels"] == run.labels

    (tmp_path / "not-a-run").mkdir()
    for path, message in [(tmp_path / "not-a-run", "not a run directory"),
                          (tmp_path / "missing", "no such run directory")]:
        bad = train_main("report", path)
        assert bad.returncode == 1 and bad.stdout == ""
        assert bad.stderr.count("\n") == 1 and message in bad.stderr, bad.stderr
    (run_dir / "analysis.json").write_text("{not json")
    bad = train_main("report", run_dir)
    assert bad.returncode == 1 and bad.stderr.startswith(f"error: {run_dir / 'analysis.json'}")
    assert bad.stderr.count("\n") == 1


def test_a_run_without_history_json_reads_its_newest_checkpoint(trained, tmp_path):
    run_dir = copy_run(trained.sft, tmp_path)
    with_history = build_report(open_run(run_dir))["history"]
    (run_dir / "history.json").unlink()
    without = build_report(open_run(run_dir))["history"]
    assert without["source"] == "checkpoint-4/trainer_state.json"
    assert without["train_loss"] and without["eval_loss"] and without["learning_rate"]
    for curve in ("train_loss", "eval_loss", "learning_rate"):
        assert without[curve] == with_history[curve], curve
    (run_dir / "history.json").write_text("[]")
    with pytest.raises(TrainError, match=r"history.json: holds no 'log_history' list"):
        build_report(open_run(run_dir))
    (run_dir / "history.json").unlink()
    for checkpoint in run_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)
    report = write_run_report(open_run(run_dir))
    assert report["history"]["source"] is None and report["facts"]["steps"] is None
    assert "holds no log history" in (run_dir / "report.html").read_text()


def test_a_run_whose_version_cannot_be_opened_is_still_reported(trained, tmp_path):
    run = open_run(copy_run(trained.sft, tmp_path), store=str(tmp_path / "elsewhere"))
    report = write_run_report(run)
    assert report["dataset"]["error"] and report["dataset"]["counts"] is None
    assert report["dataset"]["kind"] == "chat"  # what run.json recorded
    html = (run.path / "report.html").read_text()
    assert "The dataset version could not be opened" in html and "<a href" not in html
    assert "Loss by step" in html


def test_curves_leave_out_summaries_and_values_that_are_not_numbers():
    history = [{"loss": 2.0, "learning_rate": 1e-4, "grad_norm": 1.0, "step": 1},
               {"loss": math.nan, "learning_rate": 5e-5, "step": 2},
               {"eval_loss": 1.5, "eval_accuracy": 0.5, "eval_runtime": 0.1, "step": 2},
               {"train_loss": 1.8, "train_runtime": 3.0, "step": 2},
               {"validation_loss": 1.4, "test_loss": 1.6, "step": 2},
               {"loss": 1.0}]
    assert curves(history) == {"train_loss": [[1, 2.0]], "eval_loss": [[2, 1.5]],
                               "learning_rate": [[1, 1e-4], [2, 5e-5]],
                               "eval_metrics": {"accuracy": [[2, 0.5]]}}
    table = metrics_table({"train": {"train_loss": 1.8, "epoch": 1.0},
                           "test": {"accuracy": 0.5, "loss": 1.6}, "truncated_rows": {"test": 2}})
    assert table == {"splits": ["train", "test"],
                     "rows": [("loss", [1.8, 1.6]), ("accuracy", [None, 0.5]),
                              ("epoch", [1.0, None]), ("truncated rows", [None, 2])]}
