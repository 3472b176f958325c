"""`train search` on the tiny models: trials as runs with cards, the study in study.db, the
outputs (best.yaml, trials.csv, search.json, report.html), pruning through the Trainer callback,
resume after a kill with several workers, and one-line errors for a bad space."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataprep.pipeline import run_pipeline
from train.config import resolve_config
from train.errors import TrainError
from train.search_space import Param, default_space, grid_of, load_space
from train.search_study import budget

from .conftest import FIXTURES, ROOT
from .tiny_models import build_causal_lm

#: One thread per process: on a shared 2-core machine, the default (one per core) makes
#: the processes of a search spin against each other (trials 4x slower).
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("search")
    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    return {"root": root, "store": store, "lm": build_causal_lm(root / "lm", chat_template=True),
            "support": f"support@{chat.version}", "reviews": f"reviews@{reviews.version}"}


def train_cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def tiny_search(ws, out: Path, *extra: str) -> list[str]:
    return ["search", ws["reviews"], "--model", str(ws["lm"]), "--method", "classifier",
            "--store", str(ws["store"]), "--output", str(out), "--max-steps", "2",
            "--eval-steps", "2", "--batch-size", "4", "--max-length", "64", "--lora-r", "4",
            *extra]


def states(db: Path) -> list[tuple[int, str]]:
    """The trials' numbers and states; none while optuna has made the file but not yet its
    tables (the search process creates them just after the file)."""
    with sqlite3.connect(db, timeout=30) as con:
        try:
            return con.execute("select number, state from trials order by number").fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return []


def study_ids(db: Path) -> list[int]:
    with sqlite3.connect(db, timeout=30) as con:
        return [r[0] for r in con.execute("select study_id from studies")]


def test_resumed_after_a_kill_the_same_study_reaches_the_trials_with_two_workers(
        ws, train_main):
    """A search killed during its second trial, run again with --workers 2: the same study,
    the first trial kept, the killed one FAIL, and 3 finished trials with their outputs."""
    out = ws["root"] / "killed"
    first = train_cli(*tiny_search(ws, out, "--trials", "3"))
    db, deadline = out / "study.db", time.time() + 400
    try:
        while time.time() < deadline and first.poll() is None:
            found = states(db) if db.is_file() else []
            if found[:2] == [(0, "COMPLETE"), (1, "RUNNING")]:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"no second trial started: {first.communicate()[1][-2000:]}")
        first.send_signal(signal.SIGKILL)
    finally:
        first.kill()
        first.wait()
    kept, study = (out / "trial-000" / "metrics.json").read_text(), study_ids(db)

    again = train_cli(*tiny_search(ws, out, "--trials", "3", "--workers", "2"))
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-3000:]
    assert study_ids(db) == study  # one study, continued
    found = dict(states(db))
    assert found[0] == "COMPLETE" and found[1] == "FAIL", found
    assert sum(s in ("COMPLETE", "PRUNED") for s in found.values()) == 3, found
    assert "RUNNING" not in found.values()
    assert (out / "trial-000" / "metrics.json").read_text() == kept
    assert (out / "worker-1.log").is_file()
    for number, state in found.items():
        if state != "FAIL":
            run = out / f"trial-{number:03d}"
            assert (run / "README.md").is_file() and (run / "run.json").is_file()
            metrics = json.loads((run / "metrics.json").read_text())
            assert "validation" in metrics and "test" not in metrics  # chosen on validation
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(r["number"]) for r in rows] == sorted(found) and rows[1]["state"] == "FAIL"
    assert {"value", "lr", "duration_s", "run_dir"} <= set(rows[0])
    record = json.loads((out / "search.json").read_text())
    best = record["best_trial"]
    assert found[best["number"]] == "COMPLETE"
    assert record["test"]["note"].startswith("test metrics of the best trial, computed once")
    assert "macro_f1" in record["test"]["metrics"] and record["test"]["rows"] > 0
    page = (out / "report.html").read_text()
    assert "data-plot='history'" in page and "Parameter importances" in page
    assert stdout.strip().splitlines()[-1].startswith(f"search on {ws['reviews']}: 4 trials")
    cfg = resolve_config({}, out / "best.yaml")  # what `train --config best.yaml` reads
    assert cfg.dataset == ws["reviews"] and cfg.method == "classifier" and cfg.output is None
    assert cfg.lr == pytest.approx(best["params"]["lr"])

    # Started again with the budget reached: no trial runs, and --json / --quiet print the
    # result alone on stdout (search.json, the directory). --json in this process (a fresh
    # interpreter would only import torch again to start no trial), and last: the search's
    # lock on its directory is held until its process ends.
    again = train_cli(*tiny_search(ws, out, "--trials", "3", "--quiet"))
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-3000:]
    assert stdout == f"{out}\n"
    shown = train_main(*tiny_search(ws, out, "--trials", "3", "--json"))
    assert shown.returncode == 0, shown.stderr[-3000:]
    printed = json.loads(shown.stdout)
    assert printed["output"] == str(out) and printed["best_trial"] == best
    assert dict(states(db)) == found  # no trial was added by the two starts


def test_a_weak_trial_is_pruned_at_its_first_evaluation(ws, tmp_path):
    """A study whose completed trial reached loss 0 at every evaluation: any real trial is
    worse, so the median pruner stops it at the first evaluation of a 6-step run."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from train.search import Trials, metric_of

    cfg = resolve_config({"dataset": ws["support"], "model": str(ws["lm"]),
                          "store": str(ws["store"]), "max_steps": 6, "eval_steps": 2,
                          "batch_size": 4, "max_length": 128})
    metric, direction = metric_of(cfg.method)
    settings = {"config": cfg.as_dict(), "metric": metric, "direction": direction,
                "space": {"lr": Param("lr", "float", 1e-4, 1e-3, log=True).as_dict()}}
    study = optuna.create_study(direction=direction,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(create_trial(params={"lr": 2e-4}, value=0.0,
                                 distributions={"lr": optuna.distributions.FloatDistribution(
                                     1e-4, 1e-3, log=True)},
                                 intermediate_values={1: 0.0, 2: 0.0, 3: 0.0}))
    trials = Trials(tmp_path, settings)
    study.optimize(trials.objective, n_trials=1)
    pruned = study.trials[1]
    assert pruned.state == TrialState.PRUNED and list(pruned.intermediate_values) == [1]
    run = tmp_path / "trial-001"
    assert (run / "README.md").is_file()  # a pruned trial is still a run with its card
    steps = json.loads((run / "history.json").read_text())["log_history"]
    assert max(e.get("step", 0) for e in steps) == 2  # stopped at the first evaluation, not 6
    assert not list(run.glob("checkpoint-*"))


def test_default_space_per_method_leaves_out_fixed_settings(ws):
    cfg = resolve_config({"dataset": ws["support"], "model": "m"})
    space = default_space(cfg, set(), uses_adapter=True)
    assert {"lr", "batch_size", "epochs", "lora_r", "lora_alpha", "lora_dropout",
            "weight_decay", "warmup_ratio"} <= set(space) and space["lr"].log
    full = default_space(resolve_config({"dataset": "d@1", "model": "m", "method": "full",
                                         "max_steps": 5}), {"batch_size"}, uses_adapter=False)
    assert "lora_r" not in full and "batch_size" not in full and "epochs" not in full


def test_grid_values_and_the_grid_needs_steps_or_choices():
    assert Param("batch_size", "int", 8, 32, step=8).grid() == [8, 16, 24, 32]
    assert Param("warmup_ratio", "float", 0.0, 0.2, step=0.1).grid() == [0.0, 0.1, 0.2]
    assert grid_of({"lr": Param("lr", "categorical", choices=[1e-4, 1e-3])}) == \
        {"lr": [1e-4, 1e-3]}
    with pytest.raises(TrainError, match="lr has neither choices nor a step"):
        Param("lr", "float", 1e-5, 1e-3, log=True).grid()
    space = {"lr": {"type": "categorical", "choices": [1e-4, 1e-3]},
             "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.1, "step": 0.1}}
    assert budget({"sampler": "grid", "trials": 9, "space": space}) == 4  # the grid's points
    assert budget({"sampler": "tpe", "trials": 9, "space": space}) == 9


@pytest.mark.parametrize("text, message", [
    ("learning_rate: {type: float, low: 1e-5, high: 1e-3}", "unknown setting 'learning_rate' "
                                                             "(did you mean 'lr'?)"),
    ("lr: {type: float, low: 1e-3, high: 1e-3}", "lr: empty range (low 0.001 is not below"),
    ("lr: {type: number, low: 1e-5, high: 1e-3}", "lr: type 'number' is not one of"),
    ("batch_size: {type: float, low: 4, high: 8}", "batch_size is a whole number"),
    ("max_length: {type: int, low: 32, high: 64}", "max_length cannot be searched"),
    ("warmup_ratio: {type: float, low: 0.0, high: 1.5}", "warmup_ratio: high 1.5 is invalid"),
    ("lr: {type: float, low: 1e-5, high: 1e-3, stp: 1}", "lr: unknown key 'stp'"),
    ("lora_r: {choices: []}", "needs a non-empty list of choices"),
])
def test_space_file_mistakes_are_named(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text + "\n")
    cfg = resolve_config({"dataset": "d@1", "model": "m"})
    with pytest.raises(TrainError, match="^" + str(path).replace(".", r"\.")) as caught:
        load_space(path, cfg, set())
    assert message in str(caught.value)


def test_a_setting_both_fixed_and_searched_is_refused_and_1e_5_reads_as_a_number(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("lr: {type: float, low: 1e-5, high: 1e-3, log: true}\n")
    cfg = resolve_config({"dataset": "d@1", "model": "m"})
    assert load_space(path, cfg, set())["lr"].low == 1e-5  # YAML 1.1 reads 1e-5 as a string
    with pytest.raises(TrainError, match="lr is both fixed"):
        load_space(path, cfg, {"lr"})


@pytest.mark.parametrize("text, extra, message", [
    ("lrr: {type: float, low: 0.01, high: 0.1}", [], "unknown setting 'lrr' (did you mean "
                                                     "'lr'?)"),
    ("lr: {type: float, low: 1e-5, high: 1e-3, log: true}", ["--sampler", "grid"],
     "lr has neither choices nor a step"),
])
def test_bad_space_is_one_line_and_exit_1_before_training(ws, tmp_path, train_main, text,
                                                           extra, message):
    space = tmp_path / "space.yaml"
    space.write_text(text + "\n")
    done = train_main(*tiny_search(ws, tmp_path / "out", "--space", str(space), *extra))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "out").exists()  # nothing started


@pytest.mark.slow
def test_four_trial_search_on_minilm(ws, tmp_path):
    out = tmp_path / "minilm"
    done = train_cli("search", ws["reviews"], "--model", "minilm-l6", "--method", "classifier",
                     "--store", str(ws["store"]), "--output", str(out), "--trials", "4",
                     "--max-steps", "4", "--eval-steps", "2", "--batch-size", "8")
    stdout, stderr = done.communicate(timeout=900)
    assert done.returncode == 0, stderr[-3000:]
    found = dict(states(out / "study.db"))
    assert len(found) == 4 and set(found.values()) <= {"COMPLETE", "PRUNED"}
    record = json.loads((out / "search.json").read_text())
    assert "accuracy" in record["test"]["metrics"]
    assert (out / "trial-000" / "README.md").is_file() and (out / "report.html").is_file()
    assert resolve_config({}, out / "best.yaml").model == "minilm-l6"
    assert "best trial" in stdout
