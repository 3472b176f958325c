"""The `train` command line tried as a new user would: every mistake is one line on stderr (exit 2
for a usage error, 1 for bad data or state), no traceback, and nothing written; `-h`,
`--version`, completion, and `--json` / `--quiet` printing only the result on stdout.

Each case goes through the real entry point (`train.cli.main`, what the `train` script runs),
in a fresh working directory, so a stray `runs/` or `run.json` is seen. Most cases fail before
any model loads; one tiny training checks `--json` and `--quiet`.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from dataprep.pipeline import run_pipeline
from train.checkpoints import RUNS, default_output, latest_run_dir, safe_part
from train.cli import main

from .conftest import FIXTURES
from .tiny_models import build_causal_lm


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> dict[str, Path | str]:
    """A store with a chat version, a classification version and one of a single label."""
    root = tmp_path_factory.mktemp("train_cli")
    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    with (FIXTURES / "reviews.csv").open(encoding="utf-8", errors="replace", newline="") as source:
        rows = [row for row in csv.DictReader(source) if row["sentiment"] == "positive"]
    one_label = root / "positive.csv"
    with one_label.open("w", encoding="utf-8", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    recipe = FIXTURES / "reviews.recipe.yaml"
    positive = run_pipeline([one_label], "positive", recipe, store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews", recipe, store)
    return {"root": root, "store": store, "support": f"support@{chat.version}",
            "positive": f"positive@{positive.version}", "reviews": f"reviews@{reviews.version}"}


def train(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """`train ARGS` through the entry point: (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["train", *map(str, args)])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def files_under(path: Path) -> set[Path]:
    return {p for p in path.rglob("*")}


def assert_one_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture
def cwd(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def assert_nothing_written(cwd: Path) -> None:
    assert not (cwd / "runs").exists()
    assert not list(cwd.rglob("run.json"))


# --- flags: checked before any work, a usage error naming the flag (exit 2) -----------------

@pytest.mark.parametrize("args, message", [
    (["--lr", "-1"], "--lr: -1.0 is invalid (input should be greater than 0)"),
    (["--lr", "0"], "--lr: 0.0"),
    (["--lr", "inf"], "--lr: inf is not a finite number"),
    (["--lr", "abc"], "'--lr'"),
    (["--epochs", "0"], "--epochs: 0.0"),
    (["--epochs", "nan"], "--epochs: nan is not a finite number"),
    (["--batch-size", "0"], "--batch-size: 0"),
    (["--grad-accum", "0"], "--grad-accum: 0"),
    (["--max-length", "0"], "--max-length: 0"),
    (["--max-steps", "0"], "--max-steps: 0 is invalid (use -1"),
    (["--max-steps", "-5"], "--max-steps: -5"),
    (["--warmup-ratio", "1"], "--warmup-ratio: 1.0"),
    (["--dropout", "1"], "--dropout: 1.0"),
    (["--lora-dropout", "-0.1"], "--lora-dropout: -0.1"),
    (["--lora-r", "-1"], "--lora-r: -1"),
    (["--lora-alpha", "0"], "--lora-alpha: 0"),
    (["--eval-steps", "0"], "--eval-steps: 0"),
    (["--early-stopping-patience", "-1"], "--early-stopping-patience: -1"),
    (["--seed", "-1"], "--seed: -1"),
    (["--seed", str(2**40)], "--seed: 1099511627776"),
    (["--folds", "1"], "--folds: 1"),
    (["--max-tokens-per-batch", "0"], "--max-tokens-per-batch: 0"),
    (["--target-modules", ","], "--target-modules: ',' is invalid (list should have at least 1"),
    (["--method", "banana"], "--method: 'banana' is invalid (use one of: lora, full, classifier)"),
    (["--device", "banana"], "--device: 'banana' is invalid (use auto, cpu, cuda"),
    (["--lr-scheduler", "sideways"], "--lr-scheduler: 'sideways'"),
    (["--no-such-flag"], "No such option: --no-such-flag"),
    (["--json", "--quiet"], "--json and --quiet: give one of them"),
])
def test_a_bad_flag_is_a_usage_error_before_any_work(monkeypatch, capsys, cwd, args, message):
    """The dataset does not exist: had the flag passed, the error would be the store's (exit
    1), so exit 2 also shows the flags are checked before the dataset is even opened."""
    code, out, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", *args)
    assert code == 2 and out == ""
    assert_one_line(err, message)
    assert_nothing_written(cwd)


@pytest.mark.parametrize("args, message", [
    (["nosuch@latest"], "missing --model"),
    (["--model", "m"], "missing the dataset version"),
    ([], "missing the dataset version"),
])
def test_missing_dataset_or_model_is_a_usage_error(monkeypatch, capsys, cwd, args, message):
    code, _, err = train(monkeypatch, capsys, *args)
    assert code == 2
    assert_one_line(err, message)
    assert_nothing_written(cwd)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_cuda_device_the_machine_lacks_is_refused(monkeypatch, capsys, cwd, device):
    code, _, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", "--device",
                         device)
    assert code == 1
    assert_one_line(err, f"--device {device}: torch sees no CUDA GPU here")
    assert_nothing_written(cwd)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_index_past_the_devices_is_refused(monkeypatch, capsys, cwd):
    past = torch.cuda.device_count()
    code, _, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", "--device",
                         f"cuda:{past}")
    assert code == 1
    assert_one_line(err, f"--device cuda:{past}: torch sees {past} CUDA device")


