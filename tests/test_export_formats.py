"""`dataprep export`: every format's files parse and hold exactly each split's rows (compared,
row by row, with the version's own columns), TRL's `SFTTrainer` trains two steps on each TRL
view with a tiny model (the EOS on the answer), the `ClassLabel` column splits stratified with
`datasets`' own `train_test_split`, and the refusals: DIRs in or around the store, files no
export wrote, rows a format cannot hold, unknown formats and versions."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import ClassLabel, Dataset, load_from_disk

from dataprep.errors import DataprepError
from dataprep.export import FORMATS, MARKER_FILE, alpaca_record, export_version
from dataprep.pipeline import run_pipeline
from dataprep.store import SPLITS, open_version

from .conftest import FIXTURES, run_cli
from .tiny_models import build_causal_lm

SPEAKER = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}
TOOL_TURN = {"role": "tool", "content": "Order lookup: parcel 77213 left the warehouse today."}


def odd_chats(path: Path) -> Path:
    """The support fixture with one conversation given a tool turn (`tool-row`) and another two
    user turns in a row (`two-users`): rows Alpaca, and for the tool turn OpenAI, cannot hold."""
    lines = (FIXTURES / "support_chats.jsonl").read_bytes().split(b"\n")  # bad bytes kept
    first, second = json.loads(lines[0]), json.loads(lines[2])
    first["id"] = "tool-row"
    first["messages"].insert(2, TOOL_TURN)
    second["id"] = "two-users"
    second["messages"].insert(1, {"role": "user", "content": "Also, the box was damaged."})
    lines[0], lines[2] = json.dumps(first).encode(), json.dumps(second).encode()
    path.write_bytes(b"\n".join(lines))
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A store with a chat, a classification, an instruction and an odd chat version, and the
    tiny Llama (with a chat template) for the TRL trainings."""
    root = tmp_path_factory.mktemp("export")
    store = root / "store"
    train_only = root / "train-only.yaml"
    train_only.write_text((FIXTURES / "reviews.recipe.yaml").read_text(encoding="utf-8")
                          + "split: {ratios: [1, 0, 0]}\n", encoding="utf-8")
    specs = {}
    for name, inputs, recipe in [
        ("support", FIXTURES / "support_chats.jsonl", None),
        ("reviews", FIXTURES / "reviews.csv", FIXTURES / "reviews.recipe.yaml"),
        ("tasks", FIXTURES / "instructions.jsonl", None),
        ("odd", odd_chats(root / "odd.jsonl"), None),
        ("whole", FIXTURES / "reviews.csv", train_only),
    ]:
        specs[name] = f"{name}@{run_pipeline([inputs], name, recipe, store).version}"
    lm = build_causal_lm(root / "lm", chat_template=True)
    return {"store": store, "root": root, "lm": lm, "files": store_files(store), **specs}


def store_files(store: Path) -> dict[str, int]:
    return {str(p.relative_to(store)): p.stat().st_mtime_ns for p in store.rglob("*")}


def export(shop, spec: str, fmt: str, tmp_path: Path, **kw) -> tuple[Path, object]:
    """Export into `tmp_path/<fmt>`, checking that the store is left as it was (no cache file
    of `datasets` written beside a version's splits, nothing touched)."""
    out = tmp_path / fmt
    try:
        done = export_version(shop[spec], fmt, out, shop["store"], **kw)
    finally:
        assert store_files(shop["store"]) == shop["files"]
    return out, done


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def last_answer(messages: list[dict]) -> int:
    return max(i for i, m in enumerate(messages) if m["role"] == "assistant")


# --- JSON Lines formats ------------------------------------------------------------------------

def expected_openai(row: dict, kind: str) -> dict:
    return {"messages": row["messages"]}


def expected_sharegpt(row: dict, kind: str) -> dict:
    return {"id": row["id"], "conversations": [{"from": SPEAKER[m["role"]], "value": m["content"]}
                                               for m in row["messages"]]}


def expected_alpaca(row: dict, kind: str) -> dict:
    """Written from the version's own columns where they hold the answer (a label, the
    rendered completion), independently of `alpaca_record`."""
    messages = row["messages"]
    end = last_answer(messages)
    output = row["label"] if kind == "classification" else messages[end]["content"]
    assert row["completion"] == output  # the alpaca template renders the answer as it is
    record = {"instruction": messages[end - 1]["content"], "input": "", "output": output}
    if kind != "chat":
        return record
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    earlier = messages[1 if system else 0:end - 1]
    history = [[earlier[i]["content"], earlier[i + 1]["content"]]
               for i in range(0, len(earlier), 2)]
    return {**record, "system": system, "history": history}


