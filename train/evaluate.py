"""`train evaluate runs/<run> [NAME@VERSION] --split test`: a run's metrics on any version's
split, with the error analysis (`analysis.py`).

The default version is the run's own; a newer one measures the model on data it has not seen,
which only holds if its rows were not in the run's training split: the command counts them by
content and warns. It writes `metrics.json` and `analysis.json` to
`runs/<run>/evaluations/<name>-<version>-<split>-<UTC time>/` (or `--output`), prints a short
summary, and with `--json` prints the metrics as one JSON object on stdout and nothing else
there (the summary then goes to stderr).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli import Quiet
from .errors import TrainError, TrainUsageError

SPLIT_NAMES = ("train", "validation", "test")


def evaluation_dir(run_path: Path, spec: str, split: str) -> Path:
    """A new directory under the run's `evaluations/`, named by version, split and time."""
    name, _, version = spec.partition("@")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = run_path / "evaluations" / f"{name}-{version}-{split}-{stamp}"
    path, n = base, 1
    while path.exists():  # two evaluations within one second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def metrics_record(run_path: Path, analysis: dict[str, Any]) -> dict[str, Any]:
    """`metrics.json`: the split's metrics flat, per-label scores and generation scores."""
    record = {"run": str(run_path), "dataset": analysis["dataset"], "split": analysis["split"],
              "rows": analysis["rows"],
              "overlap_with_training": analysis["overlap_with_training"],
              **analysis["metrics"]}
    if "per_label" in analysis:
        record["per_label"] = analysis["per_label"]
    if "generation_metrics" in analysis:
        record["generation"] = analysis["generation_metrics"]
    return record


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def summary(record: dict[str, Any], output: Path) -> str:
    """The few lines a person reads: metrics, per-label scores, generation scores, where."""
    lines = [f"{record['run']} on {record['dataset']}:{record['split']} ({record['rows']} rows, "
             f"{record['overlap_with_training']} in the run's training split)"]
    for key in ("loss", "perplexity", "accuracy", "macro_f1"):
        if key in record:
            lines.append(f"  {key:<12} {fmt(record[key])}")
    if record.get("per_label"):
        width = max(12, *(len(label) for label in record["per_label"]))
        lines.append(f"  {'label':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} "
                     f"{'support':>8}")
        for label, s in record["per_label"].items():
            lines.append(f"  {label:<{width}} {s['precision']:>9.4f} {s['recall']:>9.4f} "
                         f"{s['f1']:>9.4f} {s['support']:>8}")
    generation = record.get("generation")
    if generation and generation["rows"]:
        lines.append(f"  generation on {generation['rows']} rows: exact match "
                     f"{fmt(generation['exact_match'])}, chrF {fmt(generation['chrf'])}, "
                     f"ROUGE-L {fmt(generation['rouge_l'])}")
    lines.append(f"written to {output}")
    return "\n".join(lines)


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `train`.",
                                            show_default=False)],
    dataset: Annotated[str | None, typer.Argument(
        help="NAME@VERSION to evaluate on (default: the run's own version).",
        show_default=False)] = None,
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    store: Annotated[str | None, typer.Option(
        help="The dataset store (default $DATAPREP_STORE, else ./store, else the run's).",
        show_default=False)] = None,
    top: Annotated[int, typer.Option(
        help="Confident mistakes and highest-loss rows listed in the analysis.")] = 10,
    generate_rows: Annotated[int, typer.Option(
        help="SFT: rows answered by generation for exact match, chrF and ROUGE-L.")] = 32,
    max_new_tokens: Annotated[int, typer.Option(help="SFT: tokens generated at most.")] = 128,
    batch_size: Annotated[int, typer.Option(help="Rows per forward pass.")] = 16,
    device: Annotated[str, typer.Option(help="auto (the GPU when there is one) or cpu.")
                      ] = "auto",
    output: Annotated[Path | None, typer.Option(
        help="Directory for metrics.json and analysis.json (default: a new one under "
             "runs/<run>/evaluations/).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the metrics as one JSON object on stdout.")] = False,
    quiet: Quiet = False,
) -> None:
    """A run's metrics and error analysis on a version's split."""
    from .analysis import (
        ANALYSIS_FILE,
        AnalysisSettings,
        analyse_split,
        check_fits,
        overlap_with_training,
    )
    from .inference import Predictor
    from .outputs import write_json
    from .run_dir import open_run

    if as_json and quiet:
        raise TrainUsageError("--json and --quiet: give one of them")
    if split not in SPLIT_NAMES:
        raise TrainError(f"--split {split!r}: choose one of {', '.join(SPLIT_NAMES)}")
    for name, value, least in (("--top", top, 0), ("--generate-rows", generate_rows, 0),
                               ("--batch-size", batch_size, 1),
                               ("--max-new-tokens", max_new_tokens, 1)):
        if value < least:
            raise TrainError(f"{name} {value}: must be at least {least}")
    run = open_run(run_dir, store)
    version = run.open_dataset(dataset) if dataset else run.version
    check_fits(run, version)
    rows = version.data[split].num_rows
    if rows == 0:
        raise TrainError(f"{version.spec}:{split} has no rows")
    overlap = overlap_with_training(run, version, split)
    if overlap:
        print(f"warning: {overlap} of {rows} rows of {version.spec}:{split} were in the run's "
              f"training split ({run.dataset})", file=sys.stderr)
    settings = AnalysisSettings(top, generate_rows, max_new_tokens)
    analysis = analyse_split(Predictor(run, device, batch_size), version, split, settings,
                             overlap)
    out = output or evaluation_dir(run.path, version.spec, split)
    out.mkdir(parents=True, exist_ok=True)
    record = metrics_record(run.path, analysis)
    write_json(out / "metrics.json", record)
    write_json(out / ANALYSIS_FILE, analysis)
    print(summary(record, out), file=sys.stderr if as_json or quiet else sys.stdout)
    if as_json:
        print(json.dumps(record, ensure_ascii=False))
    elif quiet:
        print(out)
