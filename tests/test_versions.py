"""Child versions (`dataprep run NEW --from NAME@VERSION`): a version that grows.

A three-generation chain v1 -> v2 -> v3 on files cut from one generated corpus (the generator
plants exact and near copies of earlier rows, so later files overlap earlier ones), with an exact
and a near copy of a v1 row planted in the second file. Checked from the written files (with
`tests/independent.py`, which does not import dataprep): no row ever changes split, new rows are
deduplicated against the old, a new row of an old `group_by` group joins that group's split, the
accounting identity holds for each version's new rows, and one child of b and c is the same, row
for row, as the child of b and then its child of c.

What cannot hold, and why: a fresh run over a and b at once is not the child of a's version made
with b. A fresh run splits all its rows together (largest remainder per stratum over a + b), and
a child never moves a parent row, so a's rows keep the split they got without b; likewise the
first version of a grouping must be the same version (v1 = a) for its children to match.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest

from dataprep.errors import DataprepError
from dataprep.pipeline import run_pipeline
from dataprep.store import open_version

from . import independent
from .conftest import FIXTURES, run_cli

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402

RECIPE = "split:\n  group_by: customer_id\n  min_rows_per_label: 3\n"
SIZES = (400, 250, 250)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path


def by_id(version_path: Path) -> dict[str, str]:
    """Split of every row of a version, by id."""
    ds = datasets.load_from_disk(str(version_path))
    return {i: split for split in ds for i in ds[split]["id"]}


def removed(version_path: Path) -> dict[str, dict]:
    return {r["id"]: r for r in independent.read_jsonl(version_path / "removed.jsonl")}


def new_row_problems(version_path: Path, parent_path: Path, input_file: Path) -> list[str]:
    """The accounting identity of a child's new rows, from its files: every row of its new
    input is rejected, removed or in a split exactly once (the parent's rows left out)."""
    old = set(by_id(parent_path))
    splits = independent.load_splits(version_path)
    places = [r["source"] for rows in splits.values() for r in rows
              if r["id"] not in old and r["origin"] == "original"]
    places += [f"{r['source']}:{r['line']}"
               for r in independent.read_jsonl(version_path / "rejected.jsonl")]
    places += [r["source"] for r in independent.read_jsonl(version_path / "removed.jsonl")]
    expected = independent.jsonl_sources(input_file)
    return [] if sorted(places) == sorted(expected) else [
        f"{len(places)} rows placed, {len(expected)} input rows"]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """v1 = a; v2 = v1 + b (with planted copies of a kept v1 row); v3 = v2 + c; and `grouped`,
    one child of v1 with b and c."""
    root = tmp_path_factory.mktemp("versions")
    store, recipe = root / "store", root / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    rows = list(synthetic.generate_rows(sum(SIZES), seed=5, words=70))
    a = write_jsonl(root / "a.jsonl", rows[:SIZES[0]])
    v1 = run_pipeline([str(a)], "support", str(recipe), store)
    kept = by_id(v1.path)
    original = next(r for r in rows[:SIZES[0]] if r["id"] in kept and r["lang"] == "en"
                    and len(r["text"].split()) >= 60)
    words = original["text"].split()
    near = " ".join(words[:30] + ["meanwhile"] + words[31:])
    planted = [{**original, "id": "PLANTED-EXACT", "text": original["text"].upper()},
               {**original, "id": "PLANTED-NEAR", "text": near}]
    b = write_jsonl(root / "b.jsonl", rows[SIZES[0]:SIZES[0] + SIZES[1]] + planted)
    c = write_jsonl(root / "c.jsonl", rows[SIZES[0] + SIZES[1]:])
    v2 = run_pipeline([str(b)], "support", None, store, parent=f"support@{v1.version}")
    v3 = run_pipeline([str(c)], "support", None, store, parent=f"support@{v2.version}")
    grouped = run_pipeline([str(b), str(c)], "grouped", None, store,
                           parent=f"support@{v1.version}")
    return {"store": store, "recipe": recipe, "files": (a, b, c), "v": (v1, v2, v3),
            "grouped": grouped, "original": original, "root": root}


def test_no_row_ever_changes_split(chain):
    v1, v2, v3 = chain["v"]
    first, second, third = by_id(v1.path), by_id(v2.path), by_id(v3.path)
    assert len(first) < len(second) < len(third)
    for older, newer in ((first, second), (second, third), (first, third)):
        moved = {i for i, split in older.items() if newer.get(i) != split}
        assert moved == set()
    assert set(second.values()) == {"train", "validation", "test"}


def test_diff_of_parent_and_child_shows_no_moved_row_and_the_new_rows_added(chain):
    """`dataprep diff` over the chain: zero moved, nothing removed, and the rows added per
    split are exactly the child's new ids there (computed from the files)."""
    from dataprep.diff import diff_versions
    from dataprep.store import find_version

    v1, v2, _ = chain["v"]
    found = diff_versions(find_version(f"support@{v1.version}", chain["store"]),
                          find_version(f"support@{v2.version}", chain["store"]))
    assert found["moved"]["total"] == 0
    first, second = by_id(v1.path), by_id(v2.path)
    for split in ("train", "validation", "test"):
        new = {i for i, s in second.items() if s == split and i not in first}
        assert found["rows"][split]["added"] == len(new), (split, found["rows"][split])
        assert found["rows"][split]["removed"] == 0
    done = run_cli("diff", f"support@{v1.version}", f"support@{v2.version}", "--store",
                   str(chain["store"]), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["moved"]["total"] == 0


def test_the_manifest_names_the_parent_and_the_report_counts_both_parts(chain):
    v1, v2, v3 = chain["v"]
    for parent, child in ((v1, v2), (v2, v3)):
        manifest = json.loads((child.path / "manifest.json").read_text())
        counts = child.report["counts"]
        assert manifest["parent"] == parent.version
        assert counts["inherited"] == parent.report["counts"]["output"]
        assert counts["new"] == {s: counts["output"][s] - counts["inherited"][s]
                                 for s in counts["output"]}
        assert manifest["splits"] == counts["output"]
        assert child.report["accounting_ok"] and child.report["leakage"]["ok"]
        assert sum(counts["new"].values()) > 0
        version = open_version(f"support@{child.version}", chain["store"])
        assert version.counts["inherited"] == counts["inherited"]
        assert {s: len(version.data[s]) for s in version.data} == counts["output"]
    assert "inherited" not in v1.report["counts"]


def test_accounting_holds_for_the_new_rows_of_each_version(chain):
    (a, b, c), (v1, v2, v3) = chain["files"], chain["v"]
    assert independent.accounting_problems(v1.path, independent.jsonl_sources(a)) == []
    assert new_row_problems(v2.path, v1.path, b) == []
    assert new_row_problems(v3.path, v2.path, c) == []


def test_new_rows_are_deduplicated_against_the_parent_rows(chain):
    v1, v2, _ = chain["v"]
    original, gone = chain["original"], removed(v2.path)
    exact, near = gone["PLANTED-EXACT"], gone["PLANTED-NEAR"]
    assert exact["reason"] == "duplicate:exact" and near["reason"] == "duplicate:near"
    for record in (exact, near):
        assert record["duplicate_of"] == original["id"]
        assert record["duplicate_of_source"].endswith("a.jsonl:" + original["id"][2:].lstrip("0"))
    assert 0.8 <= near["similarity"] < 1
    # the generator's own copies of a's kept rows went the same way
    kept_before, rows = by_id(v1.path), independent.read_jsonl(chain["files"][1])
    copies = [r for r in rows if r.get("planted") and r["planted"]["kind"] == "exact"
              and r["planted"]["of"] in kept_before]
    assert copies and all(gone[r["id"]]["duplicate_of"] == r["planted"]["of"] for r in copies)
    # no kept new row is a near duplicate of a parent row (exact Jaccard, computed here)
    splits = independent.load_splits(v2.path)
    old = [independent.shingles(independent.row_text(r)) for rows_ in
           independent.load_splits(v1.path).values() for r in rows_]
    new = [independent.shingles(independent.row_text(r)) for rows_ in splits.values()
           for r in rows_ if r["id"] not in kept_before]
    assert max(independent.jaccard(x, y) for x in new for y in old) < 0.8


def test_a_new_row_of_an_old_group_joins_that_groups_split(chain):
    v1, v2, _ = chain["v"]

    def groups(path: Path) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for split, rows in independent.load_splits(path).items():
            for r in rows:
                out.setdefault(r["group"], set()).add(split)
        return out

    before, after = groups(v1.path), groups(v2.path)
    shared = [g for g in before if g is not None]
    assert len(shared) > 20
    assert all(len(after[g]) == 1 and after[g] == before[g] for g in shared)
    assert independent.scan_version(v2.path, 0.8).leaks == []


def test_one_child_of_b_and_c_is_the_child_of_b_and_then_of_c(chain):
    """Any grouping of the same files (in the same order) makes the same rows per split: each
    file is planned against the rows placed before it, whatever run placed them."""
    v3, grouped = chain["v"][2], chain["grouped"]
    assert by_id(grouped.path) == by_id(v3.path)
    chained = {**removed(chain["v"][1].path), **removed(v3.path)}
    once = removed(grouped.path)
    assert {i: (r["reason"], r.get("duplicate_of")) for i, r in once.items()} == \
        {i: (r["reason"], r.get("duplicate_of")) for i, r in chained.items()}


def test_a_child_version_id_depends_on_parent_and_new_inputs(chain):
    (_, b, c), (v1, v2, _) = chain["files"], chain["v"]
    again = run_pipeline([str(b)], "support", None, chain["store"],
                         parent=f"support@{v1.version}")
    assert again.version == v2.version and not again.created
    other = run_pipeline([str(c)], "support", None, chain["store"],
                         parent=f"support@{v1.version}")
    assert len({other.version, v2.version, chain["v"][2].version}) == 3
    assert by_id(other.path).items() >= by_id(v1.path).items()


def test_split_files_of_a_child_are_the_parents_files_linked(chain):
    v1, v2, _ = chain["v"]
    parent_file = v1.path / "train" / "data-00000-of-00001.arrow"
    child_file = v2.path / "train" / "data-00000-of-00002.arrow"
    assert child_file.stat().st_ino == parent_file.stat().st_ino
    state = json.loads((v2.path / "train" / "state.json").read_text())
    assert [f["filename"] for f in state["_data_files"]] == [
        "data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]


def snapshot(store: Path) -> list[str]:
    return sorted(str(p.relative_to(store)) for p in store.rglob("*"))


def test_bad_parents_are_one_line_errors_before_anything_is_written(chain, tmp_path):
    store, (_, b, _), v1 = chain["store"], chain["files"], chain["v"][0]
    before = snapshot(store)
    with pytest.raises(DataprepError, match="no such version"):
        run_pipeline([str(b)], "support", None, store, parent="support@abcdef")
    with pytest.raises(DataprepError, match="no dataset named 'nope'"):
        run_pipeline([str(b)], "support", None, store, parent="nope@latest")
    chats = FIXTURES / "support_chats.jsonl"
    with pytest.raises(DataprepError, match="holds chat records, but support@"):
        run_pipeline([chats], "support", None, store, parent=f"support@{v1.version}")
    other = tmp_path / "other.yaml"
    other.write_text(RECIPE + "seed: 7\n", encoding="utf-8")
    with pytest.raises(DataprepError, match=r"differs from the recipe .* \(at seed\)"):
        run_pipeline([str(b)], "support", other, store, parent=f"support@{v1.version}")
    assert snapshot(store) == before
    same = run_pipeline([str(b)], "support", chain["recipe"], store,
                        parent=f"support@{v1.version}")
    assert same.version == chain["v"][1].version  # the parent's own recipe, given again


def test_a_version_without_lineage_cannot_be_a_parent(chain, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(chain["v"][0].path, store / "old" / chain["v"][0].version)
    shutil.rmtree(store / "old" / chain["v"][0].version / "lineage")
    with pytest.raises(DataprepError, match="cannot be a parent"):
        run_pipeline([str(chain["files"][1])], "old", None, store,
                     parent=f"old@{chain['v'][0].version}")


def test_the_cli_takes_from_and_says_what_is_wrong_in_one_line(chain):
    store, b = chain["store"], chain["files"][1]
    done = run_cli("run", str(b), "--name", "support", "--store", str(store), "--from",
                   f"support@{chain['v'][0].version}", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == chain["v"][1].version
    gone = run_cli("run", str(b), "--name", "support", "--store", str(store), "--from",
                   "support@0123")
    assert gone.returncode == 1 and gone.stderr.strip().count("\n") == 0
    assert "no such version" in gone.stderr


def test_a_chat_child_dedups_against_its_parent_and_names_the_kept_row(tmp_path):
    """The support fixture cut in two: its exact copies in the second half of rows of the first
    half are removed naming them, from the parent's lineage."""
    lines = (FIXTURES / "support_chats.jsonl").read_bytes().splitlines(True)
    first, second = tmp_path / "week1.jsonl", tmp_path / "week2.jsonl"
    first.write_bytes(b"".join(lines[:20]))
    second.write_bytes(b"".join(lines[20:]))
    store = tmp_path / "store"
    v1 = run_pipeline([str(first)], "chats", None, store)
    v2 = run_pipeline([str(second)], "chats", None, store, parent="chats@latest")
    assert by_id(v2.path).items() >= by_id(v1.path).items()
    gone = {r["source"].rsplit(":", 1)[1]: r for r in
            independent.read_jsonl(v2.path / "removed.jsonl")}
    assert gone["7"]["duplicate_of"] == "T-10002"  # line 27 of the fixture copies T-10002
    assert gone["7"]["duplicate_of_source"].endswith("week1.jsonl:2")
    assert new_row_problems(v2.path, v1.path, second) == []


def test_a_child_of_copies_only_adds_nothing(tmp_path):
    """New rows that all copy parent rows (and rows that do not parse) leave the parent's
    splits as they were, every new row accounted for as a duplicate or a reject."""
    lines = (FIXTURES / "support_chats.jsonl").read_bytes().splitlines(True)
    first, again = tmp_path / "week1.jsonl", tmp_path / "week1-again.jsonl"
    first.write_bytes(b"".join(lines[:20]))
    again.write_bytes(b"".join(lines[:20]))
    store = tmp_path / "store"
    v1 = run_pipeline([str(first)], "chats", None, store)
    v2 = run_pipeline([str(again)], "chats", None, store, parent="chats@latest")
    assert by_id(v2.path) == by_id(v1.path)
    assert set(v2.report["counts"]["new"].values()) == {0}
    assert v2.report["counts"]["rejected"] == v1.report["counts"]["rejected"] > 0
    assert new_row_problems(v2.path, v1.path, again) == []
    assert all(r["reason"].startswith("duplicate:")
               for r in independent.read_jsonl(v2.path / "removed.jsonl"))


def test_a_grandchild_links_every_generations_files_and_reads_them_as_one(chain):
    """v3's lineage is three generations: v1's and v2's files hard-linked (same inodes), its
    own written; read back, the keys, signatures and band keys cover every row in order."""
    from dataprep.lineage import read_lineage
    from dataprep.store import find_version

    v1, v2, v3 = chain["v"]
    folders = [v.path / "lineage" for v in (v1, v2, v3)]
    for gen, owner in enumerate(folders):
        names = [f"keys-{gen:05d}.arrow", f"signatures-{gen:05d}.npy",
                 *(p.name for p in owner.glob(f"bands-{gen:05d}-*.npy"))]
        assert len(names) == 4  # the dedup and the leakage banding
        for later in folders[gen:]:
            for name in names:
                assert (later / name).stat().st_ino == (owner / name).stat().st_ino
    assert not (folders[2] / "keys-00003.arrow").exists()
    lineages = [read_lineage(find_version(f"support@{v.version}", chain["store"]), "text")
                for v in (v1, v2, v3)]
    assert [g.rows for g in lineages[2].generations] == [
        len(lineages[0]), len(lineages[1]) - len(lineages[0]), len(lineages[2]) - len(lineages[1])]
    assert len(lineages[2].bands) == 2
    from dataprep.minhash import search_lsh_params

    chosen = json.loads((folders[2] / "lsh-params.json").read_text())
    assert [(c["bands"], c["rows"]) for c in chosen] == sorted(lineages[2].bands)
    for c in chosen:  # what the grid search gives, recorded so a child need not search
        assert search_lsh_params(c["threshold"], c["num_perm"], c["recall_weight"]) == \
            (c["bands"], c["rows"])
    for older in lineages[:2]:
        rows = np.arange(len(older))
        assert (lineages[2].sigs[rows] == older.sigs[rows]).all()
        assert lineages[2].keys.slice(0, len(older)).equals(older.keys)
    every = np.arange(len(lineages[2]))[::-1]
    stacked = np.concatenate([np.load(f / f"signatures-{k:05d}.npy")
                              for k, f in enumerate(folders)])
    assert (lineages[2].sigs[every] == stacked[every]).all()


def older_layout(chain, tmp_path: Path, layout: str) -> Path:
    """A copy of v2 as a version made before per-generation files ("one file": one keys.arrow
    and one signatures.npy for all rows) or before band keys ("no bands")."""
    import pyarrow as pa

    v2 = chain["v"][1]
    store = tmp_path / "store"
    shutil.copytree(chain["v"][0].path, store / "old" / chain["v"][0].version)
    shutil.copytree(v2.path, store / "old" / v2.version)
    folder = store / "old" / v2.version / "lineage"
    for path in folder.glob("bands-*.npy"):
        path.unlink()
    if layout == "one file":
        parts = sorted(folder.glob("keys-*.arrow"))
        tables = [pa.ipc.open_stream(pa.memory_map(str(p))).read_all() for p in parts]
        with pa.ipc.new_stream(str(folder / "keys.arrow"), tables[0].schema) as writer:
            for table in tables:
                writer.write_table(table)
        np.save(folder / "signatures.npy", np.concatenate(
            [np.load(folder / f"signatures-{k:05d}.npy") for k in range(len(parts))]))
        for path in [*parts, *folder.glob("signatures-*.npy")]:
            path.unlink()
    return store


@pytest.mark.parametrize("layout", ["one file", "no bands"])
def test_a_parent_of_an_older_layout_gives_the_same_child(chain, tmp_path, layout):
    """Without stored band keys the child bands its parent's signatures (as before they were
    stored) and decides exactly as the chain's v3, whose plan looked its keys up."""
    v2, v3 = chain["v"][1], chain["v"][2]
    store = older_layout(chain, tmp_path, layout)
    child = run_pipeline([str(chain["files"][2])], "old", None, store,
                         parent=f"old@{v2.version}")
    assert by_id(child.path) == by_id(v3.path)
    assert {i: (r["reason"], r.get("duplicate_of")) for i, r in removed(child.path).items()} \
        == {i: (r["reason"], r.get("duplicate_of")) for i, r in removed(v3.path).items()}
    assert child.report["leakage"] == v3.report["leakage"]
    # the child writes its own generation's band keys after the parent's (one or two) files
    own = sorted(p.name for p in (child.path / "lineage").glob("bands-*.npy"))
    gen = 1 if layout == "one file" else 2
    assert [name.split("-")[1] for name in own] == [f"{gen:05d}"] * 2


def test_damaged_band_keys_are_a_one_line_error(chain, tmp_path):
    v2 = chain["v"][1]
    store = older_layout(chain, tmp_path, "no bands")
    folder = store / "old" / v2.version / "lineage"
    for k in range(2):
        np.save(folder / f"bands-{k:05d}-20x6.npy", np.zeros((20, 3), np.uint64))
    with pytest.raises(DataprepError, match="damaged lineage"):
        run_pipeline([str(chain["files"][2])], "old", None, store, parent=f"old@{v2.version}")
    for k in range(2):
        (folder / f"bands-{k:05d}-20x6.npy").unlink()
    (folder / "lsh-params.json").write_text('[{"threshold": 0.7}]', encoding="utf-8")
    with pytest.raises(DataprepError, match="lsh-params.json: damaged lineage"):
        run_pipeline([str(chain["files"][2])], "old", None, store, parent=f"old@{v2.version}")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stored_band_keys_give_the_pairs_banding_gives(seed):
    """The lookup in a parent's stored band keys finds the same candidate pairs (and the same
    count) as banding every row, on signatures with planted near copies within and across the
    stored rows, searched with the child plan's `across` codes."""
    from dataprep.minhash import band_keys
    from dataprep.neardup import DEDUP, LEAKAGE, NearDupIndex, SortedBands, sort_band_keys

    rng = np.random.default_rng(seed)
    p, n, width = 3000, 800, 128
    sigs = rng.integers(0, 50, size=(p + n, width), dtype=np.uint32)  # small values: collisions
    copies = rng.integers(0, p + n, size=(600, 2))
    for a, b in copies:
        mask = rng.random(width) < 0.8
        sigs[max(a, b)][mask] = sigs[min(a, b)][mask]
    searched = np.sort(np.concatenate([np.arange(p), p + rng.choice(n, 500, replace=False)]))
    across = np.zeros(p + n, np.int64)
    across[p:] = rng.integers(0, 4, size=n) * (rng.random(n) < 0.7)
    for sensitivity in (DEDUP, LEAKAGE):
        plain = NearDupIndex(sigs, 0.8, sensitivity)
        cut = [0, 1000, 1001, p]  # three generations, one of a single row
        parts = [sort_band_keys(band_keys(sigs[lo:hi], plain.bands, plain.rows))
                 for lo, hi in zip(cut, cut[1:], strict=False)]
        stored = {(plain.bands, plain.rows): SortedBands(parts, cut[:-1], p)}
        looked = NearDupIndex(sigs, 0.8, sensitivity, stored)
        assert looked.stored is not None
        assert np.array_equal(looked.candidates(searched, across=across),
                              plain.candidates(searched, across=across))
        found, pairs = looked.search(searched, across=across)
        expected = plain.search(searched, across=across)
        assert found == expected[0] and np.array_equal(pairs, expected[1])
        assert found > 20  # planted pairs with a searched new row were found
        # a search without every stored row, or with stored rows of two codes, bands all
        partial = across.copy()
        partial[5] = 9
        assert np.array_equal(looked.candidates(searched, across=partial),
                              plain.candidates(searched, across=partial))
        assert np.array_equal(looked.candidates(searched[1:], across=across),
                              plain.candidates(searched[1:], across=across))


def test_a_child_writes_its_split_metadata_without_importing_datasets(chain, tmp_path):
    """The parent's lineage remembers the `dataset_info.json` datasets wrote for its split
    schema; a child (whose rows have those columns) writes the same bytes from it, in a
    process that never imports datasets."""
    import pyarrow as pa

    v1, c = chain["v"][0], chain["files"][2]
    store = tmp_path / "store"
    shutil.copytree(v1.path, store / "copy" / v1.version)
    code = ("import json, sys\nfrom dataprep.pipeline import run_pipeline\n"
            f"made = run_pipeline([{str(c)!r}], 'copy', None, {str(store)!r}, "
            f"parent='copy@{v1.version}')\n"
            "print(json.dumps([str(made.path), 'datasets' in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    child, imported = json.loads(done.stdout.strip().splitlines()[-1])
    assert imported is False
    child = Path(child)
    for split in ("train", "validation", "test"):
        [own] = sorted((child / split).glob("data-*.arrow"))[-1:]
        with pa.memory_map(str(own)) as source:
            schema = pa.ipc.open_stream(source).schema
        (tmp_path / split).mkdir()
        datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(schema)
                             ).write_to_directory(str(tmp_path / split))
        assert (child / split / "dataset_info.json").read_bytes() == \
            (tmp_path / split / "dataset_info.json").read_bytes()
    assert by_id(child).items() >= by_id(v1.path).items()