def test_mps_the_machine_lacks_is_refused(monkeypatch, capsys, cwd):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    code, _, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", "--device", "mps")
    assert code == 1
    assert_one_line(err, "--device mps: torch sees no MPS")


# --- config files: one line naming the file and the key (exit 1) ----------------------------

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi",
                                                                  strict=True)) + "model: *i\n"


@pytest.mark.parametrize("content, message", [
    (b'lora_r: "abc"\n', "lora_r: 'abc' is not a whole number"),
    (b"lr: -0.5\n", "lr: -0.5 is invalid (input should be greater than 0)"),
    (b"batch_size: [1, 2]\n", "batch_size: [1, 2] is not a whole number"),
    (b"method: banana\n", "method: 'banana' is invalid (use one of"),
    (b"device: tpu\n", "device: 'tpu' is invalid"),
    (b"output: {a: 1}\n", "output: {'a': 1} is not a string"),
    (b"colour: red\n", "unknown key 'colour'"),
    (b"learning_rate: 1e-4\n", "unknown key 'learning_rate' (did you mean 'lr'?)"),
    (b"lr: 1e-4\n\xff\xfe epochs: 1\n", "config.yaml:2: not UTF-8 (byte 0xff)"),
    (b"- lr\n- epochs\n", "a config file must be a mapping of keys to values, not a list"),
    (b"just a string\n", "a config file must be a mapping of keys to values, not a str"),
    (b"lr: [1, 2\n", "not valid YAML"),
    (b"base: &b 1e-4\nlr: *b\n", "config.yaml:2: not valid YAML (alias *b not allowed"),
    (BILLION_LAUGHS.encode(), "config.yaml:2: not valid YAML (alias *a not allowed in a config"),
    (b"a: 1\n---\nb: 2\n", "not valid YAML"),
    (b"# " + b"x" * (1 << 20) + b"\n", "too large for a config file"),
])
def test_config_file_mistakes_are_one_line_naming_file_and_key(monkeypatch, capsys, cwd,
                                                                content, message):
    path = cwd / "config.yaml"
    path.write_bytes(content)
    code, _, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", "--config", path)
    assert code == 1
    assert_one_line(err, f"error: {path}", message)
    assert_nothing_written(cwd)


def test_a_flag_overrides_a_bad_config_value_and_a_bad_flag_is_named_as_one(monkeypatch,
                                                                            capsys, cwd):
    path = cwd / "config.yaml"
    path.write_text("lr: -1\nepochs: 0\n")
    code, _, err = train(monkeypatch, capsys, "nosuch@latest", "--model", "m", "--config", path,
                         "--lr", "0.1", "--epochs", "-2")
    assert code == 2
    assert_one_line(err, "--epochs: -2.0")


# --- the dataset version: refused before any model loads (exit 1) ---------------------------

def test_a_single_label_version_is_refused_for_a_classifier(monkeypatch, capsys, cwd, ws):
    code, _, err = train(monkeypatch, capsys, ws["positive"], "--model", "no-such-model",
                         "--method", "classifier", "--store", ws["store"])
    assert code == 1
    assert_one_line(err, f"{ws['positive']}: the version has a single label 'positive': a "
                         "classifier needs at least two")
    assert_nothing_written(cwd)


