"""Raw rows prepared with a version's recipe (what `train predict --input` predicts on), and
prompts rendered in a version's template; finished runs opened back, or refused in one line."""

from __future__ import annotations

import json

import pytest

from common.errors import UserError
from dataprep.pipeline import run_pipeline
from dataprep.store import open_version
from train.run_dir import open_run

from .conftest import FIXTURES


@pytest.fixture(scope="module")
def versions(tmp_path_factory):
    store = tmp_path_factory.mktemp("prepare") / "store"
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    return (open_version(f"reviews@{reviews.version}", store),
            open_version(f"support@{chat.version}", store))


def write(path, lines):
    path.write_text("".join(json.dumps(x) + "\n" if not isinstance(x, str) else x + "\n"
                            for x in lines), encoding="utf-8")
    return path


def test_raw_rows_get_the_recipes_mapping_cleaning_and_format(versions, tmp_path):
    reviews, _ = versions
    raw = write(tmp_path / "new.jsonl", [
        {"review": "Great phone, write me at jane.doe@example.com"},       # unlabelled
        {"review": "Broke after a day.", "sentiment": "negative"},         # labelled
        {"review": ""},                                                     # empty text
        {"rating": 3},                                                      # no text at all
        "not json",
    ])
    out = reviews.prepare([raw])
    assert out.rows_read == 5
    assert {(r["line"], r["reason"]) for r in out.rejected} == {
        (3, "empty_field:text"), (4, "missing_field:text"), (5, "invalid_json")}
    rows = out.table.to_pylist()
    assert [r["source"].rsplit(":", 1)[1] for r in rows] == ["1", "2"]
    unlabelled, labelled = rows
    assert "jane.doe@example.com" not in unlabelled["text"]   # PII redacted as in the version
    assert unlabelled["label"] is None and unlabelled["completion"] is None
    assert unlabelled["messages"][-1]["role"] == "user"       # no answer to compare with
    assert labelled["label"] == "negative" and labelled["messages"][-1]["content"] == "negative"
    # the prompt is the version's own rendering of the same conversation
    train_row = reviews.data["train"][0]
    assert unlabelled["prompt"].split("\n\n")[0] == train_row["prompt"].split("\n\n")[0]


def test_an_input_of_another_kind_is_one_line(versions):
    reviews, _ = versions
    with pytest.raises(UserError, match="holds chat records, but the model was trained on "
                                        "classification records"):
        reviews.prepare([FIXTURES / "support_chats.jsonl"])


def test_prompts_render_as_the_versions_prompt_column(versions):
    for version in versions:
        rows = version.data["test"].to_list()
        assert version.render_prompts([r["messages"][:-1] for r in rows]) == [
            r["prompt"] for r in rows]


def test_a_directory_that_is_not_a_finished_run_is_refused(tmp_path):
    with pytest.raises(UserError, match="no such run directory"):
        open_run(tmp_path / "missing")
    with pytest.raises(UserError, match="not a run directory"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text("[]")
    with pytest.raises(UserError, match="not a run record"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps(
        {"config": {"method": "lora"}, "identity": {"dataset": "x@1"}}))
    with pytest.raises(UserError, match=r"not a run record .*identity\.model"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps(
        {"config": {"method": "lora", "model": "m", "dataset": "x@1"},
         "identity": {"dataset": "x@1", "model": "m", "method": "lora"}}))
    with pytest.raises(UserError, match="holds no saved model"):
        open_run(tmp_path)
