"""`train evaluate` and the error analysis, on the tiny finished runs (`trained`): the shapes of
`analysis.json` written by training, evaluate agreeing with training's own test metrics, the
training-overlap count by content, `--json`, one-line errors; the built-in models in `slow`."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dataprep.pipeline import run_pipeline
from dataprep.store import open_version
from train.analysis import generation_scores
from train.cli import main

from .conftest import FIXTURES, ROOT

RUNS = ("classifier", "sft", "sft_labels")


def train_cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`train ARGS` in this process, as the console script runs it: (exit code, out, err)."""
    monkeypatch.setattr(sys, "argv", ["train", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


def evaluate(monkeypatch, capsys, trained, run: Path, output: Path, *args: str
             ) -> tuple[dict, dict, str]:
    """(metrics.json, analysis.json, stderr) of `train evaluate RUN ARGS`."""
    code, _, err = train_cli(monkeypatch, capsys, "evaluate", run, *args, "--store",
                             trained.store, "--output", output, "--generate-rows", "2",
                             "--max-new-tokens", "4")
    assert code == 0, err
    return (json.loads((output / "metrics.json").read_text()),
            json.loads((output / "analysis.json").read_text()), err)


def source_line(source: str) -> str:
    """The raw line a row's `source` (`file:line`) names (the fixture holds a bad byte)."""
    path, _, line = source.rpartition(":")
    return Path(path).read_bytes().splitlines()[int(line) - 1].decode("utf-8", "replace")


def check_labelled(a: dict, split_rows: list[dict], labels: list[str]) -> None:
    assert a["labels"] == labels
    matrix = a["confusion_matrix"]
    assert len(matrix) == len(labels) and all(len(r) == len(labels) for r in matrix)
    assert sum(map(sum, matrix)) == a["rows"] == len(split_rows)
    for i, label in enumerate(labels):  # rows of the matrix are the gold labels
        assert sum(matrix[i]) == sum(r["label"] == label for r in split_rows)
        assert a["per_label"][label]["support"] == sum(matrix[i])
    correct = sum(matrix[i][i] for i in range(len(labels)))
    assert a["metrics"]["accuracy"] == pytest.approx(correct / a["rows"])
    by_id = {r["id"]: r for r in split_rows}
    mistakes = a["confident_mistakes"]
    assert len(mistakes) == min(10, a["rows"] - correct)
    assert [m["confidence"] for m in mistakes] == sorted((m["confidence"] for m in mistakes),
                                                         reverse=True)
    for m in mistakes:
        row = by_id[m["id"]]
        assert m["label"] == row["label"] != m["predicted"] and m["text"] == row["text"]
        assert source_line(m["source"]).startswith(m["id"] + ",")


def check_sft(a: dict, split_rows: list[dict]) -> None:
    dist = a["loss_distribution"]
    assert dist["count"] == a["rows"] and sum(dist["histogram"]["counts"]) == a["rows"]
    assert len(dist["histogram"]["edges"]) == len(dist["histogram"]["counts"]) + 1
    assert dist["p50"] <= dist["p90"] <= dist["p99"] <= dist["max"]
    by_id = {r["id"]: r for r in split_rows}
    assert 0 < len(a["generations"]) == a["generation_metrics"]["rows"] <= 8
    for g in a["generations"]:
        assert g["reference"] == by_id[g["id"]]["messages"][-1]["content"]
        assert isinstance(g["prediction"], str) and g["source"] == by_id[g["id"]]["source"]
    assert 0 <= a["generation_metrics"]["chrf"] <= 100


def test_training_writes_the_analysis_of_validation_and_test(trained):
    for name in RUNS:
        run = getattr(trained, name)
        spec = trained.support if name == "sft" else trained.reviews
        version = open_version(spec, trained.store)
        analysis = json.loads((run / "analysis.json").read_text())
        splits = [s for s in ("validation", "test") if version.data[s].num_rows]
        assert list(analysis) == splits, name
        for split, a in analysis.items():
            rows = version.data[split].to_list()
            assert (a["dataset"], a["split"], a["rows"]) == (spec, split, len(rows))
            assert a["overlap_with_training"] == 0
            losses = [h["loss"] for h in a["highest_loss"]]
            assert len(losses) == min(10, len(rows)) and losses == sorted(losses, reverse=True)
            if name == "sft":
                assert a["labels"] == [] and "confusion_matrix" not in a
                users = {r["id"]: [m for m in r["messages"] if m["role"] == "user"][-1]
                         for r in rows}
                assert all(h["text"] == users[h["id"]]["content"] for h in a["highest_loss"])
            else:
                check_labelled(a, rows, version.labels())
            if name == "classifier":
                assert "generations" not in a and "loss_distribution" not in a
            else:
                check_sft(a, rows)
                assert a["metrics"]["perplexity"] > 1


@pytest.mark.parametrize("name", RUNS)
def test_evaluate_gives_the_test_metrics_training_reported(name, trained, monkeypatch, capsys,
                                                           tmp_path):
    run = getattr(trained, name)
    metrics, analysis, err = evaluate(monkeypatch, capsys, trained, run, tmp_path)
    reported = json.loads((run / "metrics.json").read_text())["test"]
    assert metrics["loss"] == pytest.approx(reported["loss"], rel=1e-3)
    assert metrics["split"] == "test" and metrics["overlap_with_training"] == 0
    assert "training split" not in err
    at_training = json.loads((run / "analysis.json").read_text())["test"]
    if name != "sft":
        assert metrics["accuracy"] == reported["accuracy"]
        assert metrics["macro_f1"] == pytest.approx(reported["macro_f1"])
        assert analysis["confusion_matrix"] == at_training["confusion_matrix"]
        assert set(metrics["per_label"]) == set(analysis["labels"])
    if name != "classifier":
        assert metrics["perplexity"] == pytest.approx(reported["perplexity"], rel=1e-2)
        assert metrics["generation"]["rows"] == len(analysis["generations"]) == 2
    assert [h["id"] for h in analysis["highest_loss"]] == \
        [h["id"] for h in at_training["highest_loss"]]


def test_evaluate_on_the_train_split_warns_every_row_overlaps(trained, monkeypatch, capsys,
                                                              tmp_path):
    metrics, _, err = evaluate(monkeypatch, capsys, trained, trained.classifier, tmp_path,
                               "--split", "train")
    rows = open_version(trained.reviews, trained.store).data["train"].num_rows
    assert metrics["rows"] == metrics["overlap_with_training"] == rows
    assert (f"warning: {rows} of {rows} rows of {trained.reviews}:train were in the run's "
            f"training split ({trained.reviews})") in err


NEW_REVIEWS = [
    "The hinge on the lid cracked the first time I folded the stand flat.",
    "Charges two phones at full speed and stays cool on the nightstand.",
    "Noise cancelling is fine on a train but useless next to a running fan.",
    "Firmware update bricked it; support asked me to mail it to Belgium.",
    "Mounted on the garage wall in ten minutes, the app found it instantly.",
    "Keys started double-typing after a month of light office use.",
    "Perfectly average: does what the box says and nothing more.",
    "My cat knocked it off the shelf twice and it still plays without a scratch.",
    "Microphone makes me sound like I am calling from inside a tin can.",
    "Coverage now reaches the back bedroom, which the old router never managed.",
    "The strap smells of burnt plastic even after airing it out for a week.",
    "Colours are accurate out of the box, no calibration needed for photo work.",
]


def test_evaluate_on_another_version_counts_rows_of_the_training_split(trained, monkeypatch,
                                                                        capsys, tmp_path):
    """A newer version made of most of the old rows plus new ones: the rows of its test split
    whose text was in the run's train split are counted, whatever their ids now are."""
    # surrogateescape: the fixture's bad byte is written back as it was
    with (FIXTURES / "reviews.csv").open(encoding="utf-8", errors="surrogateescape") as fh:
        old = list(csv.DictReader(fh))
    raw = tmp_path / "reviews-next.csv"
    with raw.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(old[0]))
        writer.writeheader()
        for i, row in enumerate(old[8:]):
            writer.writerow({**row, "review_id": f"N-{i}"})  # new ids: content decides
        for i, text in enumerate(NEW_REVIEWS):
            writer.writerow({**old[0], "review_id": f"X-{i}", "review": text,
                             "sentiment": ("positive", "negative", "neutral")[i % 3]})
    new = run_pipeline([raw], "reviews-next", FIXTURES / "reviews.recipe.yaml", trained.store)
    spec = f"reviews-next@{new.version}"
    old_train = set(open_version(trained.reviews, trained.store).data["train"]["text"])
    test = open_version(spec, trained.store).data["test"]
    expected = sum(text in old_train for text in test["text"])
    assert 0 < expected < test.num_rows  # the version mixes seen and unseen rows
    metrics, analysis, err = evaluate(monkeypatch, capsys, trained, trained.classifier,
                                      tmp_path / "eval", spec)
    assert metrics["overlap_with_training"] == analysis["overlap_with_training"] == expected
    assert (f"warning: {expected} of {test.num_rows} rows of {spec}:test were in the run's "
            f"training split ({trained.reviews})") in err
    assert sum(map(sum, analysis["confusion_matrix"])) == test.num_rows


def test_json_prints_only_the_metrics_on_stdout(trained, tmp_path):
    """As a user's shell sees it: stdout is one JSON object, the summary goes to stderr."""
    done = subprocess.run([sys.executable, "-m", "train", "evaluate", str(trained.sft),
                           trained.support, "--store", str(trained.store), "--json",
                           "--generate-rows", "2", "--max-new-tokens", "4",
                           "--output", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed == json.loads((tmp_path / "metrics.json").read_text())
    assert printed["generation"]["rows"] == 2 and printed["dataset"] == trained.support
    assert "loss" in done.stderr and "written to" in done.stderr


def test_default_output_is_a_new_directory_under_the_run(trained, monkeypatch, capsys):
    code, out, _ = train_cli(monkeypatch, capsys, "evaluate", trained.classifier, "--store",
                             trained.store, "--split", "validation")
    assert code == 0
    name, version = trained.reviews.split("@")
    written = Path(out.strip().splitlines()[-1].removeprefix("written to "))
    assert written.parent == trained.classifier / "evaluations"
    assert written.name.startswith(f"{name}-{version}-validation-")
    assert json.loads((written / "analysis.json").read_text())["split"] == "validation"
    assert "accuracy" in out and "macro_f1" in out


@pytest.mark.parametrize("args, message", [
    (["{classifier}", "reviews@ffffffffffff"], "no such version"),
    (["{root}"], "not a run directory"),
    (["{root}/nothing-here"], "no such run directory"),
    (["{classifier}", "--split", "dev"], "--split 'dev'"),
    (["{classifier}", "{support}"], "classifier run is evaluated on a classification"),
    (["{sft}", "--top", "-1"], "--top -1"),
])
def test_mistakes_are_one_line_errors(args, message, trained, monkeypatch, capsys):
    paths = {"classifier": trained.classifier, "sft": trained.sft, "root": trained.root,
             "support": trained.support}
    code, out, err = train_cli(monkeypatch, capsys, "evaluate",
                               *[a.format(**paths) for a in args], "--store", trained.store)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert message in err


def test_generation_scores():
    """Exact match, chrF and ROUGE-L, on answers that are (not) the reference; ROUGE-L reads
    words in any script (rouge-score's own tokenizer keeps only a-z and 0-9)."""
    same = ["Reinicia el módem", "请重启路由器 然后 再试"]
    assert generation_scores(same, same) == {"exact_match": 1.0, "chrf": pytest.approx(100.0),
                                             "rouge_l": 1.0, "rows": 2}
    other = generation_scores(["Reinicia el router", "完全 不同"], same)
    assert other["exact_match"] == 0.0 and 0 < other["rouge_l"] < 1
    assert 0 < other["chrf"] < 100


@pytest.mark.slow
def test_built_in_models(trained_real, monkeypatch, capsys, tmp_path):
    """minilm-l6's classifier and SmolLM2's LoRA: evaluate agrees with training's test split
    and SmolLM2 answers the sampled rows."""
    for run, rows in ((trained_real.minilm, "0"), (trained_real.smollm2, "4")):
        out = tmp_path / run.name
        code, _, err = train_cli(monkeypatch, capsys, "evaluate", run, "--store",
                                 trained_real.store, "--output", out, "--generate-rows", rows,
                                 "--max-new-tokens", "16")
        assert code == 0, err
        metrics = json.loads((out / "metrics.json").read_text())
        analysis = json.loads((out / "analysis.json").read_text())
        reported = json.loads((run / "metrics.json").read_text())["test"]
        assert metrics["loss"] == pytest.approx(reported["loss"], rel=1e-3)
        if run == trained_real.minilm:
            assert metrics["accuracy"] == reported["accuracy"]
            assert sum(map(sum, analysis["confusion_matrix"])) == metrics["rows"]
        else:
            sampled = min(4, metrics["rows"])
            assert metrics["generation"]["rows"] == len(analysis["generations"]) == sampled
            assert any(g["prediction"].strip() for g in analysis["generations"])
            assert json.loads((run / "analysis.json").read_text())["test"]["generations"]
