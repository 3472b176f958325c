"""Augmentation in a child version: the new train rows are augmented, and a candidate that
copies a train row of the parent (exactly or near) is dropped as one that copies a new train row
would be."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from dataprep.augment.dedup import TrainIndex, duplicate_reasons
from dataprep.lineage import read_lineage
from dataprep.neardup import ShingleSetTable
from dataprep.pipeline import run_pipeline
from dataprep.settings import Dedup
from dataprep.store import resolve
from dataprep.textview import normalise_for_dedup

from .conftest import FIXTURES
from .independent import load_splits

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402

RECIPE = {"kind": "classification", "fields": {"id": "review_id", "text": "review",
                                               "label": "sentiment"},
          "fidelity": {"min_similarity": 0.6}}


def recipe(tmp_path, augment=None):
    path = tmp_path / ("aug.yaml" if augment else "plain.yaml")
    path.write_text(json.dumps({**RECIPE, **({"augment": augment} if augment else {})}),
                    encoding="utf-8")
    return path


def test_candidates_copying_a_parent_train_row_are_duplicates(tmp_path):
    store = tmp_path / "store"
    v1 = run_pipeline([FIXTURES / "reviews.csv"], "reviews", recipe(tmp_path), store)
    lineage = read_lineage(resolve(store, f"reviews@{v1.version}"), "classification")
    train = [r["text"] for r in load_splits(v1.path)["train"]]
    long_row = max(train, key=lambda t: len(t.split()))
    words = long_row.split()
    near = " ".join(words[:-1] + ["indeed"])  # one word of many changed
    texts = normalise_for_dedup(pa.array([long_row, near, "an unrelated sentence entirely"]))
    nothing = SimpleNamespace(exact=np.zeros((0, 2), np.uint64),
                              sigs=np.zeros((0, lineage.sigs.shape[1]), np.uint32))
    index = TrainIndex(np.zeros(0, np.int64), nothing, lambda rows: ShingleSetTable.empty(),
                       lineage, np.flatnonzero(lineage.column("split") == 0))
    alone = TrainIndex(np.zeros(0, np.int64), nothing, lambda rows: ShingleSetTable.empty())
    for k, expected in enumerate(["duplicate:exact", "duplicate:near", None]):
        one = texts.slice(k, 1)  # alone: a near copy of the first candidate is one of it too
        assert duplicate_reasons(one, index, Dedup()).tolist() == [expected]
        assert duplicate_reasons(one, alone, Dedup()).tolist() == [None]


@pytest.mark.slow  # the fidelity check's real embedding model
def test_a_child_augments_its_new_train_rows(tmp_path):
    """Augmentation added by a recipe change: the new train rows are the parents."""
    store = tmp_path / "store"
    rows = list(synthetic.generate_rows(160, seed=4, words=30))
    first, second = tmp_path / "week1.jsonl", tmp_path / "week2.jsonl"
    for path, part in ((first, rows[:100]), (second, rows[100:])):
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    plain, augment = tmp_path / "plain.yaml", tmp_path / "augment.yaml"
    plain.write_text(json.dumps({"kind": "classification", "fidelity": {"min_similarity": 0.6}}),
                     encoding="utf-8")
    augment.write_text(json.dumps({
        "kind": "classification", "fidelity": {"min_similarity": 0.6},
        "augment": [{"kind": "synonym", "backend": "wordnet", "fraction": 0.6}]}),
        encoding="utf-8")
    v1 = run_pipeline([first], "logs", plain, store)
    v2 = run_pipeline([second], "logs", augment, store, parent=f"logs@{v1.version}",
                      recipe_change=True)
    assert v2.report["accounting_ok"] and v2.report["recipe_change"]["changed"] == ["augment"]
    old = {r["id"] for r in load_splits(v1.path)["train"]}
    made = [r for r in load_splits(v2.path)["train"] if r["origin"] == "synonym"
            and r["id"] not in old]
    new_train = {r["id"] for r in load_splits(v2.path)["train"]
                 if r["origin"] == "original" and r["id"] not in old}
    assert made and {r["parent_id"] for r in made} <= new_train
    assert len(made) == v2.report["counts"]["augmented"]["synonym"]
