"""`dataprep diff A B`: rows added, removed and moved per split checked against sets of ids
computed here from the written splits; a planted label skew read as a shift (PSI, chi-square)
and a version against itself as none; augmented rows and repeated ids matched apart; the JSON,
the one-line and the terminal views, the self-contained page, and the one-line errors.

The "parent against its child shows zero moved rows" check belongs with child versions
(`--from`), which are built elsewhere: it is not here."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import datasets
import pyarrow as pa
import pytest

from dataprep.diff import compare_rows, diff_versions, ids_unique, row_key, shift
from dataprep.pipeline import run_pipeline
from dataprep.store import SPLITS, find_version

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402  (fixtures/synthetic.py, the corpus generator)


def write_rows(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({k: row[k] for k in ("id", "text", "label")}) + "\n")
    return path


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """`c@v1` from 280 generated rows, `c@v2` from those and 80 more (the pipeline re-splits
    all of them, so rows move), `skew@latest`, generated with 90% of one label, and `rep@latest`,
    whose 200 rows share 40 ids."""
    root = tmp_path_factory.mktemp("diff")
    rows = list(synthetic.generate_rows(360, seed=21, words=25))
    base = write_rows(root / "base.jsonl", rows[:280])
    extra = write_rows(root / "extra.jsonl", rows[280:])
    skewed = write_rows(root / "skewed.jsonl", list(synthetic.generate_rows(
        280, seed=22, words=25, label_weights=(0.9, 0.05, 0.05))))
    store = root / "store"
    v1 = run_pipeline([base], "c", None, store)
    v2 = run_pipeline([base, extra], "c", None, store)
    skew = run_pipeline([skewed], "skew", None, store)
    repeated = [{**r, "id": f"R-{i % 40}"} for i, r in enumerate(rows[:200])]
    rep = run_pipeline([write_rows(root / "repeated.jsonl", repeated)], "rep", None, store)
    return SimpleNamespace(store=store, v1=f"c@{v1.version}", v2=f"c@{v2.version}",
                           skew=f"skew@{skew.version}", rep=f"rep@{rep.version}",
                           paths={"v1": v1.path, "v2": v2.path, "rep": rep.path})


def compare(shop, a: str, b: str) -> dict:
    return diff_versions(find_version(a, shop.store), find_version(b, shop.store))


def split_rows(path: Path) -> dict[str, list[dict]]:
    data = datasets.load_from_disk(str(path))
    return {s: data[s].select_columns(["id", "label", "lang", "origin"]).to_list()
            for s in SPLITS}


def id_sets(path: Path) -> dict[str, set[str]]:
    """The input rows' ids per split, from the written files (no dataprep code)."""
    sets = {s: {r["id"] for r in rows if r["origin"] == "original"}
            for s, rows in split_rows(path).items()}
    assert sum(map(len, sets.values())) == len(set().union(*sets.values()))  # ids unique
    return sets


def test_added_removed_and_moved_rows_are_those_of_the_id_sets(shop):
    diff = compare(shop, shop.v1, shop.v2)
    a, b = id_sets(shop.paths["v1"]), id_sets(shop.paths["v2"])
    every_a, every_b = set().union(*a.values()), set().union(*b.values())
    assert diff["key"] == "id"
    for s in SPLITS:
        assert diff["rows"][s] == {
            "a": len(a[s]), "b": len(b[s]), "added": len(b[s] - every_a),
            "removed": len(a[s] - every_b), "kept": len(a[s] & b[s]),
            "moved_out": len(a[s] & (every_b - b[s])), "moved_in": len(b[s] & (every_a - a[s]))}
        for t in SPLITS:
            if t != s:
                assert diff["moved"]["from_to"][s][t] == len(a[s] & b[t])
    assert sum(r["added"] for r in diff["rows"].values()) == len(every_b - every_a) > 0
    assert diff["moved"]["total"] == sum(len(a[s] & (every_b - b[s])) for s in SPLITS) > 0


def test_a_version_against_itself_shows_no_change_and_no_shift(shop):
    diff = compare(shop, shop.v2, shop.v2)
    assert diff["moved"]["total"] == 0
    for s, r in diff["rows"].items():
        assert r["added"] == r["removed"] == r["moved_in"] == r["moved_out"] == 0
        assert r["kept"] == r["a"] == r["b"] > 0, s
    for name in ("labels", "languages"):
        for s, entry in diff[name].items():
            assert entry["a"] == entry["b"]
            assert entry["psi"] == 0 and entry["chi2_p"] == 1.0, (name, s)
    for entry in diff["lengths"]["chars"]["splits"].values():
        assert entry["a"] == entry["b"]
    assert all(v["a"] == v["b"] for v in diff["counts"]["headline"].values())


