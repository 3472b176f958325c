"""The stage list: fixture rows land where they landed before the stages were reshaped, and a
recipe's custom stage filters like a built-in one (or fails the run in one line)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import datasets
import pytest

from dataprep.errors import DataprepError
from dataprep.pipeline import first_pass_stages, run_pipeline
from dataprep.recipe import resolve_recipe

from .conftest import ROOT, run_cli

GOLDEN = Path(__file__).parent / "golden" / "fixture_placement.json"
RUNS = {"support": (["support_chats.jsonl", "transcripts.txt"], None),
        "reviews": (["reviews.csv"], "reviews.recipe.yaml"),
        "instructions": (["instructions.jsonl"], None)}


def placement(path: Path) -> dict:
    """Where every row went: (id, source) per split in order; removals and rejects in order."""
    data = datasets.load_from_disk(str(path))

    def lines(name):
        return [json.loads(line) for line in (path / name).read_text().splitlines()]

    return {
        "splits": {s: [[r["id"], r["source"]] for r in data[s].select_columns(["id", "source"])]
                   for s in data},
        "removed": [[r["source"], r["stage"], r["reason"], r.get("duplicate_of")]
                    for r in lines("removed.jsonl")],
        "rejected": [[r["source"], r["line"], r["reason"]] for r in lines("rejected.jsonl")],
    }


@pytest.mark.parametrize("name", list(RUNS))
def test_fixture_rows_land_where_they_did_before_the_reshape(name, tmp_path, monkeypatch):
    # tests/golden/fixture_placement.json was written by the pipeline before the stages became
    # one list (commit 0fd8c5b), from relative paths so `source` is the same on every machine
    monkeypatch.chdir(ROOT)
    files, recipe = RUNS[name]
    result = run_pipeline([Path("fixtures") / f for f in files], name,
                          Path("fixtures") / recipe if recipe else None, store=tmp_path / "s")
    assert placement(result.path) == json.loads(GOLDEN.read_text())[name]


def test_the_first_pass_order_is_one_list_with_custom_stages_after_their_anchor():
    recipe = resolve_recipe({"custom_stages": [
        {"name": "late", "function": "x.py:f"},
        {"name": "early", "function": "x.py:g", "after": "clean"},
        {"name": "later", "function": "x.py:h", "after": "filters"}]})
    names = [s.name for s in first_pass_stages(recipe)]
    assert names == ["clean", "early", "language", "filter", "late", "later", "dedup_keys"]


FILTER = '''
import pyarrow.compute as pc

def drop_refunds(table, texts):
    """Drop every conversation that mentions a refund."""
    hit = pc.match_substring(pc.utf8_lower(texts), "refund").to_pylist()
    return ["mentions_refund" if h else None for h in hit]
'''


def write_recipe(tmp_path: Path, function: str, body: str = FILTER, file: str = "my_filters.py"
                 ) -> Path:
    (tmp_path / file).write_text(textwrap.dedent(body))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"custom_stages:\n  - {{name: no_refunds, function: \"{function}\"}}\n")
    return recipe


def mentions_refund(path: Path) -> set[str]:
    """The `source` of every line of a JSON Lines file whose text mentions a refund."""
    lines = (ROOT / path).read_bytes().decode("utf-8", "replace").split("\n")
    return {f"{path}:{i}" for i, line in enumerate(lines, 1) if "refund" in line.lower()}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_custom_stage_from_a_file_drops_rows_with_its_name_and_reason(tmp_path, workers,
                                                                       monkeypatch):
    monkeypatch.chdir(ROOT)
    recipe = write_recipe(tmp_path, "my_filters.py:drop_refunds")
    result = run_pipeline([Path("fixtures/support_chats.jsonl")], "support", recipe,
                          store=tmp_path / "s", workers=workers)
    removed = [json.loads(line) for line in (result.path / "removed.jsonl").open()]
    mine = [r for r in removed if r["stage"] == "no_refunds"]
    assert mine and {r["reason"] for r in mine} == {"mentions_refund"}
    data = datasets.load_from_disk(str(result.path))
    kept = [m for s in data for row in data[s]["messages"] for m in row]
    assert not any("refund" in m["content"].lower() for m in kept)
    # every input row that mentions a refund and was not rejected or deduplicated first is gone
    rejected = {f"{r['source']}:{r['line']}" for r in map(json.loads, (result.path /
                                                                     "rejected.jsonl").open())}
    others = {r["source"] for r in removed if r["stage"] != "no_refunds"}
    expected = mentions_refund(Path("fixtures/support_chats.jsonl")) - rejected - others
    assert {r["source"] for r in mine} == expected
    counts = result.report["counts"]
    assert counts["filtered_by_reason"]["mentions_refund"] == len(mine)
    written = sum(data.num_rows.values())
    assert counts["input"] == len(rejected) + len(removed) + written


def test_a_custom_stage_from_a_module_and_its_source_in_the_version_id(tmp_path, monkeypatch):
    package = tmp_path / "pkg" / "my_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "filters.py").write_text(FILTER)
    monkeypatch.syspath_prepend(str(tmp_path / "pkg"))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text('custom_stages:\n  - {name: no_refunds, function: '
                      '"my_pkg.filters:drop_refunds", after: language}\n')
    first = run_pipeline([ROOT / "fixtures/support_chats.jsonl"], "s", recipe, tmp_path / "s")
    stages = {json.loads(line)["stage"] for line in (first.path / "removed.jsonl").open()}
    assert "no_refunds" in stages
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["recipe"]["custom_stage_sources"][0]["function"] == \
        "my_pkg.filters:drop_refunds"
    (package / "filters.py").write_text(FILTER.replace('"refund"', '"password"'))
    second = run_pipeline([ROOT / "fixtures/support_chats.jsonl"], "s", recipe, tmp_path / "s")
    assert second.version != first.version  # an edited filter makes a new version


@pytest.mark.parametrize(("function", "body", "message"), [
    ("my_filters.py:drop_refunds", "def drop_refunds(table, texts):\n    raise KeyError('x')\n",
     "custom stage 'no_refunds' (my_filters.py:drop_refunds) raised KeyError"),
    ("my_filters.py:drop_refunds", "def drop_refunds(table, texts):\n    return [None]\n",
     "returned 1 reasons for"),
    ("my_filters.py:drop_refunds",
     "def drop_refunds(table, texts):\n    return [1] * table.num_rows\n", "returned 1; a reason"),
    ("my_filters.py:drop_refunds", "def drop_refunds(table, texts):\n    return 7\n",
     "returned int, expected one reason or None per row"),
    ("my_filters.py:nope", FILTER, "has no function 'nope'"),
    ("missing.py:drop_refunds", FILTER, "missing.py not found"),
    ("no_such_pkg.mod:fn", FILTER, "No module named 'no_such_pkg'"),
    ("my_filters.py:drop_refunds", "import no_such_module_here\n", "importing 'my_filters.py'"),
])
def test_a_broken_custom_stage_fails_the_run_in_one_line_and_publishes_nothing(
        tmp_path, cli, monkeypatch, function, body, message):
    recipe = write_recipe(tmp_path, function, body)
    store = tmp_path / "store"
    with pytest.raises(DataprepError, match="custom stage 'no_refunds'") as err:
        run_pipeline([ROOT / "fixtures/support_chats.jsonl"], "support", recipe, store)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (store / "support").exists() or not list((store / "support").iterdir())
    monkeypatch.chdir(ROOT)  # the console script's entry point, in this process
    proc = cli("run", "fixtures/support_chats.jsonl", "--name", "support", "--recipe",
               str(recipe), "--store", str(store))
    assert proc.code == 1 and "Traceback" not in proc.err
    assert proc.err.strip().startswith("error: custom stage 'no_refunds'")
    assert len(proc.err.strip().splitlines()) == 1
    assert not (store / "support" / "latest").exists()


def test_a_broken_custom_stage_is_one_line_from_the_console_script(tmp_path):
    """A fresh process (the cases above run in this one) imports the stage's file itself."""
    recipe = write_recipe(tmp_path, "my_filters.py:drop_refunds",
                          "def drop_refunds(table, texts):\n    raise KeyError('x')\n")
    store = tmp_path / "store"
    proc = run_cli("run", "fixtures/support_chats.jsonl", "--name", "support", "--recipe",
                   str(recipe), "--store", str(store))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: custom stage 'no_refunds' (my_filters.py:"
                                          "drop_refunds) raised KeyError")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (store / "support" / "latest").exists()
