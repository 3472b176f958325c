"""Which rows each fold of k-fold cross-validation holds out, and the checks made before any
training starts.

Folds cover train + validation (test stays the test of every fold). They are built from the
version's split units (`unit`: a near-duplicate cluster joined with its `group_by` group), so no
unit straddles two folds, as none straddles two splits, and are stratified by `label`:
scikit-learn's `StratifiedGroupKFold` does both. Augmented rows (`parent_id` set) are never held
out: they are in training in every fold, and carry their parent's unit, so a fold whose parent
row is held out drops its augmented copies from training too (a copy of a held-out row would
leak it). The out-of-fold predictions therefore cover every non-augmented train and validation
row exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataprep.store import Version

from .config import TrainConfig
from .errors import TrainError

UNIT_COLUMN = "unit"
#: The splits folds are made of, in the order their rows are pooled.
POOLED = ("train", "validation")


@dataclass
class Folds:
    """The fold of every pooled row (train rows first, then validation rows)."""

    k: int
    fold: np.ndarray          # 1..k: the fold holding the row out; 0: augmented, never held out
    unit: np.ndarray
    label: np.ndarray         # label strings
    n_train: int              # pooled rows below this are the version's train rows

    def held_out(self, k: int) -> np.ndarray:
        """Pooled row numbers fold k predicts."""
        return np.flatnonzero(self.fold == k)

    def training(self, k: int) -> np.ndarray:
        """Pooled row numbers fold k trains on: the other folds, and the augmented rows whose
        unit is not held out."""
        out = set(self.unit[self.fold == k].tolist())
        keep = (self.fold != k) & ~np.isin(self.unit, list(out))
        return np.flatnonzero(keep)


def pooled_column(version: Version, name: str) -> list:
    """One column of train then validation, as a list."""
    return [v for split in POOLED for v in version.data[split][name]]


def check_folds(cfg: TrainConfig, version: Version) -> None:
    """The one-line refusals of `--folds`, all before anything is loaded or trained."""
    k = cfg.folds
    if k is None:
        return
    if k < 2:
        raise TrainError(f"--folds {k}: k-fold cross-validation needs at least 2 folds")
    columns = version.data["train"].column_names
    if "label" not in columns or not version.labels():
        raise TrainError(f"--folds: {version.spec} holds {version.kind} records; folds are "
                         "stratified by label and need a classification version")
    if cfg.method != "classifier":
        raise TrainError(f"--folds needs --method classifier, not {cfg.method}: the "
                         "out-of-fold predictions (and the label issues found from them) are "
                         "per-label probabilities, which only a classifier gives")
    if UNIT_COLUMN not in columns:
        raise TrainError(f"--folds: {version.spec} was made before split units were recorded: "
                         "run dataprep run again")
    original = [p is None for p in pooled_column(version, "parent_id")]
    units = np.asarray(pooled_column(version, UNIT_COLUMN))[original]
    labels = np.asarray(pooled_column(version, "label"), dtype=object)[original]
    per_label = {str(name): len(set(units[labels == name].tolist()))
                 for name in sorted(set(labels.tolist()))}
    rarest = min(per_label, key=per_label.get)
    have = per_label[rarest]
    if have < k:
        fix = f"use --folds {have} or fewer" if have >= 2 else "too few for k-fold"
        raise TrainError(f"--folds {k}: label {rarest!r} has only {have} split unit(s) in "
                         f"train + validation of {version.spec}, and every fold needs one: "
                         f"{fix}")

def assign_folds(version: Version, k: int, seed: int) -> Folds:
    """Seeded, stratified, grouped folds of the pooled train + validation rows."""
    from sklearn.model_selection import StratifiedGroupKFold

    parent = pooled_column(version, "parent_id")
    unit = np.asarray(pooled_column(version, UNIT_COLUMN), dtype=np.int64)
    label = np.asarray(pooled_column(version, "label"), dtype=object)
    original = np.flatnonzero([p is None for p in parent])
    fold = np.zeros(len(parent), dtype=np.int64)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for number, (_, held) in enumerate(splitter.split(original, label[original].astype(str),
                                                      groups=unit[original]), start=1):
        fold[original[held]] = number
    return Folds(k, fold, unit, label, version.data["train"].num_rows)
