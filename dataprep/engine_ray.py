"""The Ray engine: the first pass's batches mapped over Ray Data, on a local Ray or a cluster.

What runs where:
- driver (this process): each file's kind from its first rows (`sources.file_blocks`, as the
  local engine), and the plan of read tasks: a plain JSON Lines file is cut into byte ranges at
  line boundaries, each with the number of its first line, found by counting newlines (the
  driver reads the bytes once and holds none of them); every other file is one part (CSV, JSON
  arrays and transcripts hold records that span lines, a .gz cannot be read from the middle:
  one part a file); a Parquet file is cut into runs of row groups, from its footer.
- Ray workers: a read task reads its part's bytes into the project's own blocks (the readers
  of the local engine, so `source` stays `file:line` and a bad row is a reject, never a failed
  task), and a map task runs the same `process_batch` on each block.
- driver again: the results, in input order (`preserve_order`), streamed back one at a time to
  the pipeline, which writes staging, rejects and removals as it does for the local engine.

Ray Data's blocks carry each project block, and each result, pickled in one binary column: a
block's rows are parsed only inside `process_batch`, and a result holds Arrow tables, numpy
keys and rejects that no single Arrow schema describes. A `DataprepError` in a worker travels
back as such a result and is raised on the driver as itself, the same one-line error as
locally (Ray would wrap it in its own exception types). `import ray` happens inside functions:
`dataprep --help` stays fast and Ray stays an optional extra.
"""

from __future__ import annotations

import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from common.errors import first_line

from .errors import DataprepError
from .ingest import Block, detect_format, parquet_blocks, read_blocks
from .line_blocks import BLOCK_BYTES, line_blocks
from .settings import Recipe
from .sources import file_blocks, source_label

RAY_EXTRA = 'pip install -e ".[ray]"'
#: Read tasks a CPU, at least, so a slow part does not leave the others idle at the end.
PARTS_PER_CPU = 4
#: Bounds of a JSON Lines part: small parts cost a task each, big ones hold a worker long.
MIN_PART_BYTES, MAX_PART_BYTES = BLOCK_BYTES, 64 << 20
#: Retries of a map task whose worker died (Ray Data's default is forever: a row that kills
#: its worker every time, a crash in a library or the OOM killer, would hang the run).
TASK_RETRIES = 3
PAYLOAD = "payload"


def import_ray():
    """Ray and Ray Data, or a one-line error naming the extra that installs them."""
    try:
        import ray
        import ray.data  # noqa: F401 (the data extra)
    except ImportError:
        raise DataprepError(f"--engine ray needs Ray Data, which is not installed: run "
                            f"{RAY_EXTRA}") from None
    return ray


@dataclass(frozen=True, slots=True)
class Part:
    """One read task's share of the input: a whole file, a JSON Lines byte range `span` =
    (start, stop, number of its first line), or Parquet row groups with the number of their
    first row. `path` is absolute (workers may run elsewhere), `source` is how rows and
    errors name the file."""

    path: str
    source: str
    kind: str
    size: int
    span: tuple[int, int, int] | None = None
    row_groups: tuple[tuple[int, ...], int] | None = None  # Parquet: groups, first row number


def line_spans(path: Path, target: int, chunk_bytes: int = BLOCK_BYTES
               ) -> Iterator[tuple[int, int, int]]:
    """(start, stop, first line) of parts of about `target` bytes of a plain file, each cut
    just after a newline. Hand-written: it only counts newlines (bytes.count, C speed) and
    holds one chunk; no library plans line-aligned ranges with line numbers."""
    start, line, pos, newlines = 0, 1, 0, 0
    with path.open("rb") as fh:
        while chunk := fh.read(chunk_bytes):
            i = 0
            while True:
                want = max(start + target - pos, i)
                cut = chunk.find(b"\n", want) if want < len(chunk) else -1
                if cut < 0:
                    newlines += chunk.count(b"\n", i)
                    break
                newlines += chunk.count(b"\n", i, cut + 1)
                yield start, pos + cut + 1, line
                start, line, newlines, i = pos + cut + 1, line + newlines, 0, cut + 1
            pos += len(chunk)
    if pos > start:
        yield start, pos, line


