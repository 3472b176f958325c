"""The run report: what a training run did and how its model does, in one place.

`train report runs/<run>` and the end of every training run write `runs/<run>/report.json` and
a self-contained `report.html` in the data report's style (inline CSS and SVG; no scripts,
fonts, images or network), and the command prints a terminal summary. Everything comes from the
run's own files: `history.json` (the trainer's log history; for runs written before it existed,
the newest checkpoint's `trainer_state.json`), `metrics.json`, `run.json`, `analysis.json` when
the error analysis wrote one, and the dataset version the run was trained on. When that version
cannot be opened the report still renders and says so: a run outlives the store it came from.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from common.errors import UserError

from .cli import Quiet
from .errors import TrainError, TrainUsageError

if TYPE_CHECKING:
    from rich.console import Console

    from .run_dir import TrainedRun

#: The trainer's log history, written by `loop.fit` at the end of training.
HISTORY_FILE = "history.json"
#: The error analysis's findings per split (validation, test), when it ran.
ANALYSIS_FILE = "analysis.json"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
#: Metrics shown first in the tables, in this order; the rest follow as metrics.json has them.
HEADLINE = ("loss", "perplexity", "accuracy", "macro_f1")
#: Per-log bookkeeping, not a measure of the model: left out of the curves.
NOT_CURVES = ("eval_runtime", "eval_samples_per_second", "eval_steps_per_second")
#: Timings and counters the page's metrics table shows and the terminal's leaves out.
BOOKKEEPING = ("runtime", "samples_per_second", "steps_per_second", "total_flos")


def read_json(path: Path) -> Any:
    """A JSON file of the run, or a one-line error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise TrainError(f"{path}: not readable as JSON ({exc})") from None


def _step_of(state: Path) -> int:
    number = state.parent.name.removeprefix("checkpoint-")
    return int(number) if number.isdigit() else -1


