"""The run, and the one place its order lives:

1. first pass, per batch (in worker processes): validate, then `first_pass_stages`: exclude (the
   rows the exclude files name), clean, language, filter, the recipe's custom stages after the
   stage each names, and the dedup keys;
2. plan, on the keys alone (`plan`): exact dedup, near dedup, split, leakage check;
3. augment, on the planned train rows (`augment`), the recipe's entries in order;
4. second pass, streamed over the staging file: drop the planned duplicates, format, write the
   splits (augmented rows to train);
5. publish: report, manifest, atomic rename into the store.

Stages decide and return verdicts; this module is the only place that writes files and counts
rows: rejects, removals, the staging and signature files, the augmented rows and the splits.
Memory stays flat: the first pass streams kept rows to a staging Arrow file and keeps only compact
per-row keys, and the second pass streams the staging file into the splits.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import SCHEMA_VERSION, __version__
from .augment import AugmenterStats, augment_train, augmented_schema
from .child import Parent, open_parent, place_parent_splits, recipe_dir, refilter_parent
from .child_plan import child_plan
from .clean import CleanStage
from .custom import CustomStage, fingerprint
from .decontam import Decontamination, load_decontamination, resolve_sources
from .duplicate_records import Named, attach_examples, duplicate_reasons, shown_duplicates
from .engine_local import LocalEngine
from .errors import DataprepError
from .exclude import (
    ExcludeFile,
    ExcludeStage,
    check_names,
    exclude_files,
    exclude_report,
    load_exclusion,
)
from .filters import QualityFilter
from .format import format_table
from .ingest import Block, check_inputs, detect_format, file_sha256, parse_block
from .keys import DedupKeys, KeyCollector, Keys, SignatureFile
from .kinds import get_kind
from .langid import LanguageStage
from .lineage import keep_lineage, start_lineage
from .memory import release_freed_memory
from .neardup import ShingleSetTable, staged_shingle_sets
from .plan import Plan, make_plan
from .recipe import load_recipe
from .report import RunCounts, build_report, render_html
from .run_files import RunFiles
from .schemas import validator
from .settings import Recipe
from .sources import Progress, source_label
from .split_files import SplitWriters, load_tokenizer
from .stage import (
    Batch,
    Stage,
    removed_records,
    run_stages,
)
from .staging import staged_rows, staged_schema, staged_values, with_provenance
from .store import (
    SPLITS,
    check_name,
    is_complete,
    latest,
    new_tmp_dir,
    publish,
    read_report,
    set_latest,
    store_root,
    version_id,
    write_version_files,
)
from .strata import row_strata
from .validate import Mapping, Reject, validate_rows
from .workers import workers_for

#: Files the run keeps in the version's temporary directory while it works (removed before
#: publishing).
STAGING_FILE, SIGNATURES_FILE, AUGMENTED_FILE = ".staging.arrow", ".signatures.u32", \
    ".augmented.arrow"


#: Points inside the run where `DATAPREP_STOP_AT=<phase>` stops it (SIGSTOP), so a test can kill
#: a run that is provably inside a named phase: after the first staged batch, before the plan,
#: after the first batch written to the splits, and with every file written but not yet renamed.
PHASES = ("first_pass", "plan", "second_pass", "publish")


def reached(phase: str) -> None:
    """Stop here when asked to (for kill tests and debugging); otherwise nothing."""
    if os.environ.get("DATAPREP_STOP_AT") == phase:
        os.kill(os.getpid(), signal.SIGSTOP)


def first_pass_stages(recipe: Recipe, excluded: tuple[ExcludeFile, ...] = (),
                      refilter: bool = False) -> list[Stage]:
    """The first pass's stages, in order, each built from its section of the recipe. A custom
    stage runs after the built-in stage it names (several after one stage: in recipe order).
    Exclusion runs first: a row the user named goes whatever a later stage would say of it.
    With `refilter` (a parent's stored rows under `--recipe-change`), only the stages that drop
    rows: no cleaning (a parent row is never rewritten) and no dedup keys (it has them)."""
    builtin: list[Stage] = [CleanStage(recipe.clean),
                            LanguageStage(recipe.languages, recipe.language_backend),
                            QualityFilter(recipe.filters)]
    stages: list[Stage] = []
    for stage in builtin:
        if not (refilter and isinstance(stage, CleanStage)):
            stages.append(stage)
        stages += [CustomStage(entry, recipe.base_dir) for entry in recipe.custom_stages
                   if entry.after == stage.name]
    if refilter:
        return stages
    head: list[Stage] = [ExcludeStage(excluded)] if excluded else []
    return head + stages + [DedupKeys(recipe.dedup)]


@dataclass
class BatchOutcome:
    """What one batch produced: kept rows with their keys, and everything dropped, with why."""

    kind: str
    rows_read: int
    rejects: list[Reject]
    source: str = ""
    table: pa.Table | None = None
    removed: list[dict[str, Any]] = field(default_factory=list)
    counters: dict[str, Counter] = field(default_factory=dict)
    keys: dict[str, np.ndarray] = field(default_factory=dict)


def read_and_validate(kind: str, source: str, block: Block, recipe: Recipe
                      ) -> tuple[pa.Table, list[Reject], int]:
    """Parse one block and validate its rows: valid records, rejects, rows read."""
    rows = parse_block(block)
    table, rejects = validate_rows(rows, source, Mapping.for_kind(kind, recipe))
    return table, rejects, len(rows)


def process_batch(kind: str, source: str, block: Block, recipe: Recipe,
                  excluded: tuple[ExcludeFile, ...] = ()) -> BatchOutcome:
    """Parse and validate one block of raw input and run the first-pass stages on the valid
    rows. Writes nothing, so it runs in worker processes (all parsing happens here)."""
    table, rejects, rows_read = read_and_validate(kind, source, block, recipe)
    out = BatchOutcome(kind, rows_read, rejects, source=source)
    if table.num_rows:
        done = run_stages(first_pass_stages(recipe, excluded), Batch(table, get_kind(kind)),
                          examples=True)
        out.table, out.removed, out.counters, out.keys = (done.batch.table, done.removed,
                                                          done.counters, done.keys)
    return out


@dataclass
class RunResult:
    name: str
    version: str
    path: Path
    created: bool
    report: dict[str, Any]


def _first_pass(paths: list[Path], recipe: Recipe, tmp: Path, files: RunFiles,
                progress: Progress, engine, excluded: tuple[ExcludeFile, ...] = ()
                ) -> tuple[str, Path, Keys]:
    """Validate and run the first-pass stages on every batch (on the engine's workers); write
    rejects and removals, stream kept rows to the staging file and their signatures to the
    signature file, and collect the per-row keys dedup and split decide on."""
    staging, run = tmp / STAGING_FILE, files.run
    collector: KeyCollector | None = None
    writer = None
    kind = recipe.kind
    outcomes = engine.outcomes(process_batch, paths, recipe, excluded)
    with open(tmp / SIGNATURES_FILE, "wb") as signatures, closing(outcomes):
        for out in outcomes:
            progress(out.source, out.rows_read)
            run.input += out.rows_read
            files.reject(out.rejects)
            files.remove(out.removed)
            for name, counts in out.counters.items():
                getattr(run, name).update(counts)
            if out.table is None:
                continue
            kind = out.kind
            if writer is None:
                writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), out.table.schema)
                collector = KeyCollector(get_kind(kind).label_column)
            writer.write_table(out.table)
            collector.add(out.table, out.keys, out.source)
            np.ascontiguousarray(out.keys["sigs"], dtype=np.uint32).tofile(signatures)
            reached("first_pass")
    if kind is None:
        raise DataprepError("no input row could be parsed, so the record kind is unknown; "
                            "see rejected rows with `dataprep validate`")
    if writer is None:
        writer = pa.ipc.new_stream(pa.OSFile(str(staging), "wb"), staged_schema(get_kind(kind)))
        collector = KeyCollector(get_kind(kind).label_column)
    writer.close()
    return kind, staging, collector.finish(_signatures(tmp, collector, recipe.dedup.num_perm))


def _signatures(tmp: Path, collector: KeyCollector, num_perm: int):
    """The signature file as a read-only (rows x num_perm) matrix whose rows are read from the
    file as asked for (never all in RAM)."""
    n = len(collector)
    if n == 0:
        return np.zeros((0, num_perm), np.uint32)
    return SignatureFile(tmp / SIGNATURES_FILE, n, num_perm)


def _augment(staging: Path, kind: str, keys: Keys, plan: Plan, recipe: Recipe, tmp: Path,
             run: RunCounts, load_sets, progress) -> tuple[Path | None, list[AugmenterStats]]:
    """Write each augment entry's accepted rows to the augmented staging file, counted."""
    if not recipe.augment:
        return None, []
    record_kind = get_kind(kind)
    path, stats = tmp / AUGMENTED_FILE, []
    with pa.ipc.new_stream(str(path), augmented_schema(record_kind)) as writer:
        for table, stat in augment_train(staging, record_kind, keys, plan.kept, plan.split,
                                         recipe, load_sets, progress, plan.parent):
            writer.write_table(table)
            run.augmented[stat.origin] += table.num_rows
            stats.append(stat)
    return path, stats


def _second_pass(staging: Path, kind: str, keys: Keys, plan: Plan, recipe: Recipe, tmp: Path,
                 files: RunFiles, version: str, augmented: Path | None,
                 decontam: Decontamination | None = None
                 ) -> tuple[dict[str, dict[str, np.ndarray]], np.ndarray]:
    """Drop duplicates and contaminated train rows, route kept rows to their split, format,
    and write each split; then append the augmented rows (checked too) to train. Returns
    length arrays per split, and which staging rows decontamination removed."""
    record_kind, labels = get_kind(kind), sorted(keys.label_names)
    if plan.parent is not None:  # a child's prompts name its parent's labels too
        old = plan.parent.strings("label").drop_null().unique().to_pylist()
        labels = sorted(set(labels) | set(old))

    def formatted(table: pa.Table) -> pa.Table:
        return format_table(table, record_kind, recipe.format, labels)

    empty = formatted(with_provenance(staged_schema(record_kind).empty_table()))
    out = SplitWriters(tmp, empty.schema, record_kind, files.run, recipe.report)

    contaminated = np.zeros(len(plan.kept), bool)

    def write(staged: pa.Table, split: np.ndarray, unit: np.ndarray,
              rows: np.ndarray | None = None) -> None:
        texts = record_kind.row_text(staged)
        if decontam is not None:  # a train row sharing an n-gram with an evaluation row goes
            rows = np.full(len(split), -1) if rows is None else rows
            records, (staged, texts, split, unit, left) = decontam.remove(staged, texts, split,
                                                                          unit, rows)
            files.remove(records)
            gone = np.setdiff1d(rows, left)
            contaminated[gone[gone >= 0]] = True
        out.write(formatted(staged), texts, split, unit)

    named, lo = Named.owners(staging, plan), 0
    shown = shown_duplicates(staging, record_kind, plan)
    with pa.OSFile(str(staging)) as source:
        for batch in pa.ipc.open_stream(source):
            table = pa.Table.from_batches([batch])
            hi = lo + table.num_rows
            reasons, extra = duplicate_reasons(plan, named, lo, hi)
            found: Counter = Counter()
            keep, records = removed_records(table, reasons, "dedup", extra)
            attach_examples(records, keep, lo, shown)
            files.remove(records, counter=found)
            for reason, count in found.items():
                files.run.duplicates[reason.removeprefix("duplicate:")] += count
            kept = keep.to_numpy(zero_copy_only=False)
            staged = with_provenance(table.filter(keep))
            write(staged, plan.split[lo:hi][kept], plan.unit[lo:hi][kept],
                  lo + np.flatnonzero(kept))
            reached("second_pass")
            lo = hi
    if augmented is not None:
        unit_of = _train_units(staging, augmented, plan)
        with pa.OSFile(str(augmented)) as source:
            for batch in pa.ipc.open_stream(source):
                staged = pa.Table.from_batches([batch])
                units = np.array([unit_of[p] for p in staged.column("parent_id").to_pylist()],
                                 dtype=np.int64)
                write(staged, np.zeros(staged.num_rows, np.int8), units)
    lengths = out.close(version)
    if augmented is not None:
        augmented.unlink()
    return lengths, contaminated


#: Train rows whose ids `_train_units` reads back at a time.
TRAIN_UNIT_GROUP = 65536


def _train_units(staging: Path, augmented: Path, plan: Plan) -> dict[str, int]:
    """Split unit by id of the kept train rows that are augmented rows' parents: an augmented
    row takes its parent's (named by `parent_id`), so a fold never trains on a copy of a row it
    holds out. Where an input repeats an id, the first train row's unit is taken. Only parents'
    ids are held (read back from the staging file), not every train row's."""
    with pa.OSFile(str(augmented)) as source:
        parents = pa.chunked_array([b.column("parent_id") for b in pa.ipc.open_stream(source)],
                                   pa.string()).unique()
    unit_of: dict[str, int] = {}
    rows = np.flatnonzero(plan.kept & (plan.split == 0))
    for here, table in staged_rows(staging, rows, TRAIN_UNIT_GROUP, columns=["id"]):
        ids = table.column("id")
        hit = pc.is_in(ids, value_set=parents).to_numpy(zero_copy_only=False)
        for row, row_id in zip(here[hit].tolist(), ids.filter(pa.array(hit)).to_pylist(),
                               strict=True):
            unit_of.setdefault(row_id, int(plan.unit[row]))
    return unit_of


def shingle_sets(staging: Path, kind: str, ngram: int, rows: np.ndarray, workers: int = 1
                 ) -> ShingleSetTable:
    """Sorted shingle-hash sets of the given staging rows, read back from the staging file (only
    candidate rows of near dedup and of the leakage check: a small share of the corpus)."""
    return staged_shingle_sets(staging, kind, ngram, rows, workers)


def run_pipeline(
    inputs: list[str | Path],
    name: str,
    recipe_path: str | Path | None = None,
    store: str | Path | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    augment_progress: Callable[[str, int], None] | None = None,
    exclude: list[str | Path] | None = None,
    parent: str | None = None,
    recipe_change: bool = False,
    engine: str = "local",
    ray_address: str | None = None,
) -> RunResult:
    """Make (or find) the version of `name` built from `inputs` with the recipe, without the
    rows that the recipe's and `exclude`'s exclude files name. With `parent` (`NAME@VERSION`),
    a child version: the parent's rows in their splits, plus the new rows, put through the
    parent's recipe and deduplicated against its rows (`child.py`, `child_plan.py`); with
    `recipe_change`, through the recipe given, the parent's rows re-filtered (`refilter.py`).
    `engine`: where the first pass runs, "local" (worker processes) or "ray" (Ray Data, on a
    local Ray or the cluster at `ray_address`); it makes the same version."""
    check_name(name)
    if engine not in ENGINES:
        raise DataprepError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    if recipe_change and not parent:
        raise DataprepError("--recipe-change needs --from (it changes a child's recipe)")
    paths = check_inputs(inputs)
    root = store_root(store)
    origin = open_parent(root, parent, recipe_path, paths, recipe_change) if parent else None
    recipe = origin.recipe if origin else load_recipe(recipe_path)
    if recipe.report.tokenizer:  # loaded (once a process) before any work: a bad name fails now
        load_tokenizer(recipe.report.tokenizer)
    inputs_info = [{"path": source_label(p), "sha256": file_sha256(p), "format": detect_format(p)}
                   for p in paths]
    resolved = recipe.resolved()
    if recipe.custom_stages:  # the user's code is part of what made the version
        resolved["custom_stage_sources"] = fingerprint(recipe.custom_stages, recipe.base_dir)
    excluded = _exclusions(recipe, exclude, paths)
    if excluded:  # which rows to drop is part of what made the version
        resolved["exclude_sources"] = [{"path": f.label, "sha256": f.sha256} for f in excluded]
    evaluation = resolve_sources(recipe.decontaminate.sources, recipe.base_dir, root)
    if evaluation:  # the evaluation sources' content is part of what made the version
        resolved["decontaminate_sources"] = [s.resolved() for s in evaluation]
    version = version_id(inputs_info, resolved, __version__, SCHEMA_VERSION,
                         origin.version if origin else None)
    final = root / name / version
    if is_complete(final):
        set_latest(root, name, version)
        return RunResult(name, version, final, False, read_report(final))

    decontam = load_decontamination(evaluation, recipe.decontaminate.ngram, root,
                                    recipe.max_row_bytes)  # read here: a bad row fails now
    previous = origin.version if origin else latest(root, name)
    first_pass = _engine(engine, ray_address, paths, workers, progress is not None)
    tmp = new_tmp_dir(root, name, version)
    try:
        run = RunCounts()
        rows_before: dict[str, int] = {}
        files = RunFiles(tmp, run)
        try:
            kind, staging, keys = _first_pass(paths, recipe, tmp, files,
                                              _counting(progress, rows_before),
                                              first_pass, excluded)
            reached("plan")
            plan_workers = workers_for(paths, workers)
            load_sets = partial(shingle_sets, staging, kind, recipe.dedup.ngram,
                                workers=plan_workers)
            release_freed_memory()  # before the plan forks its workers, which inherit it all
            strata = row_strata(keys, recipe.split.stratify_by, get_kind(kind), recipe.fields,
                                staging)
            refiltered = refilter_parent(origin, first_pass_stages(recipe, refilter=True),
                                         decontam, files.remove)
            plan = _plan(keys, recipe, load_sets, strata, plan_workers, staging, origin)
            release_freed_memory()
            augmented, stats = _augment(staging, kind, keys, plan, recipe, tmp, run, load_sets,
                                        augment_progress)
            start_lineage(tmp, plan.parent)
            lengths, contaminated = _second_pass(staging, kind, keys, plan, recipe, tmp, files,
                                                 version, augmented, decontam)
            keep_lineage(tmp, staging, keys, plan, strata, contaminated)
            for path in (staging, tmp / SIGNATURES_FILE):
                path.unlink(missing_ok=True)
            if origin:
                place_parent_splits(tmp, origin, refiltered, files.remove, run, kind)
        finally:
            files.close()
        report = build_report(name, version, kind, run, plan, lengths,
                              [s.as_dict() for s in stats],
                              exclude_report(excluded, run.exclude_matched, run.excluded),
                              decontam.report() if decontam else None,
                              recipe=recipe)
        manifest = {
            "name": name, "version": version, "parent": previous,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "kind": kind,
            "inputs": [{**info, "rows": rows_before.get(info["path"], 0)} for info in inputs_info],
            "recipe": resolved, "recipe_dir": recipe_dir(recipe, recipe_path, origin),
            "package_version": __version__,
            "schema_version": SCHEMA_VERSION, "counts": report["counts"],
            "splits": {s: run.output[s] for s in SPLITS},
        }
        validator("manifest").validate(manifest)
        write_version_files(tmp, manifest, report, render_html(report))
        reached("publish")
        created = publish(tmp, root, name, version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return RunResult(name, version, final, created, report)


#: Where the first pass can run (`engine_local.py`, `engine_ray.py`).
ENGINES = ("local", "ray")


def _engine(name: str, ray_address: str | None, paths: list[Path], workers: int | None,
            progress: bool):
    """The first pass's engine; the Ray one imported only when asked for."""
    if name == "ray":
        from .engine_ray import RayEngine

        return RayEngine(ray_address, progress)
    return LocalEngine(workers_for(paths, workers))


def _plan(keys: Keys, recipe: Recipe, load_sets, strata, workers: int, staging: Path,
          origin: Parent | None) -> Plan:
    """A fresh version's plan, or a child's (the new rows around the parent's)."""
    def sources_of(rows: np.ndarray) -> list[str]:
        return staged_values(staging, rows, "source").to_pylist()

    if origin is None:
        return make_plan(keys, recipe, load_sets, strata, workers, sources_of)
    return child_plan(origin.lineage, keys, recipe, load_sets, strata, workers, sources_of)


def _exclusions(recipe: Recipe, exclude: list[str | Path] | None, inputs: list[Path]
                ) -> tuple[ExcludeFile, ...]:
    """The recipe's exclude files (relative to its folder) and the command line's, hashed and
    read once here, so a bad line fails the run before any work is done."""
    paths = [recipe.base_dir / p for p in recipe.exclude] + [Path(p) for p in exclude or []]
    files = tuple(exclude_files([Path(source_label(p)) for p in paths]))
    if files:
        check_names(load_exclusion(files), inputs)
    return files


def _counting(progress: Progress | None, rows: dict[str, int]) -> Progress:
    def tick(source: str, n: int) -> None:
        rows[source] = rows.get(source, 0) + n
        if progress:
            progress(source, n)

    return tick
