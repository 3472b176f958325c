"""Resolve the version and the output directory, check the method fits, run the recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.store import open_version

from .checkpoints import output_dir
from .config import TrainConfig
from .data import check_method_fits


@dataclass
class TrainResult:
    dataset: str
    output: Path
    metrics: dict[str, Any]


def run_training(cfg: TrainConfig) -> TrainResult:
    version = open_version(cfg.dataset, cfg.store)
    check_method_fits(version, cfg.method)
    out = output_dir(cfg, version)
    if cfg.method == "classifier":
        from .recipes import classifier as recipe
    else:
        from .recipes import sft as recipe
    metrics = recipe.run(cfg, version, out)
    return TrainResult(version.spec, out, metrics)
