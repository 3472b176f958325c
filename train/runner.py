"""Resolve the version and the output directory, check the method fits, run the recipe (or,
with `--folds`, the k-fold flow of `recipes/kfold.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.store import open_version

from .checkpoints import check_resume, output_dir
from .config import TrainConfig
from .data import check_method_fits
from .folds import check_folds


@dataclass
class TrainResult:
    dataset: str
    output: Path
    metrics: dict[str, Any]
    #: The line the command prints instead of the test metrics (a k-fold run's mean ± std).
    summary: str | None = None


def run_training(cfg: TrainConfig) -> TrainResult:
    version = open_version(cfg.dataset, cfg.store)
    check_folds(cfg, version)
    check_method_fits(version, cfg.method)
    if cfg.method == "classifier":
        from .recipes.classifier import check_labels

        check_labels(version)  # before any model loads
    if cfg.folds is not None:
        from .recipes import kfold

        done = kfold.run(cfg, version)
        return TrainResult(version.spec, done.output, done.summary, done.line)
    out = output_dir(cfg, version)
    check_resume(out, cfg, version)  # a refused or damaged run stops before any model loads
    if cfg.method == "classifier":
        from .recipes import classifier as recipe
    else:
        from .recipes import sft as recipe
    metrics = recipe.run(cfg, version, out)
    return TrainResult(version.spec, out, metrics)
