"""The run: stream every input through validate -> clean -> filter, then format into a version.

Stages are functions over Arrow tables; this module is the only place that writes files and
counts rows, so the accounting is uniform. Two passes keep memory flat: pass one streams kept rows
to a staging Arrow file while collecting compact per-row keys (labels now; hashes and signatures
when dedup arrives), pass two streams the staging file into the splits.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict

from . import SCHEMA_VERSION, __version__
from .clean import clean_table, empty_after_clean
from .errors import DataprepError
from .filters import filter_reasons
from .format import format_table
from .ingest import RawRow, check_inputs, detect_format, file_sha256, read_batches
from .keys import KeyCollector, Keys
from .langid import detect_languages
from .minhash import shingles
from .plan import Plan, make_plan
from .recipe import load_recipe
from .report import SPLITS, RunCounts, build_report, render_html
from .schemas import validator
from .store import check_name, latest, new_tmp_dir, publish, set_latest, store_root, version_id
from .textview import normalise_for_dedup, row_text
from .validate import Mapping, Reject, detect_kind, record_schema, require_kind, validate_rows

Progress = Callable[[str, int], None]
KIND_SAMPLE_ROWS = 200


@dataclass
class RunResult:
    name: str
    version: str
    path: Path
    created: bool
    report: dict[str, Any]


def _source_label(path: Path) -> str:
    return os.path.normpath(str(path))


def _kind_and_batches(
    path: Path, recipe: dict[str, Any]
) -> tuple[str | None, Iterator[list[RawRow]]]:
    """Peek at a file's first parsable rows to detect its kind, then hand back all batches."""
    batches = read_batches(path)
    seen: list[list[RawRow]] = []
    sample: list[dict[str, Any]] = []
    for batch in batches:
        seen.append(batch)
        sample += [r.obj for r in batch if r.obj is not None][: KIND_SAMPLE_ROWS - len(sample)]
        if len(sample) >= KIND_SAMPLE_ROWS:
            break
    if detect_format(path) == "transcript":
        kind = "chat"
    elif recipe["kind"]:
        kind = recipe["kind"]
    elif sample:
        kind = require_kind(detect_kind(sample, recipe), _source_label(path), sample)
    else:
        kind = None  # nothing parsable: every row will be rejected whatever the kind

    def replay() -> Iterator[list[RawRow]]:
        yield from seen
        yield from batches

    return kind, replay()


def validated_batches(
    paths: list[Path], recipe: dict[str, Any], progress: Progress | None = None
) -> Iterator[tuple[str, str, pa.Table, list[Reject], int]]:
    """Yield (kind, source, valid table, rejects, rows read) per batch over all inputs."""
    run_kind: str | None = None
    for path in paths:
        source = _source_label(path)
        kind, batches = _kind_and_batches(path, recipe)
        if kind and run_kind and kind != run_kind:
            raise DataprepError(
                f"{source}: holds {kind} records but earlier inputs hold {run_kind}; one version "
                "has one kind, so run them separately or set 'kind' and 'fields' in the recipe"
            )
        run_kind = run_kind or kind
        mapping = Mapping.for_kind(kind or "classification", recipe)
        for batch in batches:
            table, rejects = validate_rows(batch, source, mapping)
            if progress:
                progress(source, len(batch))
            yield kind or "classification", source, table, rejects, len(batch)


def _jsonl(fh, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def label_counts(table: pa.Table) -> dict[str, int]:
    """Rows per label in a table that has a `label` column."""
    values, counts = np.unique(
        table.column("label").to_numpy(zero_copy_only=False), return_counts=True
    )
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def _filter_stages(table: pa.Table, kind: str, recipe: dict[str, Any], run: RunCounts, removed
                   ) -> tuple[pa.Table, pa.Array]:
    """Language ID then quality filters on one batch; returns kept rows and their texts."""
    texts = row_text(table, kind)
    langs = detect_languages(texts, recipe["language_backend"])
    table = table.append_column("lang", pa.array(langs, pa.string()))
    run.languages.update(langs.tolist())
    allowed = recipe["languages"]
    if allowed:
        reasons = np.where(np.isin(langs, allowed), None,
                           np.char.add("language:", langs.astype(str)))
        keep = _drop(table, pa.array(reasons, pa.string()), "language", run, removed)
        table, texts = table.filter(keep), texts.filter(keep)
    reasons, _ = filter_reasons(texts, recipe["filters"])
    keep = _drop(table, reasons, "filter", run, removed)
    return table.filter(keep), texts.filter(keep)


def _first_pass(paths, recipe, tmp: Path, run: RunCounts, progress
                ) -> tuple[str, Path, Keys]:
    """Validate, clean, identify language and filter every input; stream kept rows to a staging
    Arrow file and collect the per-row keys dedup and split decide on."""
    staging = tmp / ".staging.arrow"
    collector = KeyCollector(tmp, recipe["dedup"])
    writer = None
    kind = recipe["kind"] or None
    with (
        open(tmp / "rejected.jsonl", "w", encoding="utf-8") as rejected,
        open(tmp / "removed.jsonl", "w", encoding="utf-8") as removed,
    ):
        for batch_kind, _source, table, rejects, n in validated_batches(paths, recipe, progress):
            run.input += n
            for r in rejects:
                run.rejected[r.reason] += 1
                _jsonl(rejected, r.as_dict())
                run.add_example(run.examples_rejected, r.reason, r.as_dict())
            if table.num_rows == 0:
                continue
            kind = batch_kind
            table, changed, pii = clean_table(table, kind, recipe["clean"])
            run.cleaned.update(changed)
            run.pii.update(pii)
            table = table.filter(_drop(table, empty_after_clean(table, kind), "clean", run,
                                       removed))
            table, texts = _filter_stages(table, kind, recipe, run, removed)
            if writer is None:
                writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), table.schema)
            writer.write_table(table)
            collector.add(table, texts)
    if writer is None:
        if kind is None:
            raise DataprepError(
                "no input row could be parsed, so the record kind is unknown; "
                "see rejected rows with `dataprep validate`"
            )
        schema = record_schema(kind).append(pa.field("lang", pa.string()))
        writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), schema)
    writer.close()
    return kind, staging, collector.finish()


