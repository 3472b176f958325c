"""End to end: fixtures in, a versioned store out, every row accounted for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from dataprep.errors import DataprepError
from dataprep.pipeline import PHASES, run_pipeline
from dataprep.report import RunCounts, build_report
from dataprep.schemas import validator
from dataprep.store import list_versions, resolve

from .conftest import ROOT, run_cli


def support_run(fixtures_dir, store, **kw):
    return run_pipeline([fixtures_dir / "support_chats.jsonl", fixtures_dir / "transcripts.txt"],
                        "support", store=store, **kw)


def test_support_fixtures_end_to_end(fixtures_dir, store):
    result = support_run(fixtures_dir, store)
    counts = result.report["counts"]
    assert counts["input"] == 45 + 16
    assert counts["rejected"] == 8 + 4
    assert result.report["accounting_ok"]
    assert counts["duplicates"] == {"exact": 3 + 1, "near": 0}
    assert sum(counts["output"].values()) == 49 - 4
    assert counts["output"]["train"] > counts["output"]["validation"] > 0
    assert result.report["cleaning"]["pii"] == {"card": 1, "email": 4, "ip": 2, "phone": 4}

    ds = datasets.load_from_disk(str(result.path))
    assert list(ds) == ["train", "validation", "test"]
    train = datasets.concatenate_datasets(list(ds.values()))
    text = json.dumps(list(train["messages"]), ensure_ascii=False)
    for secret in ["maria.lopez@example.com", "555-0132", "203.0.113.45", "4111 1111 1111 1111"]:
        assert secret not in text
    assert "4111 1111 1111 1112" in text  # fails Luhn: not a card
    assert "order #88412" in text and "2026-03-15" in text
    assert "I’m" in text and "Renée" in text and "\u0007" not in text
    sources = {s.rsplit("fixtures/", 1)[1] for s in train["source"]}
    assert "support_chats.jsonl:2" in sources and "transcripts.txt:1" in sources
    assert "T-10001" in train["id"]

    removed = [json.loads(line) for line in (result.path / "removed.jsonl").open()]
    copies = {r["source"].rsplit("fixtures/", 1)[1]: r["duplicate_of"] for r in removed}
    assert copies == {"support_chats.jsonl:27": "T-10002", "support_chats.jsonl:35": "T-10008",
                      "support_chats.jsonl:42": "T-10026", "transcripts.txt:71": "TR-0002"}
    assert all(r["reason"] == "duplicate:exact" and r["similarity"] == 1.0 for r in removed)
    rejected = [json.loads(line) for line in (result.path / "rejected.jsonl").open()]
    assert len(rejected) == 12
    assert all({"source", "line", "reason", "raw"} <= set(r) for r in rejected)
    manifest = json.loads((result.path / "manifest.json").read_text())
    validator("manifest").validate(manifest)
    validator("report").validate(json.loads((result.path / "report.json").read_text()))
    assert [i["rows"] for i in manifest["inputs"]] == [45, 16]
    assert (store / "support" / "latest").read_text().strip() == result.version


def test_trl_prompt_completion_and_messages_columns(fixtures_dir, store):
    for recipe, name in [(fixtures_dir / "reviews.recipe.yaml", "reviews.csv"),
                         (None, "instructions.jsonl"), (None, "support_chats.jsonl")]:
        result = run_pipeline([fixtures_dir / name], name.split(".")[0], recipe, store)
        train = datasets.load_from_disk(str(result.path))["train"]
        features = train.features
        assert set(train.column_names) >= {"prompt", "completion", "messages"}
        assert features["prompt"] == datasets.Value("string")
        assert features["completion"] == datasets.Value("string")
        message = features["messages"].feature
        assert message["role"] == datasets.Value("string")
        assert message["content"] == datasets.Value("string")
        row = train[0]
        assert row["prompt"].startswith("### Instruction:\n") or row["prompt"].startswith(
            row["messages"][0]["content"])
        assert row["prompt"].endswith("### Response:\n")
        assert row["completion"] == [m for m in row["messages"] if m["role"] == "assistant"][-1][
            "content"]


def test_classification_rows_become_instructions(fixtures_dir, store):
    result = run_pipeline([fixtures_dir / "reviews.csv"], "reviews",
                          fixtures_dir / "reviews.recipe.yaml", store)
    assert result.report["counts"]["rejected_by_reason"] == {
        "empty_field:label": 1, "empty_field:text": 1, "invalid_utf8": 1, "wrong_field_count": 1}
    splits = datasets.load_from_disk(str(result.path))
    train = datasets.concatenate_datasets(list(splits.values()))
    row = train.filter(lambda r: r["id"] == "R-1019")[0]
    assert "don’t" in row["text"]
    assert "negative, neutral, positive" in row["prompt"] and row["completion"] == row["label"]
    labels = result.report["splits"]["train"]["labels"]
    assert sum(labels.values()) == len(splits["train"])
    assert set(labels) == {"negative", "neutral", "positive"}
    assert json.loads(row["meta"])["product"]


def test_chatml_template(fixtures_dir, store, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("format:\n  template: chatml\n")
    result = run_pipeline([fixtures_dir / "instructions.jsonl"], "instr", recipe, store)
    row = datasets.load_from_disk(str(result.path))["train"][0]
    assert row["prompt"].startswith("<|im_start|>user\n")
    assert row["prompt"].endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert row["completion"].endswith("<|im_end|>")


def test_determinism_same_id_identical_rows_no_second_copy(fixtures_dir, tmp_path):
    a = support_run(fixtures_dir, tmp_path / "a")
    b = support_run(fixtures_dir, tmp_path / "b")
    assert a.version == b.version
    for split in ("train", "validation", "test"):
        rows_a = datasets.load_from_disk(str(a.path))[split].to_list()
        rows_b = datasets.load_from_disk(str(b.path))[split].to_list()
        assert rows_a == rows_b
    again = support_run(fixtures_dir, tmp_path / "a")
    assert again.version == a.version and not again.created
    assert [m["version"] for m in list_versions(tmp_path / "a", "support")] == [a.version]


def test_recipe_change_makes_a_new_version_with_parent(fixtures_dir, store, tmp_path):
    first = support_run(fixtures_dir, store)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("clean:\n  lowercase: true\n")
    second = support_run(fixtures_dir, store, recipe_path=recipe)
    assert second.version != first.version
    manifest = json.loads((second.path / "manifest.json").read_text())
    assert manifest["parent"] == first.version and manifest["recipe"]["clean"]["lowercase"]
    assert resolve(store, "support@latest").version == second.version
    assert resolve(store, f"support@{first.version[:5]}").version == first.version


def test_mixed_kinds_are_refused(fixtures_dir, store):
    with pytest.raises(DataprepError, match="one version has one kind"):
        run_pipeline([fixtures_dir / "support_chats.jsonl", fixtures_dir / "instructions.jsonl"],
                     "mixed", store=store)
    assert not list(store.glob("mixed/*/"))


def test_every_format_end_to_end(tmp_path, store):
    import pyarrow.parquet as pq
    rows = [{"text": f"review number {i}", "label": "pos" if i % 2 else "neg"} for i in range(6)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    (tmp_path / "b.json").write_text(json.dumps(rows[2:3]))
    (tmp_path / "c.csv").write_text("text,label\n" + f"{rows[3]['text']},{rows[3]['label']}\n")
    (tmp_path / "d.tsv").write_text("text\tlabel\n" + f"{rows[4]['text']}\t{rows[4]['label']}\n")
    pq.write_table(pa.Table.from_pylist(rows[5:]), tmp_path / "e.parquet")
    files = [tmp_path / n for n in ["a.jsonl", "b.json", "c.csv", "d.tsv", "e.parquet"]]
    result = run_pipeline(files, "mix", store=store)
    out = datasets.concatenate_datasets(list(datasets.load_from_disk(str(result.path)).values()))
    assert sorted(out["text"]) == sorted(r["text"] for r in rows)


def test_broken_accounting_fails_the_run():
    run = RunCounts(input=10)
    run.output["train"] = 9
    with pytest.raises(DataprepError, match="accounting identity broken"):
        build_report("x", "0" * 12, "chat", run)


def _big_input(path, n):
    """n distinct conversations of random everyday words (no duplicates, nothing filtered)."""
    import numpy as np
    vocab = ["router", "wifi", "order", "refund", "parcel", "delivery", "account", "password",
             "reset", "screen", "battery", "charger", "invoice", "billing", "plan", "upgrade",
             "cancel", "signal", "channel", "firmware", "update", "app", "crash", "login", "email",
             "replacement", "warranty", "store", "pickup", "courier", "tracking", "late", "box",
             "damaged", "cable", "adapter", "speaker", "volume", "bluetooth", "headset"]
    rng = np.random.default_rng(0)
    with path.open("w") as fh:
        for i in range(n):
            user, agent = (" ".join(rng.choice(vocab, 40)) for _ in range(2))
            messages = [{"role": "user", "content": user}, {"role": "assistant", "content": agent}]
            fh.write(json.dumps({"id": f"T-{i}", "messages": messages}) + "\n")


def command_line(proc_file: Path) -> bytes:
    try:
        return proc_file.read_bytes()
    except OSError:  # the process ended while we looked
        return b""


def no_process_mentions(text: str, wait: float = 10.0) -> bool:
    """True once no process's command line contains `text` (waits up to `wait` seconds)."""
    deadline = time.time() + wait
    while time.time() < deadline:
        if not any(text.encode() in command_line(p) for p in Path("/proc").glob("[0-9]*/cmdline")):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    _big_input(path, 20_000)
    return path


