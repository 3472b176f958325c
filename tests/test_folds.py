"""k-fold cross-validation and label issues, on the tiny config-built Llama and real versions of
the reviews fixture: split units kept in the version, folds that keep units whole and follow
the labels, out-of-fold coverage, the files of a k-fold run, resume, and one-line refusals."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dataprep.pipeline import run_pipeline
from dataprep.store import SPLITS, open_version
from train.config import resolve_config
from train.errors import TrainError
from train.folds import assign_folds, check_folds, pooled_column

from .conftest import FIXTURES
from .tiny_models import build_causal_lm

K = 3


def _recipe(path: Path, **extra) -> Path:
    body = {"kind": "classification", "fields": {"id": "review_id", "text": "review",
                                                 "label": "sentiment"}, **extra}
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict:
    """A reviews version with two-row units (`group_by: date`) and synonym-swapped train rows,
    a chat version, and the tiny model."""
    root = tmp_path_factory.mktemp("folds")
    store = root / "store"
    grouped = run_pipeline([FIXTURES / "reviews.csv"], "reviews", _recipe(
        root / "r.json", split={"group_by": "date"},
        augment=[{"kind": "synonym", "backend": "wordnet", "fraction": 0.3}]), store)
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    return {"root": root, "store": store, "lm": build_causal_lm(root / "lm"),
            "reviews": f"reviews@{grouped.version}", "support": f"support@{chat.version}"}


def _config(ws, **kw):
    base = {"dataset": ws["reviews"], "model": str(ws["lm"]), "store": str(ws["store"]),
            "method": "classifier", "lora_r": 0, "max_steps": 2, "batch_size": 4,
            "max_length": 64, "folds": K}
    return resolve_config({**base, **kw})


# --- split units in the version ---------------------------------------------------------------

def test_every_row_has_a_unit_and_no_unit_straddles_two_splits(ws):
    version = open_version(ws["reviews"], ws["store"])
    seen: dict[int, str] = {}
    for split in SPLITS:
        data = version.data[split]
        assert data.features["unit"].dtype == "int64"
        for unit in set(data["unit"]):
            assert seen.setdefault(unit, split) == split, f"unit {unit} in {seen[unit]}, {split}"
    train = version.data["train"].to_pandas()
    originals = train[train.parent_id.isna()].set_index("id")
    augmented = train[train.parent_id.notna()]
    assert len(augmented) > 0
    # an augmented row has its parent's unit, so a fold holding the parent out drops the copy
    assert (augmented.unit.values == originals.loc[augmented.parent_id, "unit"].values).all()
    # rows of one group_by value (one date) share a unit
    import pandas as pd

    everything = pd.concat([version.data[s].to_pandas() for s in SPLITS])
    everything = everything[everything.parent_id.isna()]
    dates = everything.assign(date=everything.id.map(_dates()))
    assert dates.date.notna().all()
    assert (dates.groupby("date").unit.nunique() == 1).all()
    assert (dates.groupby("date").size() > 1).any()


def _dates() -> dict[str, str]:
    """review_id (the version's `id`) -> the raw row's date, read from the fixture."""
    import csv

    with open(FIXTURES / "reviews.csv", encoding="utf-8", errors="replace", newline="") as fh:
        return {row["review_id"]: row["date"] for row in csv.DictReader(fh)}


# --- fold assignment --------------------------------------------------------------------------

def test_folds_keep_units_whole_follow_labels_and_cover_every_row_once(ws):
    version = open_version(ws["reviews"], ws["store"])
    folds = assign_folds(version, K, seed=7)
    original = np.array([p is None for p in pooled_column(version, "parent_id")])
    assert (folds.fold[~original] == 0).all() and (folds.fold[original] >= 1).all()
    held = np.concatenate([folds.held_out(k) for k in range(1, K + 1)])
    assert sorted(held.tolist()) == np.flatnonzero(original).tolist()  # each row exactly once
    for unit in set(folds.unit.tolist()):
        assert len(set(folds.fold[(folds.unit == unit) & original].tolist())) <= 1
    for k in range(1, K + 1):
        out, train = folds.held_out(k), folds.training(k)
        assert not set(folds.unit[out].tolist()) & set(folds.unit[train].tolist())
        assert len(out) + len(train) <= len(folds.fold)
        assert (~original[train]).any()  # augmented rows train
    biggest = Counter(folds.unit[original].tolist()).most_common(1)[0][1]
    for label in set(folds.label.tolist()):
        mine = original & (folds.label == label)
        counts = [int((mine & (folds.fold == k)).sum()) for k in range(1, K + 1)]
        assert max(abs(c - mine.sum() / K) for c in counts) <= biggest, (label, counts)
    again = assign_folds(version, K, seed=7)
    assert (again.fold == folds.fold).all()


def test_folds_refusals_need_a_version_with_units(ws, tmp_path):
    """A version written before units were recorded: the same files without `unit`."""
    import datasets

    ref = open_version(ws["reviews"], ws["store"])
    old_store = tmp_path / "store"
    target = old_store / ref.ref.name / ref.ref.version
    shutil.copytree(ref.path, target)
    data = datasets.load_from_disk(str(ref.path)).remove_columns("unit")
    for split in SPLITS:
        shutil.rmtree(target / split)
        data[split].save_to_disk(str(target / split))
    old = open_version(ws["reviews"], old_store)
    with pytest.raises(TrainError, match="made before split units were recorded: run "
                                         "dataprep run again"):
        check_folds(_config(ws), old)


# --- a k-fold run, its files and resume -------------------------------------------------------

@pytest.fixture(scope="module")
def kfold_run(ws):
    from train.runner import run_training

    out = ws["root"] / "kfold"
    result = run_training(_config(ws, output=str(out)))
    return out, result


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_kfold_run_writes_folds_oof_predictions_and_label_issues(ws, kfold_run):
    out, result = kfold_run
    version = open_version(ws["reviews"], ws["store"])
    labels = version.labels()
    oof = _jsonl(out / "oof_predictions.jsonl")
    pooled = [(i, s) for i, s, p in zip(pooled_column(version, "id"),
                                        pooled_column(version, "source"),
                                        pooled_column(version, "parent_id"), strict=True)
              if p is None]
    assert sorted((r["id"], r["source"]) for r in oof) == sorted(pooled)
    folds = assign_folds(version, K, seed=42)
    fold_of = {s: int(f) for s, f in zip(pooled_column(version, "source"), folds.fold,
                                         strict=True)}
    for row in oof:
        assert set(row) == {"id", "source", "fold", "label", "probabilities"}
        assert row["fold"] == fold_of[row["source"]]
        assert list(row["probabilities"]) == labels
        assert sum(row["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    for k in range(1, K + 1):
        run = json.loads((out / f"fold-{k}" / "run.json").read_text())
        assert run["fold"]["k"] == k and run["fold"]["folds"] == K
        assert run["fold"]["rows"]["held_out"] == sum(r["fold"] == k for r in oof)
        assert run["config"]["early_stopping_patience"] == 0
        assert (out / f"fold-{k}" / "metrics.json").is_file()
        args = _training_args(out / f"fold-{k}")
        assert args.load_best_model_at_end is False
    summary = json.loads((out / "folds.json").read_text())
    per_fold = [f["validation"]["accuracy"] for f in summary["per_fold"]]
    assert summary["mean_std"]["validation"]["accuracy"]["mean"] == pytest.approx(
        np.mean(per_fold))
    assert summary["mean_std"]["validation"]["accuracy"]["std"] == pytest.approx(
        np.std(per_fold, ddof=1))
    assert summary["out_of_fold"]["rows"] == len(oof)
    issues = _jsonl(out / "label_issues.jsonl")
    assert summary["label_issues"] == len(issues)
    by_source = {r["source"]: r for r in oof}
    for issue in issues:
        assert set(issue) == {"id", "source", "label", "suggested_label", "score", "fold",
                              "reason"}
        assert issue["reason"] == "label_issue"
        row = by_source[issue["source"]]
        assert issue["label"] == row["label"] and issue["fold"] == row["fold"]
        assert issue["score"] == pytest.approx(row["probabilities"][row["label"]])
        assert issue["suggested_label"] == max(row["probabilities"],
                                               key=row["probabilities"].get)
    assert [i["score"] for i in issues] == sorted(i["score"] for i in issues)
    page = (out / "report.html").read_text()
    assert "data-table=per_fold" in page and "data-table=mean_std" in page
    assert ("data-table=label_issues" in page) == bool(issues)
    assert "±" in result.summary and "accuracy" in result.summary


def _training_args(fold_dir: Path):
    import torch

    checkpoint = sorted(fold_dir.glob("checkpoint-*"))[-1]
    return torch.load(checkpoint / "training_args.bin", weights_only=False)


def test_resume_keeps_finished_folds_and_continues_the_rest(ws, kfold_run, tmp_path):
    from train.runner import run_training

    done, _ = kfold_run
    out = tmp_path / "kfold"
    shutil.copytree(done, out)
    (out / "fold-2" / "metrics.json").unlink()  # as if killed during fold 2
    kept = {p: p.stat().st_mtime_ns for k in (1, 3) for p in (out / f"fold-{k}").rglob("*")
            if p.is_file()}
    with pytest.raises(TrainError, match="already holds folds: add --resume"):
        run_training(_config(ws, output=str(out)))
    with pytest.raises(TrainError, match="made with --folds 3 --seed 42, not --folds 3 --seed 1"):
        run_training(_config(ws, output=str(out), resume=True, seed=1))
    run_training(_config(ws, output=str(out), resume=True))
    assert {p: p.stat().st_mtime_ns for k in (1, 3) for p in (out / f"fold-{k}").rglob("*")
            if p.is_file()} == kept
    assert (out / "fold-2" / "metrics.json").is_file()
    before = {r["source"]: r for r in _jsonl(done / "oof_predictions.jsonl")}
    after = _jsonl(out / "oof_predictions.jsonl")
    assert sorted(before) == sorted(r["source"] for r in after)
    for row in after:  # resumed from the folds' last checkpoints: the same weights
        expected = before[row["source"]]["probabilities"]
        assert row["probabilities"] == pytest.approx(expected, abs=1e-5)


def test_resume_without_output_takes_the_newest_folds_run(ws, monkeypatch, tmp_path):
    from train.checkpoints import latest_run_dir
    from train.recipes.kfold import folds_dir

    monkeypatch.chdir(tmp_path)
    version = open_version(ws["reviews"], ws["store"])
    stem = f"{version.ref.name}-{version.ref.version}"
    for name in ("folds-20260101-000000", "folds-20260102-000000", "20260101-000000"):
        (tmp_path / "runs" / f"{stem}-{name}").mkdir(parents=True)
    assert folds_dir(_config(ws, resume=True), version).name == f"{stem}-folds-20260102-000000"
    assert latest_run_dir(version).name == f"{stem}-20260101-000000"  # plain runs: not folds
    with pytest.raises(TrainError, match="no earlier --folds run"):
        folds_dir(_config(ws, resume=True), open_version(ws["support"], ws["store"]))


# --- one-line errors, before any training -----------------------------------------------------

@pytest.mark.parametrize("args, message, code", [
    (["--folds", "1"], "--folds: 1 is invalid", 2),  # a usage error: out of the flag's range
    (["--folds", "40"], "has only", 1),
    (["--folds", "3", "--method", "lora"], "--folds needs --method classifier, not lora", 1),
    (["SUPPORT", "--folds", "3"], "folds are stratified by label and need a classification", 1),
])
def test_bad_folds_are_one_line_errors(ws, args, message, code, monkeypatch, capsys):
    from train import cli

    dataset = ws["support"] if "SUPPORT" in args else ws["reviews"]
    args = [a for a in args if a != "SUPPORT"]
    method = [] if "--method" in args else ["--method", "classifier"]
    out = ws["root"] / "never"
    monkeypatch.setattr("sys.argv", ["train", dataset, "--model", str(ws["lm"]), "--store",
                                     str(ws["store"]), "--output", str(out), *method, *args])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == code
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not out.exists()


@pytest.mark.slow
def test_three_folds_on_minilm(ws, tmp_path):
    """The built-in MiniLM classifier, three short folds on the reviews fixture."""
    from train.runner import run_training

    out = tmp_path / "minilm"
    result = run_training(_config(ws, model="minilm-l6", lora_r=None, output=str(out),
                                  max_steps=3, batch_size=8))
    summary = json.loads((out / "folds.json").read_text())
    assert [f["fold"] for f in summary["per_fold"]] == [1, 2, 3]
    for split in ("validation", "test"):
        for metric in ("accuracy", "macro_f1", "loss"):
            values = [f[split][metric] for f in summary["per_fold"]]
            spread = summary["mean_std"][split][metric]
            assert spread["mean"] == pytest.approx(np.mean(values))
            assert spread["std"] == pytest.approx(np.std(values, ddof=1))
    for name in ("oof_predictions.jsonl", "label_issues.jsonl", "report.html"):
        assert (out / name).is_file()
    assert len(_jsonl(out / "oof_predictions.jsonl")) == summary["out_of_fold"]["rows"] > 0
    assert "validation accuracy" in result.summary