EXPECTED = {"openai": expected_openai, "sharegpt": expected_sharegpt, "alpaca": expected_alpaca}


@pytest.mark.parametrize("spec", ["support", "reviews", "tasks"])
@pytest.mark.parametrize("fmt", list(EXPECTED))
def test_jsonl_formats_hold_exactly_the_split(shop, tmp_path, spec, fmt):
    out, done = export(shop, spec, fmt, tmp_path)
    version = open_version(shop[spec], shop["store"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER_FILE, *(f"{s}.jsonl" for s in SPLITS)])
    for split in SPLITS:
        rows = list(version.data[split])
        written = read_jsonl(out / f"{split}.jsonl")
        assert len(written) == len(rows) == done.splits[split].rows
        assert written == [EXPECTED[fmt](row, version.kind) for row in rows]
    marker = json.loads((out / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["spec"] == version.spec and marker["format"] == fmt
    assert {s: marker["splits"][s]["rows"] for s in SPLITS} == {
        s: version.data[s].num_rows for s in SPLITS}


def test_a_classification_answer_is_its_label(shop, tmp_path):
    """OpenAI's last turn is the row's label: the class a model must learn to answer."""
    out, _ = export(shop, "reviews", "openai", tmp_path)
    version = open_version(shop["reviews"], shop["store"])
    written = read_jsonl(out / "train.jsonl")
    assert [r["messages"][-1] for r in written] == [
        {"role": "assistant", "content": label} for label in list(version.data["train"]["label"])]
    assert all(r["messages"][-1]["content"] in version.labels() for r in written)


def test_rows_a_format_cannot_hold_are_named(shop, tmp_path):
    """A tool turn cannot go to OpenAI's format, nor two user turns in a row to Alpaca's;
    ShareGPT holds both. Nothing is left behind by a refused export."""
    with pytest.raises(DataprepError, match=r"openai: 1 row\(s\) of \w+ have tool turns.*"
                                            r"'tool-row'"):
        export(shop, "odd", "openai", tmp_path)
    with pytest.raises(DataprepError, match=r"alpaca: row '(tool-row|two-users)'"):
        export(shop, "odd", "alpaca", tmp_path)
    assert list(tmp_path.iterdir()) == []
    out, _ = export(shop, "odd", "sharegpt", tmp_path)
    turns = {r["id"]: r["conversations"] for s in SPLITS for r in read_jsonl(out / f"{s}.jsonl")}
    assert {"from": "tool", "value": TOOL_TURN["content"]} in turns["tool-row"]
    assert [t["from"] for t in turns["two-users"][:3]] == ["human", "human", "gpt"]


def test_alpaca_record_shapes():
    user, answer = {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}
    system = {"role": "system", "content": "s"}
    assert alpaca_record([user, answer, user], False) == {"instruction": "q", "input": "",
                                                          "output": "a"}
    assert alpaca_record([system, user, answer, user, answer], True)["history"] == [["q", "a"]]
    assert alpaca_record([system, user, answer], False) is None
    assert alpaca_record([answer, user, answer], True) is None
    assert alpaca_record([user], True) is None


@pytest.mark.parametrize("fmt", ["openai", "parquet", "trl-messages", "datasets"])
def test_an_empty_split_is_no_file(shop, tmp_path, fmt):
    """A file format writes no file for an empty split (`load_dataset` refuses a folder with an
    empty one), so the folder loads with the splits there are; a `datasets` folder keeps it,
    and loads (`save_to_disk` alone writes a folder `load_from_disk` fails on)."""
    import datasets

    out, done = export(shop, "whole", fmt, tmp_path)
    version = open_version(shop["whole"], shop["store"])
    assert version.data["validation"].num_rows == version.data["test"].num_rows == 0
    assert done.splits["test"].rows == 0
    if fmt.startswith(("trl", "datasets")):
        saved = load_from_disk(str(out))
        assert saved["test"].num_rows == 0 and saved["train"].num_rows == done.splits["train"].rows
        assert saved["test"].features == saved["train"].features
        return
    assert done.splits["test"].path is None
    builder = "json" if fmt == "openai" else "parquet"
    loaded = datasets.load_dataset(builder, data_dir=str(out), cache_dir=str(tmp_path / "c"))
    assert list(loaded) == ["train"] and loaded["train"].num_rows == version.data["train"].num_rows


# --- datasets and Parquet -------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "columns"), [("trl-messages", ["messages"]),
                                               ("trl-prompt-completion", ["prompt", "completion"])])
