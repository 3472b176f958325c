"""Quality stages on the fixtures and on a generated corpus with planted duplicates:
language ID, filters, exact and near dedup, the leak-free stratified split, and the report page."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import defaultdict

import datasets
import numpy as np
import pyarrow as pa
import pytest

from dataprep.filters import filter_reasons
from dataprep.langid import detect_languages
from dataprep.pipeline import run_pipeline
from dataprep.recipe import resolve_recipe

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402  (fixtures/synthetic.py, the corpus generator)

THRESHOLD = 0.8


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """6,000 generated rows (~100 words) with planted exact and near copies and 5% foreign."""
    path = tmp_path_factory.mktemp("corpus") / "synthetic.jsonl"
    stats = synthetic.write_jsonl(path, 6000, seed=3, near_dup_fraction=0.08)
    rows = [json.loads(line) for line in path.open()]
    return path, stats, {r["id"]: r for r in rows}


def recipe_file(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def corpus_run(corpus, tmp_path_factory):
    path, _, _ = corpus
    tmp = tmp_path_factory.mktemp("run")
    recipe = recipe_file(tmp, "languages: [en]\nsplit:\n  group_by: customer_id\n")
    return run_pipeline([path], "synthetic", recipe, tmp / "store")


def all_rows(version_path):
    ds = datasets.load_from_disk(str(version_path))
    return {split: ds[split].to_list() for split in ds}


def shingle_set(text, n=5):
    """An independent implementation of the normalised word 5-gram set."""
    words = re.sub(r"[^\w\s]|_", "", text.lower()).split()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a, b):
    x, y = shingle_set(a), shingle_set(b)
    return len(x & y) / len(x | y)


def test_language_id_backends_agree_on_clear_sentences():
    texts = pa.array(["My parcel never arrived and nobody answers the phone.",
                      "Mi paquete nunca llegó y nadie contesta el teléfono.",
                      "Mon colis n'est jamais arrivé et personne ne répond.",
                      "Mein Paket ist nie angekommen und niemand geht ans Telefon."])
    expected = ["en", "es", "fr", "de"]
    assert detect_languages(texts, "fasttext").tolist() == expected
    assert detect_languages(texts, "langdetect").tolist() == expected


def test_foreign_rows_removed_with_language_reason(corpus, corpus_run):
    _, stats, rows = corpus
    removed = [json.loads(line) for line in (corpus_run.path / "removed.jsonl").open()]
    by_reason = defaultdict(set)
    for r in removed:
        by_reason[r["reason"]].add(r["id"])
    foreign = {i for i, r in rows.items() if r["lang"] != "en"}
    dropped_for_language = set().union(*(v for k, v in by_reason.items()
                                         if k.startswith("language:")))
    assert dropped_for_language == foreign
    for reason, ids in by_reason.items():
        if reason.startswith("language:"):
            assert {rows[i]["lang"] for i in ids} == {reason.split(":")[1]}
    out = all_rows(corpus_run.path)
    assert {r["lang"] for split in out.values() for r in split} == {"en"}
    assert corpus_run.report["languages"]["detected"]["en"] > 5000


def test_every_exact_copy_removed_naming_the_first(corpus, corpus_run):
    _, _, rows = corpus
    removed = {r["id"]: r for r in map(json.loads, (corpus_run.path / "removed.jsonl").open())}
    planted = [r for r in rows.values() if r["planted"] and r["planted"]["kind"] == "exact"
               and r["lang"] == "en"]
    assert len(planted) > 200
    for row in planted:
        assert removed[row["id"]]["reason"] == "duplicate:exact"
        assert removed[row["id"]]["duplicate_of"] == row["planted"]["of"]


def test_near_duplicate_recall_and_precision(corpus, corpus_run):
    _, _, rows = corpus
    removed = {r["id"]: r for r in map(json.loads, (corpus_run.path / "removed.jsonl").open())}
    planted = [r for r in rows.values() if r["planted"] and r["planted"]["kind"] == "near"]
    above = [r for r in planted if jaccard(r["text"], rows[r["planted"]["of"]]["text"])
             >= THRESHOLD]
    assert len(above) > 200
    caught = [r for r in above if removed.get(r["id"], {}).get("reason") == "duplicate:near"
              or removed.get(r["planted"]["of"], {}).get("reason") == "duplicate:near"]
    assert len(caught) / len(above) >= 0.95
    near = [r for r in removed.values() if r["reason"] == "duplicate:near"]
    kept_ids = {r["id"] for split in all_rows(corpus_run.path).values() for r in split}
    for r in near:  # a near duplicate of a row that was kept, at the threshold, exactly
        assert r["duplicate_of"] in kept_ids
        assert jaccard(rows[r["id"]]["text"], rows[r["duplicate_of"]]["text"]) >= THRESHOLD
        assert r["similarity"] >= THRESHOLD


def test_split_proportions_groups_and_leakage(corpus, corpus_run):
    _, _, rows = corpus
    out = all_rows(corpus_run.path)
    total = sum(len(v) for v in out.values())
    ratios = {"train": 0.8, "validation": 0.1, "test": 0.1}
    for split, rows_ in out.items():
        assert abs(len(rows_) / total - ratios[split]) <= 0.01
    label_totals = defaultdict(int)
    for rows_ in out.values():
        for r in rows_:
            label_totals[r["label"]] += 1
    for label, n in label_totals.items():
        if n >= 50:
            for split, rows_ in out.items():
                share = sum(r["label"] == label for r in rows_) / n
                assert abs(share - ratios[split]) <= 0.01, (label, split, share)
    split_of_customer = defaultdict(set)
    for split, rows_ in out.items():
        for r in rows_:
            split_of_customer[rows[r["id"]]["customer_id"]].add(split)
            assert r["group"] == rows[r["id"]]["customer_id"]
    assert max(len(s) for s in split_of_customer.values()) == 1
    leakage = corpus_run.report["leakage"]
    assert leakage["ok"] and leakage["cross_split_pairs"] == 0 and leakage["pairs_checked"] > 0
    # and independently: no planted pair that survived whole sits across splits at the threshold
    where = {r["id"]: split for split, rows_ in out.items() for r in rows_}
    for r in rows.values():
        if r["planted"] and r["id"] in where and r["planted"]["of"] in where \
                and where[r["id"]] != where[r["planted"]["of"]]:
            assert jaccard(r["text"], rows[r["planted"]["of"]]["text"]) < THRESHOLD


def test_near_clusters_stay_in_one_split_without_groups(corpus, tmp_path):
    path, _, rows = corpus
    result = run_pipeline([path], "nogroups", recipe_file(tmp_path, "dedup:\n  exact: false\n"),
                          tmp_path / "store")
    assert result.report["leakage"]["ok"]
    assert result.report["dedup"]["near_cluster_sizes"]


def test_accounting_with_all_stages(corpus_run):
    c = corpus_run.report["counts"]
    assert corpus_run.report["accounting_ok"]
    assert c["input"] == (c["rejected"] + sum(c["filtered_by_reason"].values())
                          + c["duplicates"]["exact"] + c["duplicates"]["near"]
                          + sum(c["output"].values()))
    lines = sum(1 for _ in (corpus_run.path / "removed.jsonl").open())
    assert lines == sum(c["filtered_by_reason"].values()) + sum(c["duplicates"].values())


def test_rare_labels_go_to_train_and_are_named(tmp_path):
    rows = [{"text": f"review {i} of a perfectly fine kettle with words", "label": "common"}
            for i in range(60)]
    rows += [{"text": f"complaint {i} about the lid that broke off the kettle", "label": "rare"}
             for i in range(4)]
    path = tmp_path / "a.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_pipeline([path], "rare", recipe_file(tmp_path, "dedup:\n  near: false\n"),
                          tmp_path / "store")
    assert result.report["rare_labels"] == ["rare"]
    assert result.report["splits"]["train"]["labels"]["rare"] == 4


@pytest.mark.parametrize(("text", "reason"), [
    ("x", "too_short:chars"),
    ("12345 678 90 #### 55", "non_alpha"),
    ("\n".join(["please reset my router password now today"] * 6), "repetition:lines"),
    (" ".join(["buy now"] * 15), "repetition:ngrams"),
    ("word " * 5000, "too_long:chars"),
    ("Thanks, that fixed it!", None),
    ("Order 88412 arrived damaged, box crushed, need a refund", None),
])
def test_quality_filters(text, reason):
    reasons, _ = filter_reasons(pa.array([text]), resolve_recipe({}).filters)
    assert reasons.to_pylist() == [reason]


def test_default_filters_keep_every_fixture_row(fixtures_dir, store):
    for files, recipe in [(["support_chats.jsonl", "transcripts.txt"], None),
                          (["reviews.csv"], fixtures_dir / "reviews.recipe.yaml"),
                          (["instructions.jsonl"], None)]:
        result = run_pipeline([fixtures_dir / f for f in files], files[0].split(".")[0], recipe,
                              store)
        assert result.report["counts"]["filtered_by_reason"] == {}


def test_report_page_renders_every_plot(corpus_run, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (.ci/run installs it)"
    page_file = corpus_run.path / "report.html"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page()
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_file.as_uri())
        plots = page.eval_on_selector_all("figure[data-plot]", """els => els.map(e => ({
            name: e.dataset.plot, width: e.getBoundingClientRect().width,
            height: e.getBoundingClientRect().height,
            marks: e.querySelectorAll('svg rect').length}))""")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    by_name = {p["name"]: p for p in plots}
    assert set(by_name) == {"flow", "rejected", "removed", "labels", "languages", "length-chars",
                            "length-words", "clusters", "cleaning", "pii"}
    report = corpus_run.report
    # The generated corpus has no malformed rows (and may need no cleaning): those plots say
    # "No data." and draw nothing.
    empty = {name for name, data in [("rejected", report["counts"]["rejected_by_reason"]),
                                     ("cleaning", report["cleaning"]["rows_changed"]),
                                     ("pii", report["cleaning"]["pii"])] if not data}
    for name, plot in by_name.items():
        if name in empty:
            assert plot["marks"] == 0, plot
            continue
        assert plot["width"] > 100 and plot["height"] > 40 and plot["marks"] > 0, plot
    assert requests == [page_file.as_uri()]  # nothing fetched but the page itself
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_report_page_escapes_caps_examples_and_draws_cleaning():
    """The template escapes every value from the data and keeps EXAMPLES_PER_REASON examples."""
    from dataprep.report import EXAMPLES_PER_REASON, RunCounts, build_report, render_html

    run = RunCounts(input=5)
    run.rejected["invalid_json"] = 5
    for i in range(5):
        run.add_example(run.examples_rejected, "invalid_json",
                        {"source": "a.jsonl", "line": i + 1, "reason": "invalid_json",
                         "detail": "<script>alert(1)</script>", "raw": "x"})
    run.cleaned.update({"whitespace": 2, "nfc": 2, "pii": 3})
    run.pii.update({"email": 3})
    report = build_report("n<&>", "0" * 12, "chat", run)
    assert len(report["examples"]["rejected"]["invalid_json"]) == EXAMPLES_PER_REASON
    page = render_html(report)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Data report n&lt;&amp;&gt;@000000000000" in page
    assert page.count("a.jsonl:") == EXAMPLES_PER_REASON
    for name in ("flow", "rejected", "removed", "labels", "languages", "clusters", "cleaning",
                 "pii"):
        assert f"<figure data-plot='{name}'>" in page
    cleaning = page.split("<figure data-plot='cleaning'>")[1].split("</figure>")[0]
    assert cleaning.index(">pii<") < cleaning.index(">nfc<") < cleaning.index(">whitespace<")
    assert "No augmentation in this recipe." in page and "No output rows." in page


def test_report_json_has_the_quality_sections(corpus_run):
    report = corpus_run.report
    for split in ("train", "validation", "test"):
        stats = report["lengths"]["stats"][split]
        assert stats["words"]["min"] <= stats["words"]["median"] <= stats["words"]["max"]
        assert set(report["splits"][split]["labels"]) == {"positive", "negative", "neutral"}
    assert set(report["lengths"]["histograms"]) == {"chars", "words"}
    assert report["dedup"]["exact_cluster_sizes"] and report["dedup"]["near_cluster_sizes"]
    assert report["dedup"]["verified_pairs"] <= report["dedup"]["candidate_pairs"]
    assert sum(np.sum(v) for v in report["lengths"]["histograms"]["words"]["counts"].values()) \
        == sum(report["counts"]["output"].values())


def test_worker_processes_give_the_same_version(corpus, tmp_path):
    path, _, _ = corpus
    one = run_pipeline([path], "w", store=tmp_path / "one", workers=1)
    two = run_pipeline([path], "w", store=tmp_path / "two", workers=2)
    assert one.version == two.version
    assert all_rows(one.path) == all_rows(two.path)
    for name in ("removed.jsonl", "rejected.jsonl"):
        assert (one.path / name).read_text() == (two.path / name).read_text()