def plan_parts(paths: list[Path], recipe: Recipe, cpus: int) -> list[Part]:
    """The read tasks, in input order (driver). Reads each file's first rows for its kind and
    counts the newlines of plain JSON Lines files; holds no rows."""
    total = sum(p.stat().st_size for p in paths)
    target = min(MAX_PART_BYTES, max(MIN_PART_BYTES, total // max(1, cpus * PARTS_PER_CPU)))
    parts: list[Part] = []
    for path, kind, blocks in file_blocks(paths, recipe):
        blocks.close()  # the kind is known; the workers read the rows
        where, source = str(path.resolve()), source_label(path)
        fmt = detect_format(path)
        if fmt == "jsonl" and not path.name.lower().endswith(".gz"):
            parts += [Part(where, source, kind, stop - start, (start, stop, line))
                      for start, stop, line in line_spans(path, target)]
        elif fmt == "parquet":
            parts += [Part(where, source, kind, size, row_groups=(groups, first))
                      for groups, first, size in row_group_parts(path, target)]
        else:
            parts.append(Part(where, source, kind, path.stat().st_size))
    return parts


def row_group_parts(path: Path, target: int) -> Iterator[tuple[tuple[int, ...], int, int]]:
    """(row groups, number of their first row, bytes) of runs of consecutive row groups of
    about `target` bytes, from the file's footer (a file whose footer cannot be read is one
    part: its reader says why, as locally)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # pyarrow raises several types; the worker's reader reports it
        yield (), 0, path.stat().st_size
        return
    groups: list[int] = []
    first = row = 1
    size = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        groups.append(i)
        size += group.total_byte_size
        row += group.num_rows
        if size >= target:
            yield tuple(groups), first, size
            groups, first, size = [], row, 0
    if groups or meta.num_row_groups == 0:
        yield tuple(groups), first, size


def part_blocks(part: Part, max_row_bytes: int) -> Iterator[Block]:
    """A part's blocks, read by the local engine's readers (worker)."""
    path = Path(part.path)
    if part.span is not None:
        for lines in line_blocks(path, max_row_bytes, span=part.span):
            yield Block("jsonl", max_row_bytes, lines=lines)
    elif part.row_groups is not None and part.row_groups[0]:
        groups, first = part.row_groups
        yield from parquet_blocks(path, max_row_bytes, list(groups), first, part.source)
    else:
        yield from read_blocks(path, max_row_bytes)


def _payload(value: Any):
    import pyarrow as pa

    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return pa.table({PAYLOAD: pa.array([data], pa.large_binary())})


def read_part(part: Part, max_row_bytes: int) -> Iterator[Any]:
    """A read task: one Ray block per project block, (kind, source, block) pickled; a file
    that cannot be read to its end becomes its one-line error, carried as the last block."""
    try:
        for block in part_blocks(part, max_row_bytes):
            yield _payload((part.kind, part.source, block))
    except DataprepError as exc:  # a reader names the file it opened, the user another path
        yield _payload(DataprepError(str(exc).replace(part.path, part.source)))


def process_row(row: dict[str, Any], process: Callable[..., Any], recipe: Recipe,
                excluded: tuple) -> dict[str, Any]:
    """A map task: `process` (the pipeline's `process_batch`) on one block; its result, or the
    one-line error it raised, pickled for the driver."""
    item = pickle.loads(row[PAYLOAD])
    if isinstance(item, DataprepError):
        return row
    try:
        out = process(*item, recipe, excluded)
    except DataprepError as exc:
        out = exc
    return {PAYLOAD: pickle.dumps(out, protocol=pickle.HIGHEST_PROTOCOL)}


def input_datasource(parts: list[Part], max_row_bytes: int):
    """A Ray Data datasource of the planned parts, one read task each, in order."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class InputParts(Datasource):
        def get_name(self) -> str:
            return "DataprepInput"

        def estimate_inmemory_data_size(self) -> int:
            return sum(p.size for p in parts)

        def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                           data_context=None) -> list[ReadTask]:
            return [ReadTask(partial(read_part, part, max_row_bytes),
                             BlockMetadata(num_rows=None, size_bytes=part.size,
                                           input_files=[part.path], exec_stats=None))
                    for part in parts]

    return InputParts()


def ray_failure(exc: BaseException) -> DataprepError:
    """The one-line error of a failed Ray run: a DataprepError Ray wrapped, as itself; else
    what failed (the cause of a task's exception, a dead worker) and that nothing was written."""
    seen, cause = set(), exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, DataprepError):
            return cause
        seen.add(id(cause))
        cause = getattr(cause, "cause", None) or cause.__cause__
    inner = getattr(exc, "cause", None) or exc
    return DataprepError(f"the Ray run failed ({type(inner).__name__}: {first_line(inner)}); "
                         "nothing was written; Ray's logs: /tmp/ray/session_latest/logs")


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, connected for the run: an existing connection (a caller's `ray.init`) kept as it
    is; else the cluster at `address`, or a local Ray with this machine's CPUs, shut down at
    the end. Ray's own start-up messages are kept below errors: a run prints its report."""
    # No usage statistics leave the machine unless the user opts in (Ray's own switches; Ray
    # Data's poller of them also logs from a thread as the process exits).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:  # "local": never a cluster that $RAY_ADDRESS names
            ray.init(address="local", num_cpus=os.cpu_count() or 1, **quiet)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"join the Ray cluster at {address}" if address else "start a local Ray"
        raise DataprepError(f"cannot {where}: {first_line(exc)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


class RayEngine:
    """The first pass on Ray Data (see the module docstring); `progress`: Ray Data's own
    progress bars (on a terminal) and its warnings, shown while it runs."""

    def __init__(self, address: str | None = None, progress: bool = True) -> None:
        import_ray()  # missing: the one-line error now, before any work
        self.address, self.progress = address, progress

    def outcomes(self, process: Callable[..., Any], paths: list[Path], recipe: Recipe,
                 excluded: tuple = ()) -> Iterator[Any]:
        with ray_session(self.address) as ray:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            parts = plan_parts(paths, recipe, cpus)
            if not parts:
                return
            yield from self._run(ray, parts, process, recipe, excluded)

    def _run(self, ray, parts: list[Part], process, recipe: Recipe, excluded: tuple
             ) -> Iterator[Any]:
        context = ray.data.DataContext.get_current()
        saved = (context.execution_options.preserve_order, context.enable_progress_bars)
        context.execution_options.preserve_order = True  # results in input order
        context.enable_progress_bars = self.progress
        # Ray Data's info lines (the plan, start and end, and progress where stderr is not a
        # terminal) are not the run's output; its bars and warnings are, unless quiet.
        logger = logging.getLogger("ray.data")
        level = logger.level
        logger.setLevel(logging.WARNING if self.progress else logging.ERROR)
        try:
            with warnings.catch_warnings():  # Ray 2.60 has no named max_retries parameter
                warnings.simplefilter("ignore", DeprecationWarning)
                dataset = ray.data.read_datasource(
                    input_datasource(parts, recipe.max_row_bytes),
                    override_num_blocks=len(parts),
                ).map(process_row, fn_args=(process, recipe, excluded),
                      max_retries=TASK_RETRIES)
            yield from _results(dataset)
        finally:
            context.execution_options.preserve_order, context.enable_progress_bars = saved
            logger.setLevel(level)


def _results(dataset) -> Iterator[Any]:
    """The dataset's results, unpickled one at a time on the driver (Ray Data streams them:
    the dataset is never materialised); a carried one-line error is raised here."""
    rows = iter(dataset.iter_rows())
    while True:
        try:
            row = next(rows, None)
        except Exception as exc:  # a task failed beyond its retries
            raise ray_failure(exc) from None
        if row is None:
            return
        out = pickle.loads(row[PAYLOAD])
        if isinstance(out, DataprepError):
            raise out
        yield out
