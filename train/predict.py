"""`train predict runs/<run> [--split S | --dataset NAME@VERSION | --input FILE ...]`: the run's
model on rows it has not been shown, written as JSON Lines a person or a script can check.

Rows come from a split of a version (the run's own by default) or from raw files, which go
through the version's recipe (`Version.prepare`: the validation, cleaning, PII redaction and
formatting of `dataprep run`), so the model sees rows shaped as it was trained on; what the
recipe rejects is written beside the output with its reasons, and the rest is predicted. Each
output row keeps `id` and `source` (the raw log's `file:line`), so a wrong prediction leads back
to the line it came from. Inference itself is `inference.Predictor` (batched, length-sorted).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dataprep.store import SPLITS

from .cli import AsJson, Quiet, result_only
from .errors import TrainError

if TYPE_CHECKING:   # torch comes with these; the command imports them once it runs
    from .inference import GenerationSettings, Predictor
    from .run_dir import TrainedRun

Row = dict[str, Any]
LABELS, GENERATE = "labels", "generate"


@dataclass
class Selected:
    """The rows to predict on, what to call them, and the recipe's verdict on raw input."""

    rows: list[Row]
    what: str                  # "reviews@1a2b test", or the input files
    stem: str                  # the default output's name: the split, or the first input's stem
    labelled: bool             # rows carry `text` and `label` (a classification version)
    prepared: Any = None       # dataprep.prepare.Prepared, for --input


def predict(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory (runs/<run>).",
                                            show_default=False)],
    split: Annotated[str | None, typer.Option(
        help="Split to predict on: train, validation or test (default test).")] = None,
    dataset: Annotated[str | None, typer.Option(
        metavar="NAME@VERSION",
        help="Version to take the split from (default the run's own).")] = None,
    inputs: Annotated[list[Path] | None, typer.Option(
        "--input", metavar="FILE", help="Raw input file, prepared with the version's recipe "
        "(repeatable); instead of --split/--dataset.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="JSON Lines file to write (default RUN/predictions/<split or input>-<UTC time>"
        ".jsonl).")] = None,
    store: Annotated[str | None, typer.Option(
        help="Dataset store (default $DATAPREP_STORE or ./store, else the run's).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per batch.")] = 16,
    device: Annotated[str, typer.Option(help="auto (the GPU if torch sees one), cpu or "
                                             "cuda[:N].")] = "auto",
    max_new_tokens: Annotated[int | None, typer.Option(
        min=1, help="Most tokens generated per row (default 128).")] = None,
    temperature: Annotated[float | None, typer.Option(
        min=0.0, help="Sampling temperature; 0 is greedy (default 0).")] = None,
    top_p: Annotated[float | None, typer.Option(
        max=1.0, help="Nucleus sampling mass, above 0 (default 1).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the sampling.")] = None,
    generate: Annotated[bool, typer.Option(
        "--generate", help="Generate text even where the run predicts labels (an SFT run on "
        "a classification version).")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Predict the first N rows only.")
                     ] = None,
    merge: Annotated[bool, typer.Option(
        help="Merge a LoRA adapter into the weights at load (same outputs, faster) or keep "
        "it applied as an adapter.")] = True,
    as_json: AsJson = False,
    quiet: Quiet = False,
) -> None:
    """Predict with a run's model on a split of a version or on raw input files; write JSON
    Lines (id, source, input, prediction, reference) and print the file's path last."""
    from .run_dir import open_run

    output_mode = result_only(as_json, quiet)
    run = open_run(run_dir, store)
    gen_flags = {"--max-new-tokens": max_new_tokens, "--temperature": temperature,
                 "--top-p": top_p, "--seed": seed}
    given = [flag for flag, value in gen_flags.items() if value is not None]
    check_run_can(run, generate, given)
    if top_p is not None and top_p <= 0:
        raise TrainError(f"--top-p {top_p}: the sampled mass must be above 0 (at most 1)")
    selected = select_rows(run, split, dataset, inputs, limit)
    mode = choose_mode(run, selected, generate, given)
    out = output or default_output(run, selected.stem)
    dropped = report_rejected(selected.prepared, out) if selected.prepared else ""
    if not selected.rows:
        raise TrainError(f"{selected.what}: no row left to predict{dropped}")
    if dropped:
        print(f"{selected.what}{dropped}", file=sys.stderr)
    settings = generation_settings(max_new_tokens, temperature, top_p, seed)
    with output_mode:
        records, seconds = run_predictions(run, selected, mode, settings, device, batch_size,
                                           merge)
    write_jsonl(out, records)
    rate = len(records) / seconds if seconds > 0 else float("inf")
    if as_json:
        print(json.dumps({"output": str(out), "rows": len(records), "of": selected.what,
                          "mode": mode, "seconds": round(seconds, 3)}, ensure_ascii=False))
        return
    if not quiet:
        print(f"{len(records)} rows of {selected.what} predicted by {run.path} ({mode}) in "
              f"{seconds:.1f} s: {rate:.1f} rows/s")
    print(out)


def check_run_can(run: TrainedRun, generate: bool, generation_flags: list[str]) -> None:
    """A classifier has a head over its labels and no language-model head: it cannot write."""
    if run.is_classifier and (generate or generation_flags):
        asked = "--generate" if generate else ", ".join(generation_flags)
        raise TrainError(f"{run.path} is a classifier run: it predicts labels and cannot "
                         f"generate text (drop {asked})")