def test_odd_version_names_still_give_a_directory_under_runs(cwd):
    from types import SimpleNamespace

    for name, version in (("../..", "latest"), ("/abs", "../x"), ("a/b\x1b[31m", ".."),
                          ("-", "."), ("x" * 300, "v[1]*")):
        odd = SimpleNamespace(ref=SimpleNamespace(name=name, version=version))
        out = default_output(odd, cpu=True)
        assert out.parent == RUNS and out.name not in ("", ".", "..")
        assert out.resolve().parent == (cwd / "runs").resolve(), out
        assert not out.name.startswith((".", "-")) and len(out.name) < 200
        out.mkdir(parents=True)
        assert latest_run_dir(odd) == out
    assert safe_part("ok-name_1.2") == "ok-name_1.2"


# --- run.json: a damaged record is one line naming the file (exit 1) ------------------------

RECORD = {"identity": {"dataset": "support@abc", "model": "m", "method": "lora"},
          "config": {"dataset": "support@abc", "model": "m", "method": "lora", "lora_r": 16}}

DAMAGED = {
    "truncated": (json.dumps(RECORD)[:40].encode(), "(not JSON:"),
    "not utf-8": (b'{"identity": "\xff"}', "(not JSON:"),
    "a list": (b"[1, 2]", "(the record: input should be a valid dictionary"),
    "no identity": (json.dumps({"config": RECORD["config"]}).encode(), "(identity: field "
                                                                       "required)"),
    "identity of wrong type": (json.dumps({**RECORD, "identity": {"dataset": 5, "model": "m",
                                                                  "method": "lora"}}).encode(),
                               "(identity.dataset: input should be a valid string)"),
    "config of wrong type": (json.dumps({**RECORD, "config": {**RECORD["config"],
                                                              "lora_r": "x"}}).encode(),
                             "(config.lora_r:"),
    "unknown method": (json.dumps({**RECORD, "config": {**RECORD["config"],
                                                        "method": "x"}}).encode(),
                       "(config.method:"),
    "classifier without labels": (json.dumps({
        "identity": {**RECORD["identity"], "method": "classifier"},
        "config": {**RECORD["config"], "method": "classifier"}}).encode(), "(labels:"),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, "(not JSON:"),
}


def damaged_run(root: Path, content: bytes, checkpoint: bool = False) -> Path:
    run = root / "run"
    run.mkdir()
    (run / "run.json").write_bytes(content)
    (run / "adapter_model.safetensors").write_bytes(b"")
    if checkpoint:
        (run / "checkpoint-2").mkdir()
    return run


@pytest.mark.parametrize("damage", DAMAGED)
@pytest.mark.parametrize("command", [["predict", "RUN", "--split", "test"],
                                     ["evaluate", "RUN"], ["report", "RUN"],
                                     ["export", "RUN", "--format", "merged"], ["serve", "RUN"]])
def test_a_damaged_run_file_is_one_line_in_every_command(monkeypatch, capsys, cwd, command,
                                                         damage):
    content, message = DAMAGED[damage]
    run = damaged_run(cwd, content)
    before = files_under(cwd)
    code, _, err = train(monkeypatch, capsys, *(str(run) if a == "RUN" else a for a in command))
    assert code == 1
    assert_one_line(err, f"error: {run / 'run.json'}: not a run record", message)
    assert files_under(cwd) == before


@pytest.mark.parametrize("damage", ["truncated", "a list", "no identity",
                                    "config of wrong type"])
def test_a_damaged_run_file_under_resume_is_one_line(monkeypatch, capsys, cwd, ws, damage):
    run = damaged_run(cwd, DAMAGED[damage][0], checkpoint=True)
    before = files_under(cwd)
    code, _, err = train(monkeypatch, capsys, ws["support"], "--model", "no-such-model",
                         "--store", ws["store"], "--output", run, "--resume")
    assert code == 1
    assert_one_line(err, f"error: {run / 'run.json'}: not a run record", DAMAGED[damage][1])
    assert files_under(cwd) == before


def test_resume_of_another_model_is_refused_before_loading(monkeypatch, capsys, cwd, ws):
    record = {**RECORD, "identity": {**RECORD["identity"], "dataset": ws["support"]}}
    run = damaged_run(cwd, json.dumps(record).encode(), checkpoint=True)
    code, _, err = train(monkeypatch, capsys, ws["support"], "--model", "no-such-model",
                         "--store", ws["store"], "--output", run, "--resume")
    assert code == 1
    assert_one_line(err, "it was trained with model 'm', not 'no-such-model'")


def test_a_damaged_metrics_file_is_one_line(monkeypatch, capsys, cwd):
    run = damaged_run(cwd, json.dumps(RECORD).encode())
    (run / "metrics.json").write_text('{"test": ')
    code, _, err = train(monkeypatch, capsys, "report", run)
    assert code == 1
    assert_one_line(err, f"error: {run / 'metrics.json'}: not valid JSON")


