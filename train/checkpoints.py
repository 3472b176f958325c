"""Where a run writes, and whether `--resume` may continue it.

A run directory holds `run.json` from its first start; `--resume` continues from the newest
`checkpoint-*` in it, and refuses when the directory was trained on another dataset version,
model or method (the checkpoint would silently mix data or weights).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import first_line
from dataprep.store import Version

from .config import TrainConfig
from .distributed import agreed, use_cpu
from .errors import TrainError

RUN_FILE = "run.json"
#: Where default run directories go.
RUNS = Path("runs")
#: A run.json is a few kilobytes; a far larger one is not one train wrote.
MAX_RUN_FILE_BYTES = 64 * 2**20
#: What a directory name keeps of a version's name: anything else becomes `_`.
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_part(text: str, limit: int = 80) -> str:
    """`text` as one plain directory-name component: no separator, no `..`, no leading dot or
    dash, no control character, at most `limit` characters. The store validates names, but a
    run directory must land under runs/ whatever a version is called."""
    part = UNSAFE.sub("_", str(text)).replace("..", "_").lstrip(".-")[:limit]
    return part or "_"


def run_prefix(version: Version) -> str:
    """`<name>-<version>-`, the start of every default directory of this version's runs."""
    return f"{safe_part(version.ref.name)}-{safe_part(version.ref.version)}-"


def under_runs(name: str) -> Path:
    path = RUNS / name
    if path.parent != RUNS or path.name != name:  # cannot happen after `safe_part`
        raise TrainError(f"refusing run directory name {name!r}: it is not one folder name")
    return path


def default_output(version: Version, cpu: bool) -> Path:
    """`runs/<name>-<version>-<UTC time>/`, the same directory on every process of a launch."""
    stamp = agreed(datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), cpu)
    return under_runs(run_prefix(version) + stamp)


def latest_run_dir(version: Version) -> Path | None:
    """The newest default run directory of this version (for `--resume` without `--output`);
    a folds or search directory (`-folds-`, `-search-`) is no single run."""
    prefix = run_prefix(version)
    runs = sorted(p for p in RUNS.glob(prefix + "*")
                  if not p.name.removeprefix(prefix).startswith(("folds-", "search-")))
    return runs[-1] if runs else None


def group_dir(cfg: TrainConfig, version: Version, kind: str, what: str) -> Path:
    """The directory of a group of runs (`kind` "folds" or "search"): `--output`, else with
    `--resume` the newest `runs/<name>-<version>-<kind>-*`, else a new one stamped now."""
    if cfg.output:
        return Path(cfg.output)
    prefix = f"{run_prefix(version)}{kind}-"
    if cfg.resume:
        found = sorted(RUNS.glob(prefix + "*"))
        if not found:
            raise TrainError(f"--resume: no earlier {what} of {version.spec} under runs/; give "
                             "--output DIR")
        return found[-1]
    return under_runs(prefix + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


def output_dir(cfg: TrainConfig, version: Version) -> Path:
    if cfg.output:
        return Path(cfg.output)
    if cfg.resume:
        found = latest_run_dir(version)
        if found is None:
            raise TrainError(f"--resume: no earlier run of {version.spec} under runs/; give "
                             "--output DIR")
        return found
    return default_output(version, use_cpu(cfg))


def last_checkpoint(directory: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    found = get_last_checkpoint(str(directory)) if directory.is_dir() else None
    return Path(found) if found else None


def identity(cfg: TrainConfig, version: Version) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed."""
    return {"dataset": version.spec, "model": cfg.model, "method": cfg.method}


def check_resume(directory: Path, cfg: TrainConfig, version: Version) -> Path | None:
    """The checkpoint to resume from (None for a fresh run); refusals are one-line errors."""
    run_file = directory / RUN_FILE
    if not cfg.resume:
        if last_checkpoint(directory) is not None:
            raise TrainError(f"{directory} already holds checkpoints: add --resume to "
                             "continue, or give another --output")
        return None
    checkpoint = last_checkpoint(directory)
    if checkpoint is None or not run_file.is_file():
        raise TrainError(f"--resume: no checkpoint in {directory}")
    earlier = read_run_file(run_file)["identity"]
    now = identity(cfg, version)
    for key in ("dataset", "model", "method"):
        if earlier[key] != now[key]:
            raise TrainError(f"refusing to resume {directory}: it was trained with {key} "
                             f"{earlier[key]!r}, not {now[key]!r}")
    return checkpoint


class Identity(BaseModel):
    dataset: str
    model: str
    method: str


class RunRecord(BaseModel):
    """The part of `run.json` that resuming and every command on a run rely on; the rest
    (parameter counts, packages, ...) is information only."""

    model_config = ConfigDict(extra="allow")

    identity: Identity
    config: TrainConfig
    labels: list[str] | None = None                    # a classifier's, in head order
    label_first_tokens: dict[str, int] | None = None   # label -> its first answer token


def read_run_file(run_file: Path) -> dict[str, Any]:
    """`run.json` as written, once it is known to hold what train wrote: a tampered or truncated
    file is a one-line error naming it and the first wrong field, never a traceback later."""
    why = "not a run record this version of train wrote"
    try:
        if run_file.stat().st_size > MAX_RUN_FILE_BYTES:
            raise TrainError(f"{run_file}: {why} (over {MAX_RUN_FILE_BYTES // 2**20} MB)")
        info = json.loads(run_file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrainError(f"{run_file}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nesting too deep
        first = first_line(exc, 120)
        raise TrainError(f"{run_file}: {why} (not JSON: {first})") from None
    try:
        record = RunRecord.model_validate(info)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the record"
        raise TrainError(f"{run_file}: {why} ({where}: {error['msg'].lower()})") from None
    except TrainError as exc:  # TrainConfig's own checks of contradicting settings
        raise TrainError(f"{run_file}: {why} (config: {exc})") from None
    if record.identity.method == "classifier" and not record.labels:
        raise TrainError(f"{run_file}: {why} (labels: a classifier run lists its labels)")
    return info
