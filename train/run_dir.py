"""A finished run directory read back: what every command after training starts from.

`train predict|evaluate|report|serve|export runs/<run>` all open the run here: its settings and
labels from `run.json`, its metrics, the dataset version it was trained on (found in `--store`,
else $DATAPREP_STORE or ./store, else the store the run was trained from), and the model, loaded
for inference on a device. A directory that is not a finished run is a one-line error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from common.errors import UserError
from dataprep.store import Version, open_version

from .checkpoints import RUN_FILE, read_run_file
from .errors import TrainError

#: Files one of which a finished run holds: the adapter, or the full model's weights.
WEIGHT_FILES = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")


@dataclass
class TrainedRun:
    """A finished run: `run.json`'s record, and the paths and facts the commands need."""

    path: Path
    info: dict[str, Any]
    store: str | None = None     # --store as given, if it was

    @property
    def config(self) -> dict[str, Any]:
        return self.info["config"]

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def is_classifier(self) -> bool:
        return self.method == "classifier"

    @property
    def dataset(self) -> str:
        """The version it was trained on, as NAME@VERSION."""
        return self.info["identity"]["dataset"]

    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """metrics.json, {} where there is none; a damaged one is a one-line error."""
        path = self.path / "metrics.json"
        if not path.is_file():
            return {}
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, RecursionError) as exc:
            raise TrainError(f"{path}: not valid JSON ({str(exc)[:120]})") from None
        if not isinstance(metrics, dict):
            raise TrainError(f"{path}: not the metrics train wrote (not a JSON object)")
        return metrics

    @cached_property
    def version(self) -> Version:
        """The run's own dataset version."""
        return self.open_dataset(self.dataset)

    @cached_property
    def labels(self) -> list[str]:
        """Class names in index order: a classifier's head, or an SFT run's version's labels
        (which it scores by their first answer token); [] for an SFT run on unlabelled data."""
        if self.is_classifier:
            return list(self.info["labels"])
        return list(self.info.get("label_first_tokens") or [])

    def open_dataset(self, spec: str) -> Version:
        """A version by NAME@VERSION: from --store if given, else the default store, else the
        store the run was trained from."""
        stores = [self.store] if self.store else [None, self.config.get("store")]
        error: UserError | None = None
        for store in dict.fromkeys(stores):
            try:
                return open_version(spec, store)
            except UserError as exc:
                error = error or exc
        raise error  # type: ignore[misc]

    def load(self, device: str = "auto"):
        """(model, tokenizer) in eval mode on the device (see `load.load_run`)."""
        from common.models import pick_device

        from .load import load_run

        model, tokenizer = load_run(self.path)
        return model.to(pick_device(device)).eval(), tokenizer


def open_run(path: str | Path, store: str | None = None) -> TrainedRun:
    """The run in `path`, or a one-line error saying why it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise TrainError(f"{path}: no such run directory")
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise TrainError(f"{path}: not a run directory (no {RUN_FILE}; runs are written by "
                         "`train NAME@VERSION --model M`)")
    info = read_run_file(run_file)
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise TrainError(f"{path}: holds no saved model (did training finish? "
                         "`train ... --resume` continues it)")
    return TrainedRun(path, info, store)