def log_history(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The trainer's log entries and the file they came from (None: the run holds none)."""
    history = path / HISTORY_FILE
    if history.is_file():
        source = HISTORY_FILE
    else:
        states = sorted(path.glob("checkpoint-*/trainer_state.json"), key=_step_of)
        if not states:
            return [], None
        source = str(states[-1].relative_to(path))
    held = read_json(path / source)
    entries = held.get("log_history") if isinstance(held, dict) else None
    if not isinstance(entries, list):
        raise TrainError(f"{path / source}: holds no 'log_history' list")
    return [e for e in entries if isinstance(e, dict)], source


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def curves(history: list[dict[str, Any]]) -> dict[str, Any]:
    """[step, value] pairs of the training loss, validation loss, learning rate and other
    validation metrics. The summary entries Trainer and the final evaluations append
    (train_loss, validation_*, test_*) are not curves; the metrics table holds them. Values
    that are not finite (a diverged run's NaN loss) are left out, so the page still draws."""
    out: dict[str, Any] = {"train_loss": [], "eval_loss": [], "learning_rate": [],
                           "eval_metrics": {}}
    for entry in history:
        step = entry.get("step")
        if not _number(step):
            continue
        for key, value in entry.items():
            if not _number(value) or key in NOT_CURVES:
                continue
            if key == "loss":
                out["train_loss"].append([step, value])
            elif key == "learning_rate":
                out["learning_rate"].append([step, value])
            elif key == "eval_loss":
                out["eval_loss"].append([step, value])
            elif key.startswith("eval_"):
                out["eval_metrics"].setdefault(key.removeprefix("eval_"), []).append([step, value])
    return out


def dataset_facts(run: TrainedRun) -> dict[str, Any]:
    """The version's headline counts and its report page, or why it could not be opened (with
    what run.json recorded of it at training time)."""
    recorded = run.info.get("dataset") or {}
    facts: dict[str, Any] = {"spec": run.dataset, "kind": recorded.get("kind"),
                             "path": recorded.get("path"), "counts": None, "report_html": None,
                             "error": None}
    try:
        version = run.version
    except UserError as exc:
        facts["error"] = str(exc)
        return facts
    page = version.report_html
    facts.update(kind=version.kind, path=str(version.path), counts=version.counts,
                 report_html=str(page.resolve()) if page.is_file() else None)
    return facts


def card_facts(run: TrainedRun, steps: int | None) -> dict[str, Any]:
    """What the model card says of the model and its training, from run.json."""
    cfg, info = run.config, run.info
    adapter = (run.path / "adapter_model.safetensors").is_file()
    weights = "the LoRA adapter" if adapter else "the full model"
    if (run.path / "merged").is_dir():
        weights += " and merged weights in merged/"
    extra = {key: info[key] for key in ("sft_format", "packing", "attention",
                                        "chat_template_failures") if key in info}
    return {
        "run": run.path.name, "model": cfg["model"], "method": run.method,
        "dataset": run.dataset, "weights": weights,
        "lora": ({k: cfg.get(f"lora_{k}") for k in ("r", "alpha", "dropout")}
                 | {"target_modules": cfg.get("target_modules") or []}
                 if cfg.get("lora_r") else None),
        **{k: cfg.get(k) for k in ("epochs", "max_steps", "batch_size", "grad_accum",
                                   "max_length", "seed")},
        "learning_rate": cfg.get("lr"), "steps": steps, "labels": run.labels, "extra": extra}


def build_report(run: TrainedRun) -> dict[str, Any]:
    """report.json: the facts, the curves, metrics.json and analysis.json as they are."""
    history, source = log_history(run.path)
    lines = curves(history)
    steps = [s for s, _ in lines["train_loss"] + lines["eval_loss"] + lines["learning_rate"]]
    analysis_file = run.path / ANALYSIS_FILE
    analysis = read_json(analysis_file) if analysis_file.is_file() else None
    if analysis is not None and not isinstance(analysis, dict):
        raise TrainError(f"{analysis_file}: expected an object of splits")
    return _finite({
        "run": str(run.path), "facts": card_facts(run, int(max(steps)) if steps else None),
        "dataset": dataset_facts(run), "history": {"source": source, **lines},
        "metrics": run.metrics, "analysis": analysis, "config": run.config,
        "packages": run.info.get("packages") or {}})


def _finite(value: Any) -> Any:
    """NaN and infinities as null: report.json stays JSON that any parser reads."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def metrics_table(metrics: dict[str, Any]) -> dict[str, Any]:
    """metrics.json's splits side by side: one row per metric (train's keys without their
    `train_` prefix, so its loss lines up with the others), headline metrics first."""
    splits = [s for s in ("train", "validation", "test") if isinstance(metrics.get(s), dict)]
    values = {s: {k.removeprefix("train_"): v for k, v in metrics[s].items()} for s in splits}
    seen = dict.fromkeys(k for s in splits for k in values[s])
    names = [k for k in HEADLINE if k in seen] + [k for k in seen if k not in HEADLINE]
    rows = [(name, [values[s].get(name) for s in splits]) for name in names]
    truncated = metrics.get("truncated_rows")
    if isinstance(truncated, dict):
        rows.append(("truncated rows", [truncated.get(s) for s in splits]))
    return {"splits": splits, "rows": rows}


def fmt(value: Any) -> str:
    """A number as the tables show it: integers whole, floats to 4 decimals (or 4 significant
    digits when large or tiny)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    return str(value)


def _charts(report: dict[str, Any]) -> dict[str, Any]:
    """The page's figures, drawn by `common.plots` (which escapes what it draws)."""
    from markupsafe import Markup

    from common import plots

    h = report["history"]
    charts: dict[str, Any] = {
        "loss": plots.lines("loss", "Loss by step",
                            {"train": h["train_loss"], "validation": h["eval_loss"]}),
        "learning_rate": plots.lines("learning-rate", "Learning rate by step",
                                     {"learning rate": h["learning_rate"]}),
        "validation_metrics": plots.lines("validation-metrics", "Validation metrics by step",
                                          h["eval_metrics"]) if h["eval_metrics"] else "",
        "loss_histograms": {}}
    for split, a in (report["analysis"] or {}).items():
        hist = isinstance(a, dict) and (a.get("loss_distribution") or {}).get("histogram")
        if hist:
            charts["loss_histograms"][split] = Markup(plots.histogram(
                f"loss-histogram-{split}", f"Per-example loss on {split}", hist["edges"],
                {split: hist["counts"]}))
    return {k: v if isinstance(v, dict) else Markup(v) for k, v in charts.items()}