def test_a_planted_label_skew_is_a_shift_by_both_figures(shop):
    diff = compare(shop, shop.v1, shop.skew)
    a, b = split_rows(shop.paths["v1"]), split_rows(find_version(shop.skew, shop.store).path)
    for s in SPLITS:
        entry = diff["labels"][s]
        pa_, pb = Counter(r["label"] for r in a[s]), Counter(r["label"] for r in b[s])
        assert entry["a"] == dict(pa_) and entry["b"] == dict(pb)
        # PSI by its definition, over the shares of each label (a share of 0 taken as 1e-4)
        p = {k: max(pa_[k] / pa_.total(), 1e-4) for k in pa_ | pb}
        q = {k: max(pb[k] / pb.total(), 1e-4) for k in pa_ | pb}
        expected = sum((q[k] - p[k]) * math.log(q[k] / p[k]) for k in p)
        assert entry["psi"] == pytest.approx(expected, abs=1e-5)
        assert entry["psi"] > 0.1 and entry["chi2_p"] < 0.05, (s, entry)
    assert diff["labels"]["train"]["chi2_p"] < 1e-6


def test_shift_of_a_label_one_side_lacks_is_finite_and_of_an_empty_side_undefined():
    gone = shift({"x": 50, "y": 50}, {"x": 100})
    assert math.isfinite(gone["psi"]) and gone["psi"] > 1 and gone["chi2_p"] < 1e-6
    assert shift({"x": 3}, {}) == {"psi": None, "chi2": None, "chi2_p": None}
    assert shift({"x": 3}, {"x": 7}) == {"psi": 0.0, "chi2": 0.0, "chi2_p": 1.0}


def side(rows: dict[str, list[tuple[str, str, bool]]]) -> dict[str, pa.Table]:
    """Per split, a table of what the comparison needs of a version: id, text, augmented."""
    return {s: pa.table({"id": pa.array([r[0] for r in rows.get(s, [])], pa.string()),
                         "text": pa.array([r[1] for r in rows.get(s, [])], pa.string()),
                         "augmented": pa.array([r[2] for r in rows.get(s, [])], pa.bool_())})
            for s in SPLITS}


def keyed(sides: list[dict[str, pa.Table]]) -> tuple[bool, dict]:
    """Whether rows are matched by id, and the comparison of the rows of `sides`."""
    by_id = all(ids_unique([t[s].column("id") for s in SPLITS]) for t in sides)
    tables = [{s: pa.table({"key": row_key(t[s].column("id").combine_chunks(),
                                           t[s].column("text").combine_chunks(), by_id),
                            "augmented": t[s].column("augmented")}) for s in SPLITS}
              for t in sides]
    return by_id, compare_rows(*tables)


def test_augmented_rows_count_apart_and_only_as_added_or_removed():
    a = side({"train": [("r1", "one", False), ("r2", "two", False), ("r1~s0", "uno", True)],
              "test": [("r3", "three", False)]})
    b = side({"train": [("r1", "one", False), ("r1~s1", "eins", True)],
              "validation": [("r2", "two", False)], "test": [("r4", "four", False)]})
    by_id, diff = keyed([a, b])
    assert by_id
    assert diff["rows"]["train"] == {"a": 2, "b": 1, "added": 0, "removed": 0, "kept": 1,
                                     "moved_out": 1, "moved_in": 0}
    assert diff["rows"]["test"]["added"] == diff["rows"]["test"]["removed"] == 1
    assert diff["moved"]["from_to"]["train"]["validation"] == diff["moved"]["total"] == 1
    assert diff["augmented"]["train"] == {"a": 1, "b": 1, "added": 1, "removed": 1}


def test_repeated_ids_match_rows_by_id_and_text():
    a = side({"train": [("x", "first text", False), ("x", "second text", False)]})
    b = side({"train": [("x", "first text", False), ("x", "second text, edited", False)]})
    by_id, diff = keyed([a, b])
    assert not by_id
    assert diff["rows"]["train"] == {"a": 2, "b": 2, "added": 1, "removed": 1, "kept": 1,
                                     "moved_out": 0, "moved_in": 0}




def test_json_is_one_document_of_the_comparison(cli, shop):
    code, out, err = cli("diff", shop.v1, shop.v2, "--json", "--store", shop.store)
    assert code == 0, err
    assert json.loads(out) == json.loads(json.dumps(compare(shop, shop.v1, shop.v2)))