def choose_mode(run: TrainedRun, selected: Selected, generate: bool, given: list[str]) -> str:
    """Labels where the run reads them (a classifier, or an SFT run scoring its version's
    labels) on labelled rows, unless --generate; generation otherwise."""
    reads_labels = run.is_classifier or (selected.labelled and bool(run.labels))
    mode = LABELS if reads_labels and not generate else GENERATE
    if mode == LABELS and given:
        raise TrainError(f"{', '.join(given)} set how text is generated, but {run.path} "
                         "predicts labels here; add --generate to generate text")
    return mode


def select_rows(run: TrainedRun, split: str | None, dataset: str | None,
                inputs: list[Path] | None, limit: int | None) -> Selected:
    """The rows asked for: raw files prepared with the run's version's recipe, or a split."""
    if inputs:
        if split or dataset:
            raise TrainError("give either --input FILE or --split/--dataset, not both")
        version = run.version
        prepared = version.prepare(list(inputs))
        rows = prepared.table.to_pylist()[:limit]
        what = " ".join(str(p) for p in inputs)
        return Selected(rows, what, Path(inputs[0]).stem, bool(version.labels()), prepared)
    split = split or "test"
    if split not in SPLITS:
        raise TrainError(f"--split {split!r}: a version has the splits {', '.join(SPLITS)}")
    version = run.open_dataset(dataset) if dataset else run.version
    data = version.data[split]
    labelled = {"text", "label"} <= set(data.column_names)
    if run.is_classifier and not labelled:
        raise TrainError(f"{version.spec} holds {version.kind} records, but {run.path} is a "
                         "classifier: it needs a version with text and label")
    if data.num_rows == 0:
        raise TrainError(f"{version.spec}: the {split} split is empty")
    if limit:
        data = data.select(range(min(limit, data.num_rows)))
    stem = split if version.spec == run.dataset else f"{version.ref.name}-{split}"
    return Selected(data.to_list(), f"{version.spec} {split}", stem, labelled)


def default_output(run: TrainedRun, stem: str) -> Path:
    """RUN/predictions/<stem>-<UTC time>.jsonl, never an earlier prediction's file."""
    folder = run.path / "predictions"
    base = f"{stem}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    path, n = folder / f"{base}.jsonl", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.jsonl"
    return path


def rejected_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.rejected.jsonl")


def report_rejected(prepared: Any, out: Path) -> str:
    """Rows the recipe rejected (validation) or emptied (cleaning): every record, as
    `dataprep run` writes them, in `<output>.rejected.jsonl`, and a summary by reason ("" if
    none) for the one line that reports them."""
    dropped = [*prepared.rejected, *prepared.removed]
    if not dropped:
        return ""
    path = rejected_path(out)
    write_jsonl(path, dropped)
    reasons = Counter(r["reason"] for r in dropped)
    summary = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common())
    return f": {len(dropped)} of {prepared.rows_read} rows not predicted ({summary}); see {path}"


def generation_settings(max_new_tokens: int | None, temperature: float | None,
                        top_p: float | None, seed: int | None) -> GenerationSettings:
    from .inference import GenerationSettings

    defaults = GenerationSettings()
    return GenerationSettings(
        max_new_tokens=defaults.max_new_tokens if max_new_tokens is None else max_new_tokens,
        temperature=defaults.temperature if temperature is None else temperature,
        top_p=defaults.top_p if top_p is None else top_p, seed=seed)


def run_predictions(run: TrainedRun, selected: Selected, mode: str,
                    settings: GenerationSettings, device: str, batch_size: int, merge: bool
                    ) -> tuple[list[Row], float]:
    """The output records in input order, and the seconds inference took (load excluded)."""
    from tqdm import tqdm

    from .inference import Predictor

    predictor = Predictor(run, device, batch_size, merge=merge)
    rows = selected.rows
    start = time.perf_counter()
    with tqdm(total=len(rows), unit="row", desc="predict", file=sys.stderr) as bar:
        if mode == LABELS:
            predictions = label_predictions(predictor, rows, bar.update)
        else:
            predictions = predictor.generate(rows, settings, bar.update)
    seconds = time.perf_counter() - start
    return [record(row, prediction, mode) for row, prediction in
            zip(rows, predictions, strict=True)], seconds


def label_predictions(predictor: Predictor, rows: list[Row], progress) -> list[dict[str, Any]]:
    """Each row's most probable label and the probability of every label."""
    labels = predictor.run.labels
    probabilities = predictor.probabilities(rows, progress)
    return [{"label": labels[int(p.argmax())],
             "probabilities": {name: float(x) for name, x in zip(labels, p, strict=True)}}
            for p in probabilities]


def record(row: Row, prediction: Any, mode: str) -> Row:
    """One output line: the row's provenance, what the model was shown, what it answered, and
    the data's own answer (the gold label or the reference reply) where there is one."""
    from .inference import prompt_messages, reference_of

    if mode == LABELS:
        shown, reference = row["text"], row["label"]
    else:
        shown, reference = prompt_messages(row), reference_of(row)
    return {"id": row["id"], "source": row["source"], "input": shown,
            "prediction": prediction, "reference": reference}


def write_jsonl(path: Path, records: list[Row]) -> None:
    """Write through a temporary file, so a stopped run leaves no half-written output."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