@cache
def page_template(name: str):
    """`templates/<name>`, from the installed package (it ships in the wheel), with the `num`
    filter every report page formats its figures with."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("train", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = fmt
    return env.get_template(name)


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page; its one link is the dataset version's report.html (a file)."""
    page = report["dataset"]["report_html"]
    analysis = {s: a for s, a in (report["analysis"] or {}).items() if isinstance(a, dict)}
    return page_template("run_report.html.j2").render(
        report=report, facts=report["facts"], dataset=report["dataset"],
        metrics=metrics_table(report["metrics"]), charts=_charts(report), analysis=analysis,
        dataset_uri=Path(page).as_uri() if page else "")


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise TrainError(f"{path}: cannot write the report ({exc.strerror})") from None


def write_run_report(run: TrainedRun, html_copy: Path | None = None) -> dict[str, Any]:
    """(Re)write the run's report.json and report.html (and the page to `html_copy`)."""
    report = build_report(run)
    page = render_html(report)
    _write(run.path / REPORT_JSON, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _write(run.path / REPORT_HTML, page)
    if html_copy is not None:
        _write(html_copy, page)
    return report


def write_report(path: Path, store: str | None = None) -> dict[str, Any]:
    """The report of the run in `path`, as training leaves it (see `loop.fit`)."""
    from .run_dir import open_run

    return write_run_report(open_run(path, store))


def print_summary(report: dict[str, Any], console: Console | None = None) -> None:
    """The terminal view: the facts, the metrics and, when analysed, a confusion matrix."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    f, d = report["facts"], report["dataset"]
    facts = Table(title=f"run {f['run']}", show_header=False)
    facts.add_row("model", f"{f['model']} ({f['method']}; {f['weights']})")
    facts.add_row("dataset", f"{d['spec']} ({d['kind']})" if not d["error"]
                  else f"{d['spec']}: [red]not opened[/red]: {d['error']}")
    if d["counts"]:
        splits = d["counts"]["splits"]
        facts.add_row("rows", ", ".join(f"{s} {n}" for s, n in splits.items()))
    facts.add_row("steps", fmt(f["steps"]) or "unknown")
    facts.add_row("history", report["history"]["source"] or "none")
    console.print(facts)
    table = metrics_table(report["metrics"])
    if table["splits"]:
        metrics = Table(title="metrics")
        metrics.add_column("metric")
        for split in table["splits"]:
            metrics.add_column(split, justify="right")
        for name, values in table["rows"]:
            if name not in BOOKKEEPING:
                metrics.add_row(name, *(fmt(v) for v in values))
        console.print(metrics)
    analysis = report["analysis"] or {}
    if not analysis:
        console.print("error analysis: none in this run")
    for split in ("test", "validation"):
        a = analysis.get(split)
        if isinstance(a, dict) and a.get("confusion_matrix"):
            confusion = Table(title=f"confusion matrix, {split} (rows gold, columns predicted)")
            confusion.add_column("gold")
            for label in a["labels"]:
                confusion.add_column(str(label), justify="right")
            for label, row in zip(a["labels"], a["confusion_matrix"], strict=False):
                confusion.add_row(str(label), *(str(n) for n in row))
            console.print(confusion)
            break


def check_page_path(html: Path, trained: TrainedRun) -> None:
    """Refuse an `--html` path inside a dataset store (its versions are immutable) or in a
    folder that does not exist, before anything is written."""
    from dataprep.store import check_outside_store, store_root

    stores = [trained.store] if trained.store else [None, trained.config.get("store")]
    for store in dict.fromkeys(stores):
        check_outside_store(store_root(store), html)


def report(
    run: Annotated[Path, typer.Argument(help="The run directory (runs/<run>).",
                                        show_default=False)],
    html: Annotated[Path | None, typer.Option("--html", help="Also write the page to PATH.",
                                              show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json instead of the "
                                          "summary.")] = False,
    store: Annotated[str | None, typer.Option("--store", help="The store holding the run's "
                                              "dataset version (default $DATAPREP_STORE, else "
                                              "./store, else the one it was trained from).",
                                              show_default=False)] = None,
    quiet: Quiet = False,
) -> None:
    """The run's report: a terminal summary, report.json and a self-contained report.html."""
    from .run_dir import open_run

    if as_json and quiet:
        raise TrainUsageError("--json and --quiet: give one of them")
    trained = open_run(run, store)
    if html is not None:
        check_page_path(html, trained)
    written = write_run_report(trained, html)
    if as_json:
        print(json.dumps(written, indent=2, ensure_ascii=False))
        return
    if not quiet:
        print_summary(written)
    print(html or trained.path / REPORT_HTML)