@pytest.mark.parametrize("spec", ["support", "reviews"])
def test_trl_views_hold_only_their_columns(shop, tmp_path, fmt, columns, spec):
    out, done = export(shop, spec, fmt, tmp_path)
    version = open_version(shop[spec], shop["store"])
    views = load_from_disk(str(out))
    assert list(views) == list(SPLITS)
    for split in SPLITS:
        assert views[split].column_names == columns
        assert len(views[split]) == done.splits[split].rows == version.data[split].num_rows
        assert views[split].to_list() == version.data[split].select_columns(columns).to_list()


def test_parquet_and_datasets_views_carry_a_class_label(shop, tmp_path):
    version = open_version(shop["reviews"], shop["store"])
    labels = version.labels()
    parquet, _ = export(shop, "reviews", "parquet", tmp_path)
    folder, _ = export(shop, "reviews", "datasets", tmp_path)
    saved = load_from_disk(str(folder))
    for split in SPLITS:
        stored = version.data[split]
        assert pq.read_table(parquet / f"{split}.parquet").num_rows == stored.num_rows
        for view in (Dataset.from_parquet(str(parquet / f"{split}.parquet"),
                                          cache_dir=str(tmp_path / "cache")), saved[split]):
            assert view.features["label"] == ClassLabel(names=labels)
            assert view.column_names == stored.column_names
            assert view.features["label"].int2str(list(view["label"])) == list(stored["label"])
            for name in stored.column_names:
                if name != "label":
                    assert list(view[name]) == list(stored[name]), name


def test_parquet_of_an_unlabelled_version_is_the_split(shop, tmp_path):
    out, _ = export(shop, "support", "parquet", tmp_path)
    version = open_version(shop["support"], shop["store"])
    table = pq.read_table(out / "test.parquet")
    assert table.column_names == version.data["test"].column_names
    assert table.to_pylist() == version.data["test"].to_list()


def test_stratified_split_on_the_class_label(shop, tmp_path):
    """`datasets`' own stratified split works on the exported label, not on the stored string
    column (which is why the view converts it)."""
    version = open_version(shop["reviews"], shop["store"])
    with pytest.raises(ValueError, match="ClassLabel"):
        version.data["train"].train_test_split(test_size=0.5, stratify_by_column="label")
    out, _ = export(shop, "reviews", "datasets", tmp_path)
    train = load_from_disk(str(out))["train"]
    halves = train.train_test_split(test_size=0.5, stratify_by_column="label", seed=0)
    whole = Counter(train["label"])
    for half in halves.values():
        counts = Counter(half["label"])
        assert set(counts) == set(whole)
        for label, n in whole.items():
            assert abs(counts[label] - n / 2) <= 1


# --- TRL's SFTTrainer on the TRL views -------------------------------------------------------

def sft_trainer(shop, dataset, tmp_path: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(str(shop["lm"]))
    config = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2,
                       per_device_train_batch_size=2, learning_rate=1e-3, logging_steps=1,
                       save_strategy="no", report_to="none", use_cpu=True, max_length=256,
                       seed=0)
    model = AutoModelForCausalLM.from_pretrained(str(shop["lm"]))
    return SFTTrainer(model=model, args=config, train_dataset=dataset,
                      processing_class=tokenizer), tokenizer


@pytest.mark.parametrize(("spec", "fmt"), [("support", "trl-messages"),
                                           ("reviews", "trl-prompt-completion")])
def test_sft_trainer_trains_two_steps_on_each_trl_view(shop, tmp_path, spec, fmt):
    out, _ = export(shop, spec, fmt, tmp_path)
    trainer, tokenizer = sft_trainer(shop, load_from_disk(str(out))["train"], tmp_path)
    result = trainer.train()
    assert trainer.state.global_step == 2
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    if fmt != "trl-prompt-completion":
        return
    version = open_version(shop[spec], shop["store"])
    for row, stored in zip(trainer.train_dataset, version.data["train"], strict=True):
        learned = [t for t, label in zip(row["input_ids"], row["labels"], strict=True)
                   if label != -100]
        assert learned[-1] == tokenizer.eos_token_id == row["input_ids"][-1]
        assert tokenizer.decode(learned[:-1]) == stored["label"]