def stopped(pid: int, timeout: float = 240) -> bool:
    """Wait until the process is stopped (state T in /proc/<pid>/stat); False if it ended."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        if state in ("T", "t"):
            return True
        if state in ("Z", "X"):
            return False
        time.sleep(0.01)
    return False


# Each case stops the run (DATAPREP_STOP_AT) inside the phase it names, checks the process is
# alive and that the temporary directory shows that phase and no later one, then kills it.
PHASE_FILES = {  # phase -> (files that must exist in the tmp dir, files that must not yet)
    "first_pass": ([".staging.arrow", ".signatures.u32", "rejected.jsonl"], ["train"]),
    "plan": ([".staging.arrow", ".signatures.u32"], ["train"]),
    "second_pass": (["train/data-00000-of-00001.arrow", ".staging.arrow"],
                    ["train/state.json", "manifest.json"]),
    "publish": (["manifest.json", "report.json", "train/state.json"], [".staging.arrow"]),
}


def test_every_phase_the_run_can_stop_at_has_a_kill_case():
    assert set(PHASE_FILES) == set(PHASES)


@pytest.mark.parametrize("phase", list(PHASE_FILES))
def test_killed_run_leaves_no_partial_version(tmp_path, big_input, phase):
    store = tmp_path / "store"
    proc = subprocess.Popen([sys.executable, "-m", "dataprep", "run", str(big_input), "--name",
                             "big", "--store", str(store), "-q"], cwd=ROOT,
                            env={**os.environ, "DATAPREP_STOP_AT": phase},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert stopped(proc.pid), f"the run never reached {phase} (exit {proc.poll()})"
        assert proc.poll() is None
        (tmp,) = store.glob("big/.tmp-*")
        present, absent = PHASE_FILES[phase]
        assert all((tmp / name).exists() for name in present), sorted(os.listdir(tmp))
        assert not any((tmp / name).exists() for name in absent), sorted(os.listdir(tmp))
        if phase == "first_pass":  # some rows' signatures (128 x 4 bytes a row) written, not all
            assert 0 < (tmp / ".signatures.u32").stat().st_size < 20_000 * 128 * 4
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert no_process_mentions(str(store)), "worker processes outlived the killed run"
    assert [p.name for p in (store / "big").iterdir() if not p.name.startswith(".")] == []
    done = run_cli("run", str(big_input), "--name", "big", "--store", str(store), "-q")
    assert done.returncode == 0, done.stderr
    assert not list(store.glob("big/.tmp-*"))
    version = datasets.load_from_disk(str(store / "big" / done.stdout.strip()))
    assert sum(version.num_rows.values()) == 20_000


@pytest.mark.parametrize(("args", "message"), [
    (["run", "fixtures/nope.jsonl", "--name", "x"], "input file not found"),
    (["run", "fixtures/reviews.csv", "--name", "x"], "cannot tell the record kind"),
    (["run", "fixtures/support_chats.jsonl", "--name", "x", "--recipe", "{bad}"],
     "unknown key bogus"),
    (["run", "fixtures/support_chats.jsonl", "--name", "x", "--recipe", "{kind}"],
     "kind: 'poem' is not one of"),
    (["run", "fixtures/support_chats.jsonl", "--name", "x", "--store", "fixtures/reviews.csv"],
     "store path is a file"),
    (["show", "support@0123456789ab", "--store", "{store}"], "no such version"),
    (["report", "nothing@latest", "--store", "{store}"], "no dataset named 'nothing'"),
])
def test_user_errors_are_one_line(tmp_path, fixtures_dir, cli, monkeypatch, args, message):
    """Through the console script's entry point in this process, from the repository (a fresh
    process per case only started Python again; `test_cli_commands` runs the real script)."""
    (tmp_path / "bad.yaml").write_text("kind: chat\nbogus: 1\n")
    (tmp_path / "kind.yaml").write_text("kind: poem\n")
    store = tmp_path / "store"
    run_pipeline([fixtures_dir / "support_chats.jsonl"], "support", store=store)
    args = [a.replace("{bad}", str(tmp_path / "bad.yaml")).replace("{kind}", str(
        tmp_path / "kind.yaml")).replace("{store}", str(store)) for a in args]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DATAPREP_STORE", str(tmp_path / "other"))
    proc = cli(*args)
    assert proc.code == 1
    lines = proc.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.err
    assert "Traceback" not in proc.err


def test_cli_commands(tmp_path, cli, monkeypatch):
    """Each command once as a user's shell runs it (a subprocess); their other forms through
    the same entry point in this process."""
    env = {"DATAPREP_STORE": str(tmp_path / "store")}
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DATAPREP_STORE", env["DATAPREP_STORE"])
    proc = run_cli("run", "fixtures/support_chats.jsonl", "fixtures/transcripts.txt",
                   "--name", "support", env=env)
    assert proc.returncode == 0, proc.stderr
    version = proc.stdout.strip().splitlines()[-1]
    assert (tmp_path / "store" / "support" / version / "manifest.json").is_file()

    listing = run_cli("versions", "support", env=env)
    assert version in listing.stdout and "*" in listing.stdout

    shown = run_cli("show", "support@latest", "--split", "train", "-n", "3", env=env)
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(rows) == 3 and {"id", "source", "messages", "prompt", "completion"} <= set(rows[0])

    as_json = json.loads(cli("report", f"support@{version[:6]}", "--json").out)
    assert as_json["version"] == version and as_json["accounting_ok"]
    table = run_cli("report", "support@latest", env=env).stdout
    assert "accounting identity" in table and "holds" in table

    page = tmp_path / "r.html"
    assert cli("report", "support@latest", "--html", str(page)).code == 0
    html = page.read_text()
    assert "<style>" in html and "missing_turn:assistant" in html
    for external in ("<script", "<link", "src=", "url(", "http://", "https://"):
        assert external not in html

    bad = run_cli("validate", "fixtures/instructions.jsonl", env=env)
    assert bad.returncode == 1 and "4 rejected" in bad.stdout
    assert "null_field:response" in bad.stdout
    good_file = tmp_path / "ok.jsonl"
    good_file.write_text('{"prompt": "a", "response": "b"}\n')
    assert cli("validate", str(good_file)).code == 0
    assert cli("run").code == 2  # usage error
    helped = " ".join(cli("run", "--help").out.split())
    assert all(step in helped for step in ("PII", "languages", "deduplicate", "split", "augment"))


def test_python_load_from_disk_as_in_readme(tmp_path):
    store = tmp_path / "store"
    version = run_cli("run", "fixtures/support_chats.jsonl", "--name", "support", "--store",
                      str(store), "-q").stdout.strip()
    code = f"import datasets; print(datasets.load_from_disk('{store}/support/{version}'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ})
    assert out.returncode == 0 and "DatasetDict" in out.stdout and "validation" in out.stdout