# --- help, version, completion --------------------------------------------------------------

@pytest.mark.parametrize("command", [[], ["predict"], ["evaluate"], ["report"], ["serve"],
                                     ["export"], ["search"]])
def test_dash_h_is_help_everywhere(monkeypatch, capsys, command):
    code, out, err = train(monkeypatch, capsys, *command, "-h")
    assert code == 0 and err == ""
    assert "Usage: train" + "".join(f" {c}" for c in command) in " ".join(out.split())
    assert "--help" in out and "-h" in out


def test_version_and_completion(monkeypatch, capsys):
    from importlib.metadata import version

    code, out, _ = train(monkeypatch, capsys, "--version")
    assert code == 0 and out == f"train {version('dataprep-train')}\n"
    code, out, _ = train(monkeypatch, capsys, "--show-completion", "bash")
    assert code == 0 and "_TRAIN_COMPLETE" in out and "complete " in out


def test_subcommand_usage_errors_are_one_line_with_exit_2(monkeypatch, capsys, cwd):
    code, _, err = train(monkeypatch, capsys, "predict")
    assert code == 2
    assert_one_line(err, "Missing argument 'RUN'", "(see train predict -h)")
    code, _, err = train(monkeypatch, capsys, "serve", "x", "--port", "70000")
    assert code == 2
    assert_one_line(err, "'--port'")


# --- --json and --quiet: the result alone on stdout -----------------------------------------

def test_json_and_quiet_print_only_the_result(monkeypatch, capsys, cwd, ws):
    """A one-step classifier (no generation in its analysis: the fastest real run). Without
    the flags, transformers' progress callback prints its logs on stdout; here they must not."""
    lm = build_causal_lm(cwd / "lm")
    base = [ws["reviews"], "--model", lm, "--store", ws["store"], "--method", "classifier",
            "--lora-r", "8", "--max-steps", "1", "--batch-size", "8", "--max-length", "64",
            "--eval-steps", "1"]
    code, out, err = train(monkeypatch, capsys, *base, "--output", cwd / "a", "--json")
    assert code == 0, err
    result = json.loads(out)  # the whole of stdout is one JSON document
    assert result["output"] == str(cwd / "a") and result["dataset"] == ws["reviews"]
    assert result["method"] == "classifier"
    assert 0 <= result["metrics"]["test"]["accuracy"] <= 1
    assert "train_runtime" in err  # what went to stdout without --json
    assert (cwd / "a" / "run.json").is_file()
    code, out, err = train(monkeypatch, capsys, *base, "--output", cwd / "b", "--quiet")
    assert code == 0, err
    assert out == f"{cwd / 'b'}\n"
    # the commands on a run that print a result
    run, store = cwd / "a", ["--store", ws["store"]]
    code, out, err = train(monkeypatch, capsys, "predict", run, "--split", "test", *store,
                           "--json")
    assert code == 0, err
    predicted = json.loads(out)
    assert predicted["mode"] == "labels" and Path(predicted["output"]).is_file()
    code, out, err = train(monkeypatch, capsys, "predict", run, "--split", "test", *store,
                           "--output", cwd / "p.jsonl", "--quiet")
    assert (code, out) == (0, f"{cwd / 'p.jsonl'}\n"), err
    code, out, err = train(monkeypatch, capsys, "evaluate", run, *store, "--quiet")
    assert code == 0 and (Path(out.strip()) / "metrics.json").is_file(), err
    code, out, err = train(monkeypatch, capsys, "report", run, *store, "--quiet")
    assert (code, out) == (0, f"{run / 'report.html'}\n"), err
    manifest = next(Path(ws["store"]).glob("*/*/manifest.json"))
    before = manifest.read_bytes()
    code, out, err = train(monkeypatch, capsys, "report", run, *store, "--html", manifest)
    assert code == 1 and manifest.read_bytes() == before  # a version is never rewritten
    assert_one_line(err, "inside the store")
    code, out, err = train(monkeypatch, capsys, "export", run, "--format", "merged", "--json")
    assert code == 0, err
    exported = json.loads(out)
    assert exported["output"] == str(run / "export-merged") and exported["files"]
    code, _, err = train(monkeypatch, capsys, "evaluate", run, "--json", "--quiet")
    assert code == 2
    assert_one_line(err, "--json and --quiet: give one of them")
