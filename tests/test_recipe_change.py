"""`dataprep run NEW --from NAME@VERSION --recipe R --recipe-change`: a child whose recipe differs
from its parent's. Its new rows go through the new recipe, and the parent's rows through the new
recipe's filters again; a parent row that fails them is removed (`inherited: true` in
removed.jsonl), every other one stays in its split. Checked from the written files: the rows the
new filters drop (counted words independently), splits unmoved, the counts, a grandchild of the
re-filtered child, decontamination added by a change, custom-stage code found from the parent's
recipe folder, and the changes a child refuses (one line, nothing written)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets
import pytest

from dataprep.errors import DataprepError
from dataprep.lineage import read_lineage
from dataprep.pipeline import run_pipeline
from dataprep.store import resolve

from . import independent
from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402

RECIPE = "split:\n  group_by: customer_id\n  min_rows_per_label: 3\n"
STRICTER = RECIPE + "filters:\n  min_words: 60\nlanguages: [en]\n"
MIN_WORDS = 60


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def splits_by_id(path: Path) -> dict[str, str]:
    ds = datasets.load_from_disk(str(path))
    return {i: split for split in ds for i in ds[split]["id"]}


def removals(path: Path) -> list[dict]:
    return independent.read_jsonl(path / "removed.jsonl")


def grams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    """Word 13-grams of the normalised text (as decontamination compares them)."""
    w = independent.normalise(text)
    return {tuple(w[k:k + n]) for k in range(len(w) - n + 1)}


def words(text: str) -> int:
    return len(text.split())


@pytest.fixture(scope="module")
def change(tmp_path_factory):
    """v1 = a with the plain recipe; v2 = v1 + b with a stricter one (--recipe-change);
    v3 = v2 + c without --recipe (v2's recipe), c repeating v1's first rows and new ones."""
    root = tmp_path_factory.mktemp("change")
    store = root / "store"
    plain, strict = root / "plain.yaml", root / "strict.yaml"
    plain.write_text(RECIPE, encoding="utf-8")
    strict.write_text(STRICTER, encoding="utf-8")
    rows = list(synthetic.generate_rows(760, seed=5, words=70))
    a = write(root / "a.jsonl", rows[:400])
    b = write(root / "b.jsonl", rows[400:700])
    c = write(root / "c.jsonl", rows[:40] + rows[700:])
    v1 = run_pipeline([a], "s", plain, store)
    v2 = run_pipeline([b], "s", strict, store, parent=f"s@{v1.version}", recipe_change=True)
    v3 = run_pipeline([c], "s", None, store, parent=f"s@{v2.version}")
    return {"root": root, "store": store, "rows": {r["id"]: r for r in rows},
            "files": (a, b, c), "recipes": (plain, strict), "v": (v1, v2, v3)}


def test_parent_rows_the_new_filters_drop_are_removed_and_the_rest_never_move(change):
    v1, v2, _ = change["v"]
    before, after = splits_by_id(v1.path), splits_by_id(v2.path)
    inherited = {r["id"]: r for r in removals(v2.path) if r.get("inherited")}
    assert inherited, "the stricter recipe drops some parent rows"
    assert set(inherited) <= set(before) and not set(inherited) & set(after)
    assert all(after[i] == before[i] for i in before if i not in inherited)
    assert set(before) - set(inherited) <= set(after)  # every other parent row stayed
    text = {i: change["rows"][i]["text"] for i in before}
    for i, record in inherited.items():
        if record["reason"] == "too_short:words":
            assert words(text[i]) < MIN_WORDS
        else:
            assert record["reason"].startswith("language:") and record["reason"] != "language:en"
    assert all(words(text[i]) >= MIN_WORDS for i in before if i not in inherited)
    assert any(r["reason"] == "too_short:words" for r in inherited.values())


def test_the_report_counts_what_the_change_removed_and_the_accounting_holds(change):
    v1, v2, _ = change["v"]
    report, counts = v2.report, v2.report["counts"]
    change_report = report["recipe_change"]
    assert change_report["changed"] == ["filters.min_words", "languages"]
    assert change_report["parent_rows_checked"] == sum(v1.report["counts"]["output"].values())
    inherited = [r for r in removals(v2.path) if r.get("inherited")]
    assert sum(change_report["removed_by_reason"].values()) == len(inherited)
    assert sum(change_report["removed_from_splits"].values()) == len(inherited)
    for split in ("train", "validation", "test"):
        assert counts["inherited"][split] == \
            v1.report["counts"]["output"][split] - change_report["removed_from_splits"][split]
        rows = independent.load_splits(v2.path)[split]
        assert len(rows) == counts["output"][split]
        labels = {}
        for row in rows:
            labels[row["label"]] = labels.get(row["label"], 0) + 1
        assert report["splits"][split]["labels"] == dict(sorted(labels.items()))
    assert report["accounting_ok"]
    manifest = json.loads((v2.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["parent"] == v1.version
    assert manifest["recipe"]["filters"]["min_words"] == MIN_WORDS
    assert manifest["recipe_dir"] == str(change["root"].resolve())


def test_new_rows_go_through_the_new_recipe(change):
    _, v2, _ = change["v"]
    new = {r["id"] for r in independent.read_jsonl(change["files"][1])}
    kept = set(splits_by_id(v2.path)) & new
    assert kept and all(words(change["rows"][i]["text"]) >= MIN_WORDS for i in kept)
    short = [r for r in removals(v2.path) if r["id"] in new and r["reason"] == "too_short:words"]
    assert short and not any(r.get("inherited") for r in short)


def test_a_grandchild_of_the_changed_child_keeps_its_recipe_and_its_rows(change):
    _, v2, v3 = change["v"]
    before, after = splits_by_id(v2.path), splits_by_id(v3.path)
    assert all(after[i] == s for i, s in before.items())
    lineage = read_lineage(resolve(change["store"], f"s@{v2.version}"), "classification")
    assert len(lineage) == len(before)  # the survivors only, in one part of their own
    assert sorted(lineage.strings("id").to_pylist()) == sorted(before)
    gone = {r["id"]: r["reason"] for r in removals(v3.path)}
    repeated = [r["id"] for r in independent.read_jsonl(change["files"][2])][:40]
    for i in repeated:  # v1's rows again: a duplicate of the kept, or filtered as v2 did
        assert i in gone
        assert gone[i].startswith("duplicate:") or words(change["rows"][i]["text"]) < MIN_WORDS \
            or gone[i].startswith("language:")
    assert "recipe_change" not in v3.report and v3.report["accounting_ok"]


def test_changes_a_child_cannot_make_are_one_line_errors_before_anything_is_written(change):
    root, store, v1 = change["root"], change["store"], change["v"][0]
    b = change["files"][1]
    before = sorted(str(p) for p in store.rglob("*"))
    lower = root / "lower.yaml"
    lower.write_text(RECIPE + "clean:\n  lowercase: true\n", encoding="utf-8")
    parent = f"s@{v1.version}"
    with pytest.raises(DataprepError, match="changes clean.lowercase, which shaped the rows"):
        run_pipeline([b], "s", lower, store, parent=parent, recipe_change=True)
    with pytest.raises(DataprepError, match="--recipe-change needs --recipe"):
        run_pipeline([b], "s", None, store, parent=parent, recipe_change=True)
    with pytest.raises(DataprepError, match="--recipe-change needs --from"):
        run_pipeline([b], "s", change["recipes"][1], store, recipe_change=True)
    with pytest.raises(DataprepError, match=r"or give --recipe-change"):
        run_pipeline([b], "s", change["recipes"][1], store, parent=parent)
    assert sorted(str(p) for p in store.rglob("*")) == before


def test_the_cli_takes_recipe_change(change, cli):
    store, v1 = change["store"], change["v"][0]
    args = ("run", change["files"][1], "--name", "s", "--store", store, "--from",
            f"s@{v1.version}", "--recipe", change["recipes"][1])
    assert "or give --recipe-change" in cli(*args).one_line_error()
    done = cli(*args, "--recipe-change", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out)["version"] == change["v"][1].version


def test_decontamination_added_by_a_change_removes_parent_train_rows(tmp_path):
    rows = list(synthetic.generate_rows(300, seed=8, words=70))
    a, b = write(tmp_path / "a.jsonl", rows[:250]), write(tmp_path / "b.jsonl", rows[250:])
    plain = tmp_path / "plain.yaml"
    plain.write_text(RECIPE, encoding="utf-8")
    v1 = run_pipeline([a], "d", plain, tmp_path / "store")
    splits = independent.load_splits(v1.path)
    train_row, test_row = splits["train"][0], splits["test"][0]
    write(tmp_path / "eval.jsonl", [{"question": train_row["text"]},
                                    {"question": test_row["text"]}])
    checked = tmp_path / "checked.yaml"
    checked.write_text(RECIPE + "decontaminate: [eval.jsonl]\n", encoding="utf-8")
    v2 = run_pipeline([b], "d", checked, tmp_path / "store", parent=f"d@{v1.version}",
                      recipe_change=True)
    gone = {r["id"]: r for r in removals(v2.path) if r.get("inherited")}
    evaluation = grams(train_row["text"]) | grams(test_row["text"])
    sharing = {r["id"] for r in splits["train"] if grams(r["text"]) & evaluation}
    assert train_row["id"] in sharing and set(gone) == sharing  # the planted near copies too
    assert {r["reason"] for r in gone.values()} == {"contaminated:eval.jsonl"}
    after = splits_by_id(v2.path)
    assert not sharing & set(after) and after[test_row["id"]] == "test"
    # the lineage holds the version's rows: not the train row decontamination removed
    lineage = read_lineage(resolve(tmp_path / "store", f"d@{v2.version}"), "classification")
    assert sorted(lineage.strings("id").to_pylist()) == sorted(after)
    fresh = run_pipeline([a], "f", checked, tmp_path / "store")
    lineage = read_lineage(resolve(tmp_path / "store", f"f@{fresh.version}"), "classification")
    assert train_row["id"] not in lineage.strings("id").to_pylist()
    assert sorted(lineage.strings("id").to_pylist()) == sorted(splits_by_id(fresh.path))


STAGE = '''def drop(table, texts):
    return [("has:" + WORD) if WORD in t.split() else None for t in texts.to_pylist()]
'''


def test_a_child_finds_custom_stages_in_its_parents_recipe_folder(tmp_path, monkeypatch):
    """A child made without --recipe from another folder runs the parent's custom stage (its
    path relative to the parent's recipe); changed stage code is refused, or with
    --recipe-change re-filters the parent's rows."""
    project = tmp_path / "project"
    project.mkdir()
    rows = list(synthetic.generate_rows(200, seed=9, words=40))
    word = rows[0]["text"].split()[3]
    (project / "stage.py").write_text("WORD = 'zzzqx'\n" + STAGE, encoding="utf-8")
    recipe = project / "recipe.yaml"
    recipe.write_text(RECIPE + "custom_stages:\n  - {name: words, function: 'stage.py:drop', "
                      "after: filter}\n", encoding="utf-8")
    a = write(project / "a.jsonl", rows[:150])
    store = tmp_path / "store"
    v1 = run_pipeline([a], "c", recipe, store)
    planted = {**rows[150], "id": "HAS-WORD", "text": rows[150]["text"] + " zzzqx"}
    b = write(project / "b.jsonl", rows[151:] + [planted])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    v2 = run_pipeline([b], "c", None, store, parent=f"c@{v1.version}")
    assert {r["id"]: r["reason"] for r in removals(v2.path)}["HAS-WORD"] == "has:zzzqx"
    (project / "stage.py").write_text(f"WORD = {word!r}\n" + STAGE, encoding="utf-8")
    with pytest.raises(DataprepError, match="custom stage's code differs"):
        run_pipeline([b], "c", None, store, parent=f"c@{v2.version}")
    v3 = run_pipeline([b], "c", recipe, store, parent=f"c@{v2.version}", recipe_change=True)
    assert v3.report["recipe_change"]["changed"] == ["custom_stages (code)"]
    inherited = {r["id"] for r in removals(v3.path) if r.get("inherited")}
    with_word = {r["id"] for r in rows if word in r["text"].split()}
    assert inherited == with_word & set(splits_by_id(v2.path))
