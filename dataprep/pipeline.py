"""The run: validate -> clean -> language -> filters -> dedup -> split -> format -> version.

Stages are functions over Arrow tables; this module is the only place that writes files and
counts rows, so the accounting is uniform. Two passes keep memory flat: pass one (in worker
processes, `batchwork`) streams kept rows to a staging Arrow file while collecting compact per-row
keys (`keys`); dedup and split are decided on the keys alone (`plan`); pass two streams the
staging file into the splits, dropping duplicates and formatting.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import shutil
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import SCHEMA_VERSION, __version__
from .augment import augment_train
from .batchwork import process_batch, removed_records
from .dedup import shingle_sets_of
from .errors import DataprepError
from .format import format_table
from .ingest import RawRow, check_inputs, detect_format, file_sha256, read_batches
from .keys import SIGNATURES_FILE, KeyCollector, Keys
from .plan import Plan, make_plan
from .recipe import load_recipe
from .report import SPLITS, RunCounts, build_report, render_html
from .schemas import validator
from .staging import staged_schema, take_rows, with_provenance
from .store import check_name, latest, new_tmp_dir, publish, set_latest, store_root, version_id
from .textview import normalise_for_dedup, row_text
from .validate import Mapping, Reject, detect_kind, require_kind, validate_rows

Progress = Callable[[str, int], None]
KIND_SAMPLE_ROWS = 200
#: Inputs smaller than this run in-process: starting worker processes costs about a second.
PARALLEL_MIN_BYTES = 8 << 20
SPLIT_DATA_FILE = "data-00000-of-00001.arrow"


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


def raw_batches(paths: list[Path], recipe: dict[str, Any], progress: Progress | None = None
                ) -> Iterator[tuple[str, str, list[RawRow]]]:
    """Yield (kind, source, raw rows) per batch over all inputs; one version has one kind."""
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
        for batch in batches:
            if progress:
                progress(source, len(batch))
            yield kind or "classification", source, batch


def workers_for(paths: list[Path], workers: int | None) -> int:
    """Worker processes for the first pass: `workers`, else $DATAPREP_WORKERS, else one per core
    for inputs big enough to repay starting them (a few MB), else none (in-process)."""
    if workers is None:
        workers = int(os.environ.get("DATAPREP_WORKERS", "0")) or None
    if workers is None:
        big = sum(p.stat().st_size for p in paths) > PARALLEL_MIN_BYTES
        workers = (os.cpu_count() or 1) if big else 1
    return max(1, workers)


#: prctl option: the signal a process gets when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Pool initializer: a worker ends when the run that forked it dies. Otherwise a worker of a
    killed run (SIGKILL, the OOM killer) waits forever on its task queue, because it inherited
    the queue's write end by fork and so never sees end-of-file. Linux's PR_SET_PDEATHSIG has no
    wrapper in the standard library or in multiprocessing, hence ctypes."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the run died before the signal was armed
        os._exit(1)


def ordered_map(fn, items: Iterator[tuple], workers: int) -> Iterator[Any]:
    """fn(*item) for each item, in input order, at most 2 x workers batches in flight (so memory
    stays flat; `Executor.map` would read the whole input ahead)."""
    if workers <= 1:
        for item in items:
            yield fn(*item)
        return
    # fork: workers inherit the loaded modules and the fastText model, and a caller's script
    # needs no `if __name__ == "__main__"` guard (spawn and forkserver re-import it).
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, *item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _jsonl(fh, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def label_counts(table: pa.Table) -> dict[str, int]:
    """Rows per label in a table that has a `label` column."""
    values, counts = np.unique(
        table.column("label").to_numpy(zero_copy_only=False), return_counts=True
    )
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def _first_pass(paths, recipe, tmp: Path, run: RunCounts, progress, workers: int
                ) -> tuple[str, Path, Keys]:
    """Validate, clean, identify language and filter every input (batches in worker processes);
    write rejects and removals, stream kept rows to a staging Arrow file and collect the per-row
    keys dedup and split decide on."""
    staging = tmp / ".staging.arrow"
    collector = KeyCollector(tmp, recipe["dedup"])
    writer = None
    kind = recipe["kind"] or None
    items = ((k, source, rows, recipe) for k, source, rows in raw_batches(paths, recipe, progress))
    with (
        open(tmp / "rejected.jsonl", "w", encoding="utf-8") as rejected,
        open(tmp / "removed.jsonl", "w", encoding="utf-8") as removed,
    ):
        for out in ordered_map(process_batch, items, workers):
            run.input += out.rows_read
            for r in out.rejects:
                run.rejected[r.reason] += 1
                _jsonl(rejected, r.as_dict())
                run.add_example(run.examples_rejected, r.reason, r.as_dict())
            _record_removed(out.removed, run, removed)
            run.cleaned.update(out.cleaned)
            run.pii.update(out.pii)
            run.languages.update(out.languages)
            if out.table is None:
                continue
            kind = out.kind
            if writer is None:
                writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), out.table.schema)
            writer.write_table(out.table)
            collector.add(out.table, out.exact, out.sigs, out.chars)
    if writer is None:
        if kind is None:
            raise DataprepError(
                "no input row could be parsed, so the record kind is unknown; "
                "see rejected rows with `dataprep validate`"
            )
        writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), staged_schema(kind))
    writer.close()
    return kind, staging, collector.finish()


def _record_removed(records: list[dict], run: RunCounts, removed, counter: Counter | None = None
                    ) -> None:
    """Append removal records to removed.jsonl and count them (default: filtered by reason)."""
    counter = run.filtered if counter is None else counter
    for record in records:
        counter[record["reason"]] += 1
        _jsonl(removed, record)
        run.add_example(run.examples_removed, record["reason"], record)


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
                 tmp: Path, run: RunCounts, fingerprint: str, augmented: Path | None = None
                 ) -> dict[str, dict[str, np.ndarray]]:
    """Drop duplicates, route kept rows to their split, format, and write each split straight
    into the layout `DatasetDict.save_to_disk` makes (one Arrow stream file a split, so an empty
    split still loads); then append the augmented rows to train. Returns length arrays per
    split."""
    split_files = {s: tmp / s / SPLIT_DATA_FILE for s in SPLITS}
    for path in split_files.values():
        path.parent.mkdir()
    labels = sorted(keys.label_names)
    empty = format_table(with_provenance(staged_schema(kind).empty_table()), kind,
                         recipe["format"], labels)
    out = SplitWriters({s: pa.ipc.new_stream(str(split_files[s]), empty.schema) for s in SPLITS},
                       empty.schema, kind, run)
    lo = 0
    with open(tmp / "removed.jsonl", "a", encoding="utf-8") as removed, \
            pa.OSFile(str(staging)) as source:
        for batch in pa.ipc.open_stream(source):
            table = pa.Table.from_batches([batch])
            hi = lo + table.num_rows
            reasons, extra = _duplicate_reasons(plan, keys, lo, hi)
            found: Counter = Counter()
            keep, records = removed_records(table, reasons, "dedup", extra)
            _record_removed(records, run, removed, counter=found)
            for reason, count in found.items():
                run.duplicates[reason.removeprefix("duplicate:")] += count
            split = plan.split[lo:hi][keep.to_numpy(zero_copy_only=False)]
            staged = with_provenance(table.filter(keep))
            out.write(format_table(staged, kind, recipe["format"], labels),
                      row_text(staged, kind), split)
            lo = hi
    if augmented is not None:
        with pa.OSFile(str(augmented)) as source:
            for batch in pa.ipc.open_stream(source):
                staged = pa.Table.from_batches([batch])
                out.write(format_table(staged, kind, recipe["format"], labels),
                          row_text(staged, kind), np.zeros(staged.num_rows, np.int8))
    out.close()
    for split in SPLITS:
        _write_split_metadata(tmp / split, split, empty.schema, fingerprint)
    (tmp / "dataset_dict.json").write_text(json.dumps({"splits": list(SPLITS)}), encoding="utf-8")
    for path in [staging, tmp / SIGNATURES_FILE, augmented]:
        if path is not None:
            path.unlink(missing_ok=True)
    return out.lengths()


class SplitWriters:
    """The three split files being written, and the per-split counts the report needs."""

    def __init__(self, writers: dict[str, Any], schema: pa.Schema, kind: str, run: RunCounts):
        self.writers, self.schema, self.kind, self.run = writers, schema, kind, run
        self.chars: dict[str, list] = {s: [] for s in SPLITS}
        self.words: dict[str, list] = {s: [] for s in SPLITS}

    def write(self, table: pa.Table, texts: pa.Array, split: np.ndarray) -> None:
        """Route formatted rows (with their whole texts) to the split of each row (0/1/2)."""
        for code, name in enumerate(SPLITS):
            mask = pa.array(split == code)
            part = table.filter(mask)
            if part.num_rows == 0:
                continue
            self.writers[name].write_table(part.cast(self.schema))
            self.run.output[name] += part.num_rows
            if self.kind == "classification":
                self.run.labels[name].update(label_counts(part))
            self.run.output_langs[name].update(part.column("lang").to_pylist())
            body = texts.filter(mask)
            self.chars[name].append(pc.utf8_length(body).to_numpy(zero_copy_only=False))
            self.words[name].append(pc.list_value_length(
                pc.utf8_split_whitespace(body)).to_numpy(zero_copy_only=False))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def lengths(self) -> dict[str, dict[str, np.ndarray]]:
        def cat(parts: list) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)

        return {s: {"chars": cat(self.chars[s]), "words": cat(self.words[s])} for s in SPLITS}


def shingle_sets(staging: Path, kind: str, dedup: dict[str, Any], rows: np.ndarray
                 ) -> dict[int, np.ndarray]:
    """Sorted shingle-hash sets of the given staging rows, read back from the staging file (only
    candidate rows of near dedup and of the leakage check: a small share of the corpus)."""
    wanted = np.unique(rows)
    if wanted.size == 0:
        return {}
    texts = normalise_for_dedup(row_text(take_rows(staging, wanted), kind))
    return shingle_sets_of(texts, dedup["ngram"], wanted)


def _write_split_metadata(split_dir: Path, split: str, schema: pa.Schema, fingerprint: str
                          ) -> None:
    """`dataset_info.json` and `state.json` as `Dataset.save_to_disk` writes them, for the Arrow
    file written in place: saving through `datasets` would copy every split once more, reading it
    through a memory map whose pages all count as the run's memory."""
    info = datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(schema))
    info.write_to_directory(str(split_dir))
    state = {"_data_files": [{"filename": SPLIT_DATA_FILE}],
             "_fingerprint": f"{fingerprint}-{split}", "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": split}
    (split_dir / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")


def run_pipeline(
    inputs: list[str | Path],
    name: str,
    recipe_path: str | Path | None = None,
    store: str | Path | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    augment_progress: Callable[[str, int], None] | None = None,
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
                                          _counting(progress, rows_before),
                                          workers_for(paths, workers))
        load_sets = partial(shingle_sets, staging, kind, recipe["dedup"])
        plan = make_plan(keys, recipe, load_sets)
        augmented = augment_train(staging, kind, keys, plan.kept, plan.split, recipe, tmp,
                                  load_sets, augment_progress)
        run.augmented.update(augmented.accepted_by_origin())
        lengths = _second_pass(staging, kind, keys, plan, recipe, tmp, run, version,
                               augmented.path)
        report = build_report(name, version, kind, run, plan, lengths,
                              [s.as_dict() for s in augmented.stats])
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


def validate_only(inputs: list[str | Path], recipe_path: str | Path | None = None,
                  examples: int = 3) -> tuple[int, Counter, dict[str, list[Reject]]]:
    """Read and check inputs without writing anything: rows read, rejects by reason, and the
    first few rejects of each reason (memory stays flat however many rows are bad)."""
    paths = check_inputs(inputs)
    recipe = load_recipe(recipe_path)
    total, by_reason, first = 0, Counter(), {}
    for kind, source, rows in raw_batches(paths, recipe):
        total += len(rows)
        for reject in validate_rows(rows, source, Mapping.for_kind(kind, recipe))[1]:
            by_reason[reject.reason] += 1
            if by_reason[reject.reason] <= examples:
                first.setdefault(reject.reason, []).append(reject)
    return total, by_reason, first