def test_terminal_and_quiet_views(cli, shop):
    code, out, _ = cli("diff", shop.v1, shop.skew, "--store", shop.store)
    assert code == 0
    for part in ("Rows per split", "Labels per split", "PSI", "chi-square p", "Lengths",
                 shop.v1, shop.skew):
        assert part in out
    code, out, _ = cli("diff", shop.v2, shop.v2, "-q", "--store", shop.store)
    assert code == 0 and out.count("\n") == 1 and "moved 0;" in out


def test_html_page_is_self_contained(cli, shop, tmp_path):
    page = tmp_path / "diff.html"
    code, out, err = cli("diff", shop.v1, shop.v2, "--html", page, "--store", shop.store)
    assert code == 0, err
    assert out.strip().endswith(str(page))
    html = page.read_text(encoding="utf-8")
    for external in ("<script", "<link", "src=", "url(", "http://", "https://"):
        assert external not in html
    for plot in ("rows", "labels-train", "languages-test", "length-words-validation"):
        assert f"data-plot='{plot}'" in html
    assert shop.v1 in html and shop.v2 in html


def test_html_inside_the_store_is_refused(cli, shop):
    target = shop.store / "c" / "diff.html"
    code, out, err = cli("diff", shop.v1, shop.v2, "--html", target, "--store", shop.store)
    assert code == 1 and err.count("\n") == 1 and "inside the store" in err
    assert out == "" and not target.exists()


@pytest.mark.parametrize(("args", "code", "message"), [
    (("c@ffffffffffff", "c@latest"), 1, "no such version"),
    (("c@latest", "nothere@latest"), 1, "no dataset named 'nothere'"),
    (("c@latest", "c@not-hex"), 2, "'latest' or (a prefix of)"),
    (("c@latest", "../c"), 2, "invalid dataset name"),
    (("c@latest", "c@latest", "--json", "-q"), 2, "exclude each other"),
])
def test_bad_input_is_one_line(cli, shop, args, code, message):
    got, out, err = cli("diff", *args, "--store", shop.store)
    assert got == code and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err


def test_a_chat_version_has_no_labels_and_its_text_is_the_conversation(shop, tmp_path):
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "chats", None, shop.store)
    spec = f"chats@{chat.version}"
    diff = compare(shop, spec, spec)
    assert diff["labels"] is None and diff["moved"]["total"] == 0
    data = datasets.load_from_disk(str(chat.path))
    for s in SPLITS:
        chars = sorted(len("\n".join(m["content"] for m in row)) for row in data[s]["messages"])
        stats = diff["lengths"]["chars"]["splits"][s]["a"]["stats"]
        assert (stats["min"], stats["max"]) == ((chars[0], chars[-1]) if chars else (None, None))
    across = compare(shop, shop.v1, spec)  # two kinds: labels on one side only
    assert all(e["b"] == {} and e["psi"] is None for e in across["labels"].values())
    assert sum(r["added"] for r in across["rows"].values()) == sum(data.num_rows.values())


def test_a_version_whose_ids_repeat_is_matched_by_id_and_text(shop):
    diff = compare(shop, shop.rep, shop.rep)
    ids = [r["id"] for rows in split_rows(shop.paths["rep"]).values() for r in rows]
    assert len(set(ids)) < len(ids)  # the ids do repeat, across splits too
    assert diff["key"] == "id+text" and diff["moved"]["total"] == 0
    assert all(r["kept"] == r["a"] and r["added"] == r["removed"] == 0
               for r in diff["rows"].values())
    across = compare(shop, shop.v1, shop.rep)  # one version's ids repeat: both take id+text
    assert across["key"] == "id+text"


def test_labels_from_the_data_are_text_on_the_terminal_and_the_page(cli, shop, tmp_path):
    hostile = ["[bold red]x[/]", "<script>alert(1)</script>"]
    rows = [{**r, "label": hostile[i % 2]}
            for i, r in enumerate(synthetic.generate_rows(60, seed=23, words=25))]
    made = run_pipeline([write_rows(tmp_path / "hostile.jsonl", rows)], "hostile", None,
                        shop.store)
    spec, page = f"hostile@{made.version}", tmp_path / "hostile.html"
    code, out, err = cli("diff", shop.v1, spec, "--html", page, "--store", shop.store)
    assert code == 0, err
    assert "[bold red]x[/]" in out and "<script>alert(1)</script>" in out
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