def test_the_whole_split_takes_the_eos_off_the_answer(shop, tmp_path):
    """What the view prevents: handed the stored split, TRL puts the EOS on `text` and learns
    the label without it. (`messages` is left out here: with it, which view TRL reads depends
    on the order of a set of column names, i.e. on the process's string hashing.)"""
    version = open_version(shop["reviews"], shop["store"])
    stored = version.data["train"].remove_columns(["messages"])
    split = Dataset.from_dict(stored.to_dict())  # in memory: TRL's maps cache beside the data
    trainer, tokenizer = sft_trainer(shop, split, tmp_path)
    row = trainer.train_dataset[0]
    learned = [t for t, label in zip(row["input_ids"], row["labels"], strict=True)
               if label != -100]
    assert tokenizer.eos_token_id not in learned


# --- the folder, and the command line --------------------------------------------------------

def test_an_earlier_export_is_replaced_only_with_overwrite(shop, tmp_path):
    out, _ = export(shop, "reviews", "openai", tmp_path)
    with pytest.raises(DataprepError, match="holds an earlier export; give --overwrite"):
        export_version(shop["reviews"], "parquet", out, shop["store"])
    export_version(shop["reviews"], "parquet", out, shop["store"], overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER_FILE, *(f"{s}.parquet" for s in SPLITS)])
    assert [p.name for p in tmp_path.iterdir()] == ["openai"]  # nothing beside it
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    with pytest.raises(DataprepError, match=r"holds files that no .* wrote \(notes.txt\)"):
        export_version(shop["reviews"], "openai", out, shop["store"], overwrite=True)
    assert (out / "notes.txt").is_file()


def test_refused_folders(shop, tmp_path):
    store = shop["store"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me\n", encoding="utf-8")
    a_file = tmp_path / "file"
    a_file.write_text("x", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    cases = {store / "reviews" / "out": "inside the store", store / "x" / ".." / "y":
             "inside the store", store.parent: "holding the store",
             foreign: "holds files that no `dataprep export` wrote", a_file: "is a file"}
    for out, why in cases.items():
        for overwrite in (False, True):
            with pytest.raises(DataprepError, match=why):
                export_version(shop["reviews"], "openai", out, store, overwrite=overwrite)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in store.iterdir()) == ["odd", "reviews", "support", "tasks",
                                                       "whole"]
    export_version(shop["reviews"], "openai", tmp_path / "empty", store)  # an empty folder
    assert (tmp_path / "empty" / "train.jsonl").is_file()


def test_cli_export_prints_what_it_wrote(shop, tmp_path):
    """As a user runs it (a subprocess), then `--json` and `--quiet` in-process (a subprocess
    costs seconds of imports)."""
    from typer.testing import CliRunner

    from dataprep.cli import app

    store, spec = str(shop["store"]), shop["reviews"]
    version = open_version(spec, shop["store"])
    done = run_cli("export", spec, "--format", "alpaca", str(tmp_path / "a"), "--store", store)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{version.spec} exported as alpaca to {tmp_path / 'a'}"
    assert [line.split()[:2] for line in lines[1:]] == [
        [s, str(version.data[s].num_rows)] for s in SPLITS]
    as_json = CliRunner().invoke(app, ["export", "reviews", "--format", "sharegpt",
                                       str(tmp_path / "b"), "--store", store, "--json"])
    record = json.loads(as_json.stdout)
    assert record["spec"] == version.spec and record["format"] == "sharegpt"
    assert {s: record["splits"][s]["rows"] for s in SPLITS} == {
        s: version.data[s].num_rows for s in SPLITS}
    assert record["splits"]["test"]["path"] == str(tmp_path / "b" / "test.jsonl")
    quiet = CliRunner().invoke(app, ["export", spec, "--format", "openai", str(tmp_path / "c"),
                                     "--store", store, "-q"])
    assert quiet.stdout == f"{tmp_path / 'c'}\n"
    shown = CliRunner().invoke(app, ["export", "-h"])
    assert shown.exit_code == 0 and "--json" in shown.stdout and "--overwrite" in shown.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["reviews", "--format", "csv"], 2, "unknown format 'csv': use one of " + ", ".join(FORMATS)),
    (["reviews@abcdef", "--format", "openai"], 1, "reviews@abcdef: no such version"),
    (["nothing@latest", "--format", "openai"], 1, "no dataset named 'nothing'"),
    (["reviews", "--format", "openai", "--json", "-q"], 2, "--json and --quiet exclude"),
])
def test_cli_bad_input_is_one_line(shop, tmp_path, cli, args, code, message):
    done = cli("export", *args, str(tmp_path / "out"), "--store", str(shop["store"]))
    assert done.code == code
    assert done.err.count("\n") == 1 and message in done.err, done.err
    assert done.out == "" and not (tmp_path / "out").exists()
