"""`train NAME@VERSION --method classifier --folds K`: k-fold cross-validation of a classifier,
its out-of-fold predictions, and the rows whose label is likely wrong.

The version is tokenized and the base model loaded once (`classifier.prepare`); each fold indexes
the tokenized rows (`Dataset.select`, see `folds.py` for which) and trains a fresh in-memory
copy of the base weights into `<dir>/fold-k/`, a normal run directory whose `run.json` says
which fold it is. `<dir>` is `--output` or `runs/<name>-<version>-folds-<UTC time>/`.

Checkpoint selection: none. A fold trains for its epochs (or `--max-steps`) without early
stopping and keeps its last weights; its validation split is the held-out fold, which is only
evaluated, never used to stop or to pick a checkpoint, so the out-of-fold probabilities are
those of a model the held-out rows had no say in. The trained model in memory then predicts
the held-out fold (softmax, batched, no reload) into `fold-k/predictions.jsonl`.

`--resume` keeps finished folds (`metrics.json` and `predictions.jsonl` present) untouched,
continues an unfinished one from its last checkpoint, and trains the rest. At the end, in
`<dir>`: `oof_predictions.jsonl`, `label_issues.jsonl` (`label_issues.py`), `folds.json`
(per-fold metrics, their mean and sample standard deviation, the settings) and `report.html`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.store import Version

from ..checkpoints import RUN_FILE, group_dir, last_checkpoint
from ..config import TrainConfig
from ..errors import TrainError
from ..folds import Folds, assign_folds, pooled_column
from ..label_issues import LABEL_ISSUES_FILE, find_issues
from ..loop import fit
from ..metrics import accuracy_f1
from ..outputs import write_json
from . import classifier

OOF_FILE, FOLDS_FILE, FOLD_PREDICTIONS = "oof_predictions.jsonl", "folds.json", "predictions.jsonl"
#: Per-evaluation bookkeeping: not a measure of the model, left out of the mean and spread.
NOT_MEASURES = ("runtime", "samples_per_second", "steps_per_second", "epoch")
CHECKPOINT_SELECTION = ("last weights of each fold: no early stopping and no best-checkpoint "
                        "selection on the held-out fold")


@dataclass
class FoldsResult:
    output: Path
    summary: dict[str, Any]      # what folds.json holds
    line: str                    # the one-line summary the command prints


def folds_dir(cfg: TrainConfig, version: Version) -> Path:
    """`--output`, else the newest earlier folds run (`--resume`) or a new one."""
    return group_dir(cfg, version, "folds", "--folds run")


def check_earlier_folds(cfg: TrainConfig, out: Path) -> None:
    """Without --resume, refuse a directory that holds folds; with it, refuse one made with
    other folds (their held-out rows would not be these)."""
    for run_file in sorted(out.glob(f"fold-*/{RUN_FILE}")):
        if not cfg.resume:
            raise TrainError(f"{out} already holds folds: add --resume to continue, or give "
                             "another --output")
        earlier = json.loads(run_file.read_text(encoding="utf-8"))
        folds, seed = earlier.get("fold", {}).get("folds"), earlier["config"].get("seed")
        if (folds, seed) != (cfg.folds, cfg.seed):
            raise TrainError(f"refusing to resume {out}: its folds were made with --folds "
                             f"{folds} --seed {seed}, not --folds {cfg.folds} --seed {cfg.seed}")


def run(cfg: TrainConfig, version: Version) -> FoldsResult:
    out = folds_dir(cfg, version)
    check_earlier_folds(cfg, out)
    folds = assign_folds(version, cfg.folds, cfg.seed)
    setup = classifier.prepare(cfg, version)
    from datasets import concatenate_datasets

    pooled = concatenate_datasets([setup.splits["train"], setup.splits["validation"]])
    names = {"id": pooled_column(version, "id"), "source": pooled_column(version, "source")}
    per_fold, oof = [], []
    for k in range(1, folds.k + 1):
        metrics, rows = run_fold(cfg, version, setup, pooled, folds, names, k, out / f"fold-{k}")
        per_fold.append({"fold": k, "rows": metrics.pop("rows"), **metrics})
        oof += rows
    oof.sort(key=lambda r: r["row"])
    for row in oof:
        del row["row"]
    write_jsonl(out / OOF_FILE, oof)
    issues = find_issues(oof, setup.labels)
    write_jsonl(out / LABEL_ISSUES_FILE, issues)
    summary = summarise(cfg, version, per_fold, oof, setup.labels, len(issues))
    write_json(out / FOLDS_FILE, summary)
    from ..folds_report import write_folds_report

    write_folds_report(out, summary, issues)
    return FoldsResult(out, summary, summary_line(cfg, version, summary, out))


def run_fold(cfg: TrainConfig, version: Version, setup, pooled, folds: Folds,
             names: dict[str, list], k: int, fold_dir: Path
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train fold k (or keep it, when finished) and predict its held-out rows; returns its
    metrics (validation = the held-out fold, test) and its out-of-fold prediction rows."""
    if (fold_dir / "metrics.json").is_file() and (fold_dir / FOLD_PREDICTIONS).is_file():
        return _finished(fold_dir)
    from datasets import DatasetDict

    train_rows, held = folds.training(k), folds.held_out(k)
    splits = DatasetDict(train=pooled.select(train_rows), validation=pooled.select(held),
                         test=setup.splits["test"])
    resume = cfg.resume and last_checkpoint(fold_dir) is not None
    cfg_k = cfg.model_copy(update={"output": str(fold_dir), "early_stopping_patience": 0,
                                   "resume": resume})
    flow = classifier.make_flow(cfg_k, setup, splits, copy=True)
    flow.select_best = False
    rows_info = {"train": len(train_rows), "held_out": len(held)}
    flow.extra_run_info = {**(flow.extra_run_info or {}),
                           "fold": {"k": k, "folds": folds.k, "rows": rows_info}}
    metrics = fit(cfg_k, version, flow, fold_dir, analyse=False)
    probs = probabilities(flow.model, flow.collator, splits["validation"], cfg.batch_size)
    rows = [{"row": int(i), "id": names["id"][i], "source": names["source"][i], "fold": k,
             "label": str(folds.label[i]),
             "probabilities": dict(zip(setup.labels, map(float, p), strict=True))}
            for i, p in zip(held.tolist(), probs, strict=True)]
    write_jsonl(fold_dir / FOLD_PREDICTIONS, rows)  # last: its presence marks the fold done
    return {"rows": rows_info, "validation": metrics.get("validation", {}),
            "test": metrics.get("test", {})}, rows


