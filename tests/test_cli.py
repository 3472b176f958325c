"""The `dataprep` command line as a careless or hostile user meets it: every mistake is one line on
stderr (exit 1, or 2 for a usage error), never a traceback, and nothing is published; what the
data holds is printed as text; `--json` and `--quiet` print only their result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dataprep.pipeline import run_pipeline

from .conftest import FIXTURES, run_cli

BOLD = "[bold red]x[/]"
ESC = "\x1b[31m"




@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """A store with one chat version (`support`) and one built from rows that hold markup, escape
    sequences and bidi controls in their text, label and id (`dirty`)."""
    root = tmp_path_factory.mktemp("cli")
    store = root / "store"
    run_pipeline([FIXTURES / "support_chats.jsonl"], "support", store=store)
    run_pipeline([dirty_rows(root / "dirty.jsonl")], "dirty", store=store)
    return store


def dirty_rows(path: Path) -> Path:
    topics = ["battery", "screen", "charger", "sound", "strap", "cable", "speaker", "light",
              "case", "button"]
    rows = [{"id": f"r{i}", "label": "pos" if i % 2 else "neg",
             "text": f"The {topics[i % 10]} and the {topics[(i * 3 + 1) % 10]} work "
                     f"{'well' if i % 2 else 'badly'} after {i} days of use with my "
                     f"{topics[(i * 7 + 2) % 10]}."} for i in range(40)]
    rows[0]["text"] = f"Shown literally: {BOLD} and {ESC}red\u202e, the charger works well."
    rows[0]["label"] = "pos\u0000\u001b[31m"
    rows[1]["label"] = "\u0000\u001b[0m"            # nothing left of it: removed, named
    rows[2]["label"] = "[red]odd[/]"                 # too rare to split: printed by the report
    rows[3]["id"] = f"id\u202e{ESC}{BOLD}"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def published(store: Path) -> set[str]:
    """Everything in the store (its tree), to show an error wrote nothing."""
    return {str(p.relative_to(store)) for p in store.rglob("*")} if store.exists() else set()


@pytest.mark.parametrize("args", [
    ["show", "support@latest", "-n", "-1"],
    ["show", "/etc@latest"],
    ["show", "../..@latest"],
    ["show", "support@../../x"],
    ["show", "support@LATEST"],
    ["report", "../support@latest"],
    ["report", "/abs@latest", "--html", "{tmp}/r.html"],
    ["versions", ".."],
    ["show", "support@latest", "--split", "dev"],
    ["show", "support@latest", "--json", "--quiet"],
    ["report", "support@latest", "--json", "--html", "{tmp}/r.html"],
    ["validate", "fixtures/support_chats.jsonl", "--examples", "-1"],
    ["run", "fixtures/support_chats.jsonl", "--name", "n" * 300],
    ["run", "fixtures/support_chats.jsonl", "--name", "../outside"],
    ["run", "fixtures/support_chats.jsonl", "--name", ".hidden"],
    ["run", "fixtures/support_chats.jsonl", "--name", "ok", "--json", "-q"],
    ["run", "fixtures/support_chats.jsonl"],
    ["setup", "banana"],
    ["frobnicate"],
])
def test_usage_errors_exit_2_in_one_line(cli, shop, tmp_path, monkeypatch, args):
    monkeypatch.chdir(FIXTURES.parent)
    before = published(shop)
    result = cli(*(a.replace("{tmp}", str(tmp_path)) for a in args), "--store", shop) \
        if args[0] not in ("frobnicate", "setup") else cli(*args)
    assert result.code == 2, (result.err, result.out)
    assert "-h" in result.one_line_error()
    assert result.out == "" and published(shop) == before
    assert not (tmp_path / "r.html").exists() and not (shop.parent / "outside").exists()


def test_bare_dataprep_prints_help_and_exits_2(cli):
    result = cli()
    assert result.code == 2 and "Commands" in result.out and "Traceback" not in result.err


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_h_is_help_everywhere(cli, flag):
    assert cli(flag).code == 0
    for command in ("run", "validate", "versions", "show", "report"):
        shown = cli(command, flag)
        assert shown.code == 0 and "--json" in shown.out and "--quiet" in shown.out, command


def test_version_and_completion():
    from dataprep import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"dataprep {__version__}"
    script = run_cli("--show-completion", "bash", env={"SHELL": "/bin/bash"})
    assert script.returncode == 0, script.stderr
    assert "complete -o default -F" in script.stdout and "dataprep" in script.stdout


def test_a_subprocess_usage_error_is_one_line_too():
    proc = run_cli("show", "support@latest", "-n", "-1")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# --- errors of the world (exit 1): the store, the --html target ------------------------------

def test_html_inside_the_store_is_refused_and_the_manifest_kept(cli, shop):
    manifest = next((shop / "support").glob("*/manifest.json"))
    before = manifest.read_bytes()
    for target in (manifest, manifest.parent / "new.html", shop / ".." / shop.name / "x.html"):
        result = cli("report", "support@latest", "--html", target, "--store", shop)
        assert result.code == 1 and "inside the store" in result.one_line_error()
    assert manifest.read_bytes() == before and not (manifest.parent / "new.html").exists()


def test_html_through_a_link_into_the_store_is_refused(cli, shop, tmp_path):
    (tmp_path / "link").symlink_to(shop / "support")
    result = cli("report", "support@latest", "--html", tmp_path / "link" / "latest",
                 "--store", shop)
    assert result.code == 1 and "inside the store" in result.one_line_error()


@pytest.mark.parametrize(("target", "message"), [
    ("missing/dir/r.html", "does not exist"), (".", "is a folder")])
def test_html_to_a_missing_folder_or_a_folder(cli, shop, tmp_path, target, message):
    result = cli("report", "support@latest", "--html", tmp_path / target, "--store", shop)
    assert result.code == 1 and message in result.one_line_error()
    assert not (tmp_path / "missing").exists()


def test_html_copies_the_page(cli, shop, tmp_path):
    result = cli("report", "support@latest", "--html", tmp_path / "r.html", "--store", shop)
    assert result.code == 0 and "<style>" in (tmp_path / "r.html").read_text()


@pytest.fixture
def copy_of(shop, tmp_path):
    """A private copy of the store, to damage."""
    import shutil

    def make() -> Path:
        shutil.copytree(shop, tmp_path / "store", symlinks=True)
        return tmp_path / "store"

    return make


@pytest.mark.parametrize(("content", "message"), [
    ("", "holds ''"),
    ("garbage!\n", "holds 'garbage!'"),
    ("../../support/{version}\n", "not the id of a complete version"),
    ("{abs}\n", "not the id of a complete version"),
    ("0123456789ab\n", "not the id of a complete version"),
    (b"\xff\xfe\x00", "not the id of a complete version"),
    (None, "no version has been written yet"),
])
@pytest.mark.parametrize("command", ["show", "report"])
def test_a_damaged_latest_pointer_is_one_line(cli, copy_of, command, content, message):
    store = copy_of()
    pointer = store / "support" / "latest"
    version = pointer.read_text().strip()
    if content is None:
        pointer.unlink()
    elif isinstance(content, bytes):
        pointer.write_bytes(content)
    else:
        pointer.write_text(content.replace("{version}", version).replace(
            "{abs}", str(store / "support" / version)))
    result = cli(command, "support@latest", "--store", store)
    assert result.code == 1 and message in result.one_line_error()
    # a named version still resolves, and a run rewrites the pointer
    assert cli("show", f"support@{version}", "-q", "--store", store).code == 0
    again = cli("run", FIXTURES / "support_chats.jsonl", "--name", "support", "-q",
                "--store", store)
    assert again.code == 0 and pointer.read_text().strip() == version


def test_a_latest_pointer_to_a_folder_outside_is_never_followed(cli, copy_of, tmp_path):
    store = copy_of()
    outside = tmp_path / "elsewhere" / "0123456789ab"
    outside.mkdir(parents=True)
    (outside / "manifest.json").write_text("{}")
    (store / "support" / "latest").write_text(str(outside) + "\n")
    result = cli("show", "support", "--store", store)
    assert result.code == 1 and "not the id of a complete version" in result.one_line_error()


@pytest.mark.parametrize("damage", ["truncate", "not_object", "wrong_version", "missing_key"])
def test_a_damaged_manifest_is_one_line(cli, copy_of, damage):
    store = copy_of()
    manifest = next((store / "support").glob("*/manifest.json"))
    data = json.loads(manifest.read_text())
    text = {"truncate": manifest.read_text()[:40], "not_object": "[1, 2]",
            "wrong_version": json.dumps({**data, "version": "fedcba987654"}),
            "missing_key": json.dumps({k: v for k, v in data.items() if k != "counts"})}[damage]
    manifest.write_text(text)
    result = cli("versions", "support", "--store", store)
    assert result.code == 1 and str(manifest) in result.one_line_error()


def test_a_version_whose_splits_are_gone_is_one_line(cli, copy_of):
    import shutil

    store = copy_of()
    version = (store / "support" / "latest").read_text().strip()
    shutil.rmtree(store / "support" / version / "train")
    result = cli("show", "support@latest", "--store", store)
    assert result.code == 1 and "damaged version" in result.one_line_error()


# --- recipes, through `run`: one line, nothing published ---------------------------------------

BOMB = "kind: chat\nfields:\n  a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


@pytest.mark.parametrize(("text", "message"), [
    (BOMB, "alias *a not allowed"),
    (b"kind: chat\nseed: \xff\xfe\n", ":2: not UTF-8"),
    ("seed: -1\n", "seed: -1"),
    ("split:\n  ratios: [0, 0, 0]\n", "split.ratios: the ratios must not all be 0"),
    ("- kind: chat\n", "must be a mapping"),
    ("just a string\n", "must be a mapping"),
    ("[" * 50_000, "nested too deeply"),
    ("seed: [" + "1, " * 100_000 + "1]\n", "seed: [1, 1, 1"),
    (None, "is a folder"),
    ("{missing}", "recipe file not found"),
])
def test_bad_recipes_are_one_line_and_publish_nothing(cli, tmp_path, text, message):
    recipe = tmp_path / "recipe.yaml"
    if text is None:
        recipe.mkdir()
    elif text == "{missing}":
        pass
    elif isinstance(text, bytes):
        recipe.write_bytes(text)
    else:
        recipe.write_text(text)
    store = tmp_path / "store"
    result = cli("run", FIXTURES / "support_chats.jsonl", "--name", "support", "--recipe",
                 recipe, "--store", store)
    line = result.one_line_error()
    assert result.code == 1 and message in line and len(line) < 400, line
    assert not list(store.glob("support/*"))


# --- what the data holds, on a terminal ---------------------------------------------------------

def test_show_prints_data_as_text(cli, shop):
    shown = cli("show", "dirty@latest", "-n", "100", "--split", "validation", "--store", shop)
    shown_all = shown.out + "".join(
        cli("show", "dirty@latest", "-n", "100", "--split", s, "--store", shop).out
        for s in ("train", "test"))
    assert shown.code == 0 and "\x1b" not in shown_all and "\u202e" not in shown_all
    rows = [json.loads(line) for line in shown_all.splitlines()]
    assert BOLD in next(r["text"] for r in rows if r["id"] == "r0")
    assert {r["label"] for r in rows} == {"pos", "neg", "[red]odd[/]"}  # r1 had no label left
    assert f"id{BOLD}" in {r["id"] for r in rows}


def test_the_report_table_shows_labels_as_text(cli, shop):
    table = cli("report", "dirty@latest", "--store", shop)
    assert table.code == 0 and "[red]odd[/]" in table.out and "empty_after_clean:label" in table.out
    assert "\x1b" not in table.out


def test_validate_lists_rejects_as_text(cli, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": f"{BOLD} {ESC} \u202e", "label": ["not", "a string"]})
                   + "\n" + f'{{"text": "{BOLD}\x1b[2J", broken\n')
    result = cli("validate", bad)
    assert result.code == 1 and "\x1b" not in result.out and "\u202e" not in result.out
    assert BOLD in result.out and "\\x1b" in result.out
    as_json = cli("validate", bad, "--json")
    doc = json.loads(as_json.out)
    assert as_json.code == 1 and doc["rejected"] == 2 and doc["rows"] == 2
    assert sum(doc["rejected_by_reason"].values()) == 2 and "\x1b" not in as_json.out
    quiet = cli("validate", bad, "-q")
    assert quiet.code == 1 and quiet.out.strip() == "2 rows read, 0 valid, 2 rejected"
    assert cli("validate", bad, "--examples", "0").code == 1


def test_an_error_message_holding_data_is_one_line_of_text(cli, tmp_path):
    weird = tmp_path / f"in{ESC}\u202e\nput.jsonl"
    result = cli("run", weird, "--name", "w", "--store", tmp_path / "store")
    line = result.one_line_error()
    assert result.code == 1 and "\x1b" not in line and "\u202e" not in line and "\\x1b" in line


def test_versions_prints_text(cli, shop):
    listing = cli("versions", "dirty", "--store", shop)
    assert listing.code == 0 and "*" in listing.out and "\x1b" not in listing.out


# --- --json and --quiet ------------------------------------------------------------------------

def test_json_and_quiet_print_only_their_result(cli, shop, tmp_path):
    store = tmp_path / "store"
    ran = cli("run", FIXTURES / "support_chats.jsonl", "--name", "s", "--json", "--store", store)
    doc = json.loads(ran.out)
    assert ran.code == 0 and doc["created"] and doc["report"]["accounting_ok"]
    assert doc["spec"] == f"s@{doc['version']}" and Path(doc["path"]).is_dir()
    quiet = cli("run", FIXTURES / "support_chats.jsonl", "--name", "s", "--quiet", "--store", store)
    assert quiet.out == doc["version"] + "\n"
    again = cli("run", FIXTURES / "support_chats.jsonl", "--name", "s", "--json", "--store", store)
    assert json.loads(again.out)["created"] is False

    listing = json.loads(cli("versions", "s", "--json", "--store", store).out)
    assert [(v["version"], v["latest"]) for v in listing] == [(doc["version"], True)]
    assert cli("versions", "s", "-q", "--store", store).out == doc["version"] + "\n"

    rows = json.loads(cli("show", "s@latest", "-n", "2", "--json", "--store", store).out)
    assert len(rows) == 2 and "messages" in rows[0]
    ids = cli("show", "s@latest", "-n", "2", "-q", "--store", store).out.split()
    assert ids == [r["id"] for r in rows]
    assert cli("show", "s@latest", "-n", "0", "--store", store).out == ""

    report = json.loads(cli("report", "s@latest", "--json", "--store", store).out)
    assert report["version"] == doc["version"]
    line = cli("report", "s@latest", "-q", "--store", store).out
    assert line.count("\n") == 1 and line.startswith(f"s@{doc['version']}: 45 in")
    assert "accounting holds" in line


def test_run_json_with_a_subprocess_has_nothing_else_on_stdout(tmp_path):
    proc = run_cli("run", "fixtures/instructions.jsonl", "--name", "i", "--json",
                   env={"DATAPREP_STORE": str(tmp_path / "store"), "COLUMNS": "80",
                        "PATH": os.environ["PATH"]})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["name"] == "i"


def test_a_multi_line_library_message_prints_as_one_line():
    """pyarrow's thrift errors and others span lines: what a CLI prints of them stays one line,
    and a message with no text quotes the exception's type."""
    from common.errors import UserError, error_line, first_line

    assert "\n" not in error_line(UserError("cannot read (Invalid data\n)"))
    assert first_line(ValueError("\n  \nfirst\nsecond")) == "first"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("x" * 500), 120) == "x" * 120