def _drop(table: pa.Table, reasons: pa.Array, stage: str, run: RunCounts, removed,
          extra: dict[str, list] | None = None, counter: Counter | None = None) -> pa.Array:
    """Record rows that have a reason in removed.jsonl and a counter (default: filtered by
    reason); returns the keep mask. `extra` adds per-row fields (duplicate_of, similarity)."""
    counter = run.filtered if counter is None else counter
    dropped = pc.is_valid(reasons)
    if not pc.any(dropped).as_py():
        return pc.invert(dropped)
    gone = table.filter(dropped).select(["id", "source"]).to_pylist()
    gone_reasons = pc.filter(reasons, dropped).to_pylist()
    for i, (row, reason) in enumerate(zip(gone, gone_reasons, strict=True)):
        record = {**row, "stage": stage, "reason": reason}
        for key, values in (extra or {}).items():
            record[key] = values[i]
        counter[reason] += 1
        _jsonl(removed, record)
        run.add_example(run.examples_removed, reason, record)
    return pc.invert(dropped)


def _duplicate_reasons(plan: Plan, keys: Keys, lo: int, hi: int
                       ) -> tuple[pa.Array, dict[str, list]]:
    """Reasons and `duplicate_of` details for rows lo..hi of the staging file."""
    exact = plan.exact_dup_of[lo:hi]
    near_of = plan.near.dup_of[lo:hi] if plan.near else np.full(hi - lo, -1)
    target = np.where(exact >= 0, exact, near_of)
    reasons = np.where(exact >= 0, "duplicate:exact",
                       np.where(near_of >= 0, "duplicate:near", None)).astype(object)
    dropped = target >= 0
    owners = target[dropped]
    sims = np.where(exact >= 0, 1.0, plan.near.similarity[lo:hi] if plan.near else 0.0)[dropped]
    extra = {"duplicate_of": keys.ids.take(pa.array(owners)).to_pylist(),
             "duplicate_of_source": keys.sources.take(pa.array(owners)).to_pylist(),
             "similarity": [round(float(x), 4) for x in sims]}
    return pa.array(reasons, pa.string()), extra


def _second_pass(staging: Path, kind: str, keys: Keys, plan: Plan, recipe: dict[str, Any],
                 tmp: Path, run: RunCounts) -> dict[str, dict[str, np.ndarray]]:
    """Drop duplicates, route kept rows to their split, format, and save a DatasetDict (empty
    splits are saved with one shard so they still load). Returns length arrays per split."""
    split_files = {s: tmp / f".split-{s}.arrow" for s in SPLITS}
    lengths = {s: {"chars": [], "words": []} for s in SPLITS}
    empty = format_table(record_schema(kind).append(pa.field("lang", pa.string())).empty_table(),
                         kind, recipe["format"], sorted(keys.label_names))
    writers = {s: pa.ipc.new_stream(str(split_files[s]), empty.schema) for s in SPLITS}
    lo = 0
    with open(tmp / "removed.jsonl", "a", encoding="utf-8") as removed, \
            pa.memory_map(str(staging)) as source:
        for batch in pa.ipc.open_stream(source):
            table = pa.Table.from_batches([batch])
            hi = lo + table.num_rows
            reasons, extra = _duplicate_reasons(plan, keys, lo, hi)
            found: Counter = Counter()
            keep = _drop(table, reasons, "dedup", run, removed, extra, counter=found)
            for reason, count in found.items():
                run.duplicates[reason.removeprefix("duplicate:")] += count
            split = plan.split[lo:hi][keep.to_numpy(zero_copy_only=False)]
            staged = table.filter(keep)
            texts = row_text(staged, kind)
            table = format_table(staged, kind, recipe["format"], sorted(keys.label_names))
            for code, name in enumerate(SPLITS):
                mask = pa.array(split == code)
                part = table.filter(mask)
                if part.num_rows == 0:
                    continue
                writers[name].write_table(part.cast(empty.schema))
                run.output[name] += part.num_rows
                if kind == "classification":
                    run.labels[name].update(label_counts(part))
                run.output_langs[name].update(part.column("lang").to_pylist())
                body = texts.filter(mask)
                lengths[name]["chars"].append(pc.utf8_length(body).to_numpy(zero_copy_only=False))
                lengths[name]["words"].append(pc.list_value_length(
                    pc.utf8_split_whitespace(body)).to_numpy(zero_copy_only=False))
            lo = hi
    for writer in writers.values():
        writer.close()
    splits = DatasetDict({s: Dataset.from_file(str(split_files[s])) for s in SPLITS})
    with _quiet_datasets():
        splits.save_to_disk(str(tmp), num_shards={s: 1 for s in SPLITS})
    del splits
    for path in [staging, keys_file(tmp), *split_files.values()]:
        path.unlink(missing_ok=True)
    return {s: {k: np.concatenate(v) if v else np.zeros(0, np.int64)
                for k, v in lengths[s].items()} for s in SPLITS}


