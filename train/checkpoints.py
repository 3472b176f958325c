"""Where a run writes, and whether `--resume` may continue it.

A run directory holds `run.json` from its first start; `--resume` continues from the newest
`checkpoint-*` in it, and refuses when the directory was trained on another dataset version,
model or method (the checkpoint would silently mix data or weights).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dataprep.store import Version

from .config import TrainConfig
from .distributed import agreed, use_cpu
from .errors import TrainError

RUN_FILE = "run.json"


def default_output(version: Version, cpu: bool) -> Path:
    """`runs/<name>-<version>-<UTC time>/`, the same directory on every process of a launch."""
    stamp = agreed(datetime.now(UTC).strftime("%Y%m%d-%H%M%S"), cpu)
    return Path("runs") / f"{version.ref.name}-{version.ref.version}-{stamp}"


def latest_run_dir(version: Version) -> Path | None:
    """The newest default run directory of this version (for `--resume` without `--output`);
    a folds or search directory (`-folds-`, `-search-`) is no single run."""
    prefix = f"{version.ref.name}-{version.ref.version}-"
    runs = sorted(p for p in Path("runs").glob(prefix + "*")
                  if not p.name.removeprefix(prefix).startswith(("folds-", "search-")))
    return runs[-1] if runs else None


def group_dir(cfg: TrainConfig, version: Version, kind: str, what: str) -> Path:
    """The directory of a group of runs (`kind` "folds" or "search"): `--output`, else with
    `--resume` the newest `runs/<name>-<version>-<kind>-*`, else a new one stamped now."""
    if cfg.output:
        return Path(cfg.output)
    prefix = f"{version.ref.name}-{version.ref.version}-{kind}-"
    if cfg.resume:
        found = sorted(Path("runs").glob(prefix + "*"))
        if not found:
            raise TrainError(f"--resume: no earlier {what} of {version.spec} under runs/; give "
                             "--output DIR")
        return found[-1]
    return Path("runs") / (prefix + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))


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
    earlier = json.loads(run_file.read_text(encoding="utf-8"))["identity"]
    now = identity(cfg, version)
    for key in ("dataset", "model", "method"):
        if earlier[key] != now[key]:
            raise TrainError(f"refusing to resume {directory}: it was trained with {key} "
                             f"{earlier[key]!r}, not {now[key]!r}")
    return checkpoint
