"""`dataprep run --exclude FILE` and the recipe's `exclude` key, on the reviews fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import datasets
import pytest

from dataprep.errors import DataprepError
from dataprep.pipeline import run_pipeline

from .conftest import run_cli

RECIPE = "kind: classification\nfields: {id: review_id, text: review, label: sentiment}\n"


@pytest.fixture
def work(tmp_path, fixtures_dir) -> Path:
    """The reviews CSV and its recipe in one folder, as a user keeps them."""
    shutil.copy(fixtures_dir / "reviews.csv", tmp_path / "reviews.csv")
    (tmp_path / "reviews.recipe.yaml").write_text(RECIPE)
    return tmp_path


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def rows(result) -> list[dict]:
    data = datasets.load_from_disk(str(result.path))
    return [row for split in data.values() for row in split]


def removed(result) -> list[dict]:
    return [json.loads(line) for line in (result.path / "removed.jsonl").open()]


def accounted(result) -> bool:
    rejected = sum(1 for _ in (result.path / "rejected.jsonl").open())
    return result.report["counts"]["input"] == rejected + len(removed(result)) + len(rows(result))


def run(work: Path, exclude=None, recipe: str = "reviews.recipe.yaml"):
    return run_pipeline([work / "reviews.csv"], "reviews", work / recipe, work / "store",
                        exclude=exclude)


def test_excluded_rows_leave_every_split_with_their_reason(work):
    plain = run(work)
    named = [r for r in rows(plain) if r["id"] in {"R-1001", "R-1004", "R-1010"}]
    assert len(named) == 3
    by_id = {r["id"]: r for r in named}
    # label issues as the folds run writes them: the source is the path the run was given
    issues = write_jsonl(work / "label_issues.jsonl", [
        {"id": "R-1001", "source": by_id["R-1001"]["source"], "label": "positive",
         "suggested_label": "negative", "score": 0.01, "fold": 2, "reason": "label_issue"},
        {"source": "elsewhere/reviews.csv:" + by_id["R-1004"]["source"].rpartition(":")[2]},
        {"id": "R-1010"}])
    result = run(work, [issues])
    kept = {r["id"] for r in rows(result)}
    assert not kept & {"R-1001", "R-1004", "R-1010"}
    assert kept == {r["id"] for r in rows(plain)} - {"R-1001", "R-1004", "R-1010"}
    mine = {r["id"]: r for r in removed(result) if r["stage"] == "exclude"}
    assert {k: r["reason"] for k, r in mine.items()} == {
        "R-1001": "excluded:label_issue", "R-1004": "excluded:label_issues",
        "R-1010": "excluded:label_issues"}
    assert mine["R-1004"]["source"] == by_id["R-1004"]["source"]
    counts = result.report["counts"]
    assert counts["filtered_by_reason"] == {"excluded:label_issue": 1, "excluded:label_issues": 2}
    assert result.report["accounting_ok"] and accounted(result)
    assert result.report["exclude"]["removed"] == 3
    assert result.report["exclude"]["unmatched"] == 0
    assert result.version != plain.version
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["recipe"]["exclude_sources"][0]["sha256"] == \
        result.report["exclude"]["files"][0]["sha256"]


def test_an_entry_with_source_and_id_must_match_both(work):
    lines = {r["id"]: r["source"] for r in rows(run(work))}
    issues = write_jsonl(work / "stale.jsonl", [
        {"source": lines["R-1002"], "id": "R-1002"},
        {"source": lines["R-1003"], "id": "R-1999"}])  # the line now holds another row
    result = run(work, [issues])
    assert [r["id"] for r in removed(result) if r["stage"] == "exclude"] == ["R-1002"]
    assert result.report["exclude"]["files"][0] == {
        "path": str(issues), "sha256": result.report["exclude"]["files"][0]["sha256"],
        "entries": 2, "unmatched": 1}


def test_the_recipe_key_is_relative_to_the_recipe_file(work):
    (work / "lists").mkdir()
    write_jsonl(work / "lists" / "bad_rows.jsonl", [{"id": "R-1002"}, {"id": "R-1005"}])
    (work / "with_exclude.yaml").write_text(RECIPE + "exclude: [lists/bad_rows.jsonl]\n")
    result = run(work, recipe="with_exclude.yaml")
    assert {r["id"] for r in rows(result)}.isdisjoint({"R-1002", "R-1005"})
    assert result.report["counts"]["filtered_by_reason"] == {"excluded:bad_rows": 2}
    assert accounted(result)
    # the same rows from the command line: the same rows go (a different recipe, another id)
    by_flag = run(work, [work / "lists" / "bad_rows.jsonl"])
    assert {r["id"] for r in rows(by_flag)} == {r["id"] for r in rows(result)}


def test_editing_the_exclude_file_makes_a_new_version(work):
    issues = write_jsonl(work / "x.jsonl", [{"id": "R-1002"}])
    first = run(work, [issues])
    write_jsonl(issues, [{"id": "R-1005"}])
    second = run(work, [issues])
    assert second.version != first.version
    assert "R-1002" in {r["id"] for r in rows(second)}
    assert "R-1005" not in {r["id"] for r in rows(second)}


def test_unmatched_entries_are_reported_with_a_warning(work):
    issues = write_jsonl(work / "issues.jsonl", [{"id": "R-1002"}, {"id": "no-such-row"},
                                                 {"source": "reviews.csv:9999"}])
    proc = run_cli("run", "reviews.csv", "--name", "reviews", "--recipe", "reviews.recipe.yaml",
                   "--store", "store", "--exclude", str(issues), "-q", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: 2 of 3 entries of {issues} match no input row" in proc.stderr
    version = proc.stdout.split()[-1]
    report = json.loads((work / "store" / "reviews" / version / "report.json").read_text())
    assert report["exclude"]["unmatched"] == 2 and report["exclude"]["removed"] == 1


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "R-1002"}\nnot json\n', "{file}:2: exclude entry is not JSON"),
    ('{"id": "R-1002"}\n\n{"label": "positive", "reason": "label_issue"}\n',
     "{file}:3: exclude entry names neither 'source' nor 'id'"),
    ('{"id": "R-1002", "reason": ""}\n', "{file}:1: exclude entry's 'reason' '' is not"),
    (None, "{file}: exclude file not found"),
])
def test_bad_exclude_files_are_one_line_errors_and_publish_nothing(work, cli, monkeypatch,
                                                                   content, message):
    issues = work / "issues.jsonl"
    if content is not None:
        issues.write_text(content)
    monkeypatch.chdir(work)  # in this process; the test above runs the console script
    proc = cli("run", "reviews.csv", "--name", "reviews", "--recipe", "reviews.recipe.yaml",
               "--store", "store", "--exclude", "issues.jsonl")
    assert proc.code == 1 and "Traceback" not in proc.err
    lines = proc.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message.format(file="issues.jsonl"))
    assert not (work / "store" / "reviews").exists() or \
        not any(p.is_dir() and not p.name.startswith(".")
                for p in (work / "store" / "reviews").iterdir())


def test_inputs_sharing_a_file_name_cannot_be_told_apart_by_source(work, fixtures_dir):
    (work / "b").mkdir()
    shutil.copy(fixtures_dir / "reviews.csv", work / "b" / "reviews.csv")
    issues = write_jsonl(work / "i.jsonl", [{"source": "reviews.csv:2"}])
    with pytest.raises(DataprepError, match="share the file name 'reviews.csv'"):
        run_pipeline([work / "reviews.csv", work / "b" / "reviews.csv"], "reviews",
                     work / "reviews.recipe.yaml", work / "store", exclude=[issues])
