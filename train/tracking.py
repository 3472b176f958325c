"""Experiment tracking, `--report-to tensorboard|wandb|mlflow|none`, always offline and under the
run directory: TensorBoard event files in `<run>/runs/<time>_<host>/` (transformers'
`TensorBoardCallback` default: `TrainingArguments` 5 has no `logging_dir`), Weights & Biases in
offline mode (`WANDB_MODE=offline`, files in `<run>/wandb/`; `wandb sync` uploads them later),
MLflow in a local file store, `<run>/mlruns/` (`mlflow ui --backend-store-uri` on it).

transformers' own integrations do the logging; this module only picks the package's offline
place, and says which package to install when it is missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

TRACKERS = ("tensorboard", "wandb", "mlflow", "none")
#: tracker -> (module transformers imports, pip package)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow")}

#: Environment values this process set for an earlier run: replaced for the next run (a fold or
#: a trial), while a value the user set is left alone.
_ours: dict[str, str] = {}


def _set(name: str, value: str) -> None:
    if name not in os.environ or os.environ[name] == _ours.get(name):
        os.environ[name] = _ours[name] = value


def report_to(tracker: str, output: Path) -> list[str]:
    """`TrainingArguments.report_to` for the tracker, its offline place prepared."""
    from .errors import TrainError

    if tracker == "none":
        return []
    module, package = PACKAGES[tracker]
    if importlib.util.find_spec(module) is None:
        raise TrainError(f"--report-to {tracker} needs the {package} package: "
                         f"pip install {package}")
    if tracker == "wandb":
        _set("WANDB_MODE", "offline")
        _set("WANDB_DIR", str(output))
    elif tracker == "mlflow":
        _set("MLFLOW_TRACKING_URI", (output / "mlruns").resolve().as_uri())
    return [tracker]
