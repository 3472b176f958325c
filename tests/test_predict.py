"""`train predict` as a user runs it (from a scratch directory) on the tiny finished runs: one
output line per row with its id and source, label probabilities, generation and its seed, raw
input through the version's recipe with its rejects, and one-line errors. Most calls go through
the console script's entry point in this process (`train_main`); raw input and one error run as
a real subprocess, the command exactly as a user's shell starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dataprep.store import open_version
from train.inference import prompt_messages, reference_of

from .conftest import FIXTURES


def predict_subprocess(run: Path, *args: str, store: Path, cwd: Path
                       ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATAPREP_STORE"}
    return subprocess.run([sys.executable, "-m", "train", "predict", str(run), "--store",
                           str(store), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**env, "HF_HUB_OFFLINE": "1"})


@pytest.fixture
def run_predict(train_main):
    """`train predict RUN --store STORE ARGS` from `cwd`, in this process."""

    def call(run: Path, *args: str, store: Path, cwd: Path) -> subprocess.CompletedProcess:
        return train_main("predict", run, "--store", store, *args, cwd=cwd)

    return call


def predicted(done: subprocess.CompletedProcess, cwd: Path) -> tuple[Path, list[dict]]:
    """The output file (the last line printed) and its rows."""
    assert done.returncode == 0, done.stderr
    path = cwd / done.stdout.strip().splitlines()[-1]
    return path, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def split_rows(trained, spec: str, split: str = "test") -> list[dict]:
    return open_version(spec, trained.store).data[split].to_list()


@pytest.mark.parametrize("name", ["classifier", "sft_labels"])
def test_split_labels_with_the_probability_of_every_label(trained, tmp_path, name, run_predict):
    run = getattr(trained, name)
    done = run_predict(run, "--split", "test", "--batch-size", "4", store=trained.store,
                       cwd=tmp_path)
    path, out = predicted(done, tmp_path)
    assert path.parent == run / "predictions" and path.name.startswith("test-")
    assert "rows/s" in done.stdout
    rows = split_rows(trained, trained.reviews)
    assert [(r["id"], r["source"]) for r in out] == [(r["id"], r["source"]) for r in rows]
    labels = json.loads((run / "run.json").read_text())
    labels = labels.get("labels") or sorted(labels["label_first_tokens"])
    for row, line in zip(rows, out, strict=True):
        probs = line["prediction"]["probabilities"]
        assert list(probs) == labels
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert line["prediction"]["label"] == labels[int(np.argmax(list(probs.values())))]
        assert line["input"] == row["text"] and line["reference"] == row["label"]


def test_sft_generation_and_its_seed(trained, tmp_path, run_predict):
    rows = split_rows(trained, trained.support, "validation")
    sampled = ("--split", "validation", "--max-new-tokens", "6", "--temperature", "1.0")
    outs = []
    for seed, extra in (("7", ()), ("7", ("--no-merge",)), ("8", ())):
        done = run_predict(trained.sft, *sampled, "--seed", seed, *extra, store=trained.store,
                           cwd=tmp_path)
        outs.append(predicted(done, tmp_path)[1])
    first = outs[0]
    assert [(r["id"], r["source"]) for r in first] == [(r["id"], r["source"]) for r in rows]
    for row, line in zip(rows, first, strict=True):
        assert isinstance(line["prediction"], str)
        assert line["input"] == prompt_messages(row)
        assert line["reference"] == reference_of(row) is not None
    texts = [[r["prediction"] for r in out] for out in outs]
    assert texts[0] == texts[1]          # same seed: same text, adapter merged or applied
    assert texts[0] != texts[2]


def test_an_sft_run_on_labels_generates_when_asked(trained, tmp_path, run_predict):
    out_file = tmp_path / "out" / "gen.jsonl"
    done = run_predict(trained.sft_labels, "--generate", "--max-new-tokens", "3", "--limit",
                       "2", "--output", str(out_file), store=trained.store, cwd=tmp_path)
    path, out = predicted(done, tmp_path)
    assert path == out_file
    rows = split_rows(trained, trained.reviews)[:2]
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    assert all(isinstance(r["prediction"], str) for r in out)
    assert [r["reference"] for r in out] == [r["label"] for r in rows]


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
                    encoding="utf-8")
    return path


def test_raw_input_rejects_bad_rows_and_predicts_the_rest(trained, tmp_path):
    write_lines(tmp_path / "new_reviews.jsonl", [
        {"review_id": "N-1", "review": "Lovely speaker, mail me at jane.doe@example.com"},
        "{not json",
        {"rating": 4},
        {"review_id": "N-4", "review": "Stopped charging after a week.",
         "sentiment": "negative"},
    ])
    done = predict_subprocess(trained.classifier, "--input", "new_reviews.jsonl",
                              store=trained.store, cwd=tmp_path)
    path, out = predicted(done, tmp_path)
    assert [(r["id"], r["source"]) for r in out] == [("N-1", "new_reviews.jsonl:1"),
                                                      ("N-4", "new_reviews.jsonl:4")]
    assert "jane.doe@example.com" not in out[0]["input"] and "<EMAIL>" in out[0]["input"]
    assert [r["reference"] for r in out] == [None, "negative"]
    rejected = path.with_name(path.stem + ".rejected.jsonl")
    reasons = [(r["line"], r["reason"]) for r in map(json.loads, rejected.read_text()
                                                      .splitlines())]
    assert reasons == [(2, "invalid_json"), (3, "missing_field:text")]
    assert "2 of 4 rows not predicted (invalid_json 1, missing_field:text 1)" in done.stderr


def test_raw_chat_input_is_redacted_before_generation(trained, tmp_path, run_predict):
    conversation = [{"role": "user", "content": "Reset link for bob.smith@example.org please"},
                    {"role": "assistant", "content": "Sent."}]
    write_lines(tmp_path / "tickets.jsonl", [{"id": "Q-1", "messages": conversation},
                                             {"id": "Q-2", "messages": "not a list"}])
    done = run_predict(trained.sft, "--input", "tickets.jsonl", "--max-new-tokens", "3",
                       store=trained.store, cwd=tmp_path)
    _, out = predicted(done, tmp_path)
    assert [r["id"] for r in out] == ["Q-1"]
    assert out[0]["input"] == [{"role": "user", "content": "Reset link for <EMAIL> please"}]
    assert out[0]["reference"] == "Sent." and isinstance(out[0]["prediction"], str)
    assert "1 of 2 rows not predicted" in done.stderr


def error_cases(trained, tmp_path):
    no_rows = write_lines(tmp_path / "empty.jsonl", [{"rating": 3}])
    return [
        (tmp_path, [], "not a run directory"),
        (trained.classifier, ["--dataset", "reviews@ffffff"], "no such version"),
        (trained.classifier, ["--generate"], "classifier run: it predicts labels and cannot "
                                             "generate text"),
        (trained.classifier, ["--dataset", trained.support], "holds chat records"),
        (trained.classifier, ["--input", str(FIXTURES / "support_chats.jsonl")],
         "holds chat records, but the model was trained on classification records"),
        (trained.classifier, ["--input", str(no_rows), "--split", "test"], "not both"),
        (trained.classifier, ["--input", str(no_rows)], "no row left to predict: 1 of 1 rows "
                                                        "not predicted (missing_field:text 1)"),
        (trained.sft_labels, ["--max-new-tokens", "4"], "add --generate"),
    ]


def check_one_line_error(done: subprocess.CompletedProcess, message: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.args, done.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:"), (done.args, done.stderr)
    assert message in lines[0] and "Traceback" not in done.stderr


def test_mistakes_are_one_line_errors(trained, tmp_path, run_predict):
    for run, args, message in error_cases(trained, tmp_path):
        check_one_line_error(run_predict(run, *args, store=trained.store, cwd=tmp_path), message)


def test_a_mistake_is_one_line_from_the_console_script_too(trained, tmp_path):
    """In a fresh process nothing but the error reaches stderr (no warning or log line a
    library prints on import or load, which the in-process cases cannot see)."""
    run, args, message = error_cases(trained, tmp_path)[-2]  # read through the recipe first
    check_one_line_error(predict_subprocess(run, *args, store=trained.store, cwd=tmp_path),
                         message)


@pytest.mark.slow
def test_minilm_classifier_on_the_test_split(trained_real, tmp_path, run_predict):
    done = run_predict(trained_real.minilm, store=trained_real.store, cwd=tmp_path)
    _, out = predicted(done, tmp_path)
    rows = open_version(trained_real.reviews, trained_real.store).data["test"].to_list()
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    for line in out:
        probs = line["prediction"]["probabilities"]
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert line["prediction"]["label"] == max(probs, key=probs.get)


@pytest.mark.slow
def test_smollm2_generates_answers(trained_real, tmp_path, run_predict):
    done = run_predict(trained_real.smollm2, "--limit", "2", "--max-new-tokens", "16",
                       store=trained_real.store, cwd=tmp_path)
    _, out = predicted(done, tmp_path)
    assert len(out) == 2 and all(isinstance(r["prediction"], str) for r in out)
    assert any(r["prediction"].strip() for r in out)   # an instruct model answers something