def shingle_sets(staging: Path, kind: str, dedup: dict[str, Any], rows: np.ndarray
                 ) -> dict[int, np.ndarray]:
    """Sorted shingle-hash sets of the given staging rows, read back from the staging file (only
    candidate rows of near dedup and of the leakage check: a small share of the corpus)."""
    wanted = np.unique(rows)
    sets: dict[int, np.ndarray] = {}
    lo = 0
    with pa.memory_map(str(staging)) as source:
        for batch in pa.ipc.open_stream(source):
            hi = lo + batch.num_rows
            here = wanted[(wanted >= lo) & (wanted < hi)]
            if here.size:
                table = pa.Table.from_batches([batch]).take(pa.array(here - lo))
                hashes, owner = shingles(normalise_for_dedup(row_text(table, kind)),
                                         dedup["ngram"])
                cuts = np.searchsorted(owner, np.arange(1, here.size))
                for row, part in zip(here, np.split(hashes, cuts), strict=True):
                    sets[int(row)] = np.unique(part)
            lo = hi
    return sets


def keys_file(tmp: Path) -> Path:
    return tmp / ".signatures.u32"


@contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Hide `datasets`' per-split save bars (the run has its own progress display)."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def run_pipeline(
    inputs: list[str | Path],
    name: str,
    recipe_path: str | Path | None = None,
    store: str | Path | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Make (or find) the version of `name` built from `inputs` with the recipe."""
    check_name(name)
    paths = check_inputs(inputs)
    recipe = load_recipe(recipe_path)
    root = store_root(store)
    inputs_info = [
        {"path": _source_label(p), "sha256": file_sha256(p), "format": detect_format(p)}
        for p in paths
    ]
    version = version_id(inputs_info, recipe, __version__, SCHEMA_VERSION)
    final = root / name / version
    if (final / "manifest.json").is_file():
        set_latest(root, name, version)
        report = json.loads((final / "report.json").read_text(encoding="utf-8"))
        return RunResult(name, version, final, False, report)

    parent = latest(root, name)
    tmp = new_tmp_dir(root, name, version)
    try:
        run = RunCounts()
        rows_before = {}
        kind, staging, keys = _first_pass(paths, recipe, tmp, run,
                                          _counting(progress, rows_before))
        plan = make_plan(keys, recipe, partial(shingle_sets, staging, kind, recipe["dedup"]))
        lengths = _second_pass(staging, kind, keys, plan, recipe, tmp, run)
        report = build_report(name, version, kind, run, plan, lengths)
        manifest = {
            "name": name,
            "version": version,
            "parent": parent,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "kind": kind,
            "inputs": [{**info, "rows": rows_before.get(info["path"], 0)} for info in inputs_info],
            "recipe": recipe,
            "package_version": __version__,
            "schema_version": SCHEMA_VERSION,
            "counts": report["counts"],
            "splits": {s: run.output[s] for s in SPLITS},
        }
        validator("manifest").validate(manifest)
        (tmp / "report.json").write_text(
            json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        (tmp / "report.html").write_text(render_html(report), encoding="utf-8")
        (tmp / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        created = publish(tmp, root, name, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(name, version, final, created, report)


def _counting(progress: Progress | None, rows: dict[str, int]) -> Progress:
    def tick(source: str, n: int) -> None:
        rows[source] = rows.get(source, 0) + n
        if progress:
            progress(source, n)

    return tick


def validate_only(
    inputs: list[str | Path], recipe_path: str | Path | None = None, examples: int = 3
) -> tuple[int, Counter, dict[str, list[Reject]]]:
    """Read and check inputs without writing anything: rows read, rejects by reason, and the
    first few rejects of each reason (memory stays flat however many rows are bad)."""
    paths = check_inputs(inputs)
    recipe = load_recipe(recipe_path)
    total, by_reason, first = 0, Counter(), {}
    for _kind, _source, _table, batch_rejects, n in validated_batches(paths, recipe):
        total += n
        for reject in batch_rejects:
            by_reason[reject.reason] += 1
            if by_reason[reject.reason] <= examples:
                first.setdefault(reject.reason, []).append(reject)
    return total, by_reason, first