def _finished(fold_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A finished fold's metrics and predictions, read back (resume)."""
    metrics = json.loads((fold_dir / "metrics.json").read_text(encoding="utf-8"))
    info = json.loads((fold_dir / RUN_FILE).read_text(encoding="utf-8"))["fold"]
    lines = (fold_dir / FOLD_PREDICTIONS).read_text(encoding="utf-8").splitlines()
    return ({"rows": info["rows"], "validation": metrics.get("validation", {}),
             "test": metrics.get("test", {})}, [json.loads(line) for line in lines if line])


def probabilities(model, collator, rows, batch_size: int) -> np.ndarray:
    """Class probabilities of tokenized rows, from the model in memory (no save and reload)."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for lo in range(0, rows.num_rows, batch_size):
            batch = collator([rows[i] for i in range(lo, min(lo + batch_size, rows.num_rows))])
            batch.pop("labels", None)
            logits = model(**{key: value.to(device) for key, value in batch.items()}).logits
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    """Written beside and renamed into place, so a kill never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                   encoding="utf-8")
    tmp.replace(path)


def _spread(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (ddof 1: the folds are a sample of possible splits)."""
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def summarise(cfg: TrainConfig, version: Version, per_fold: list[dict[str, Any]],
              oof: list[dict[str, Any]], labels: list[str], n_issues: int) -> dict[str, Any]:
    """What folds.json holds: the settings, every fold's metrics, their mean and spread, and
    the out-of-fold predictions' own accuracy and macro-F1."""
    spread: dict[str, dict[str, Any]] = {}
    for split in ("validation", "test"):
        keys = [key for key, value in per_fold[0][split].items() if key not in NOT_MEASURES
                and isinstance(value, int | float) and math.isfinite(value)]
        spread[split] = {key: _spread([f[split][key] for f in per_fold
                                       if isinstance(f[split].get(key), int | float)])
                         for key in keys}
    index = {name: i for i, name in enumerate(labels)}
    gold = np.array([index[r["label"]] for r in oof], dtype=np.int64)
    pred = np.array([max(r["probabilities"], key=r["probabilities"].get) for r in oof])
    pred = np.array([index[p] for p in pred.tolist()], dtype=np.int64)
    return {"dataset": version.spec, "model": cfg.model, "method": cfg.method, "folds": cfg.folds,
            "seed": cfg.seed, "checkpoint_selection": CHECKPOINT_SELECTION, "labels": labels,
            "per_fold": per_fold, "mean_std": spread,
            "out_of_fold": {"rows": len(oof), **accuracy_f1(pred, gold, len(labels))},
            "label_issues": n_issues, "settings": cfg.as_dict()}


def summary_line(cfg: TrainConfig, version: Version, summary: dict[str, Any], out: Path) -> str:
    parts = []
    for split in ("validation", "test"):
        shown = [f"{key} {s['mean']:.4f} ± {s['std']:.4f}"
                 for key, s in summary["mean_std"][split].items()
                 if key in ("accuracy", "macro_f1")]
        if shown:
            parts.append(f"{split} {', '.join(shown)}")
    return (f"{cfg.method} {cfg.folds}-fold on {version.spec}: {'; '.join(parts)}; "
            f"{summary['label_issues']} likely label issues; written to {out}")
