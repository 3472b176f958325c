"""Quality stages on the fixtures and on a generated corpus with planted duplicates:
language ID, filters, exact and near dedup, the leak-free stratified split, and the report page."""

from __future__ import annotations

import json
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

from . import independent
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


def jaccard(a, b):
    """Exact word 5-gram Jaccard of two texts (tests/independent.py, no dataprep code)."""
    return independent.jaccard(independent.shingles(a), independent.shingles(b))


def assert_no_leak(version_path):
    """No pair of rows in different written splits at or above the near threshold, by an
    exact pairwise Jaccard over every cross-split pair that shares a shingle."""
    scan = independent.scan_version(version_path, THRESHOLD)
    assert scan.pairs > 0  # the splits do share shingles: the scan compared something
    assert scan.leaks == [], scan.leaks[:5]
    return scan


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
    assert_no_leak(corpus_run.path)


BASE = ("my order never arrived and the tracking page has said out for delivery since monday "
        "so i would like a refund or a new parcel sent to my address today")   # 30 words


def test_leak_scan_finds_a_planted_cross_split_near_duplicate():
    variant = BASE.replace(" and", ", and").replace("today", "tomorrow!").upper()
    middle = BASE.replace("delivery", "dispatch")            # 5 of 26 shingles change
    splits = {
        "train": [BASE, "the battery lasts two full days even with heavy use", "Refund?"],
        "validation": ["the screen cracked after one week of normal use", variant, middle],
        "test": ["REFUND !!", "shipping was fast and the box was well packed"],
    }
    scan = independent.scan_cross_split(splits, THRESHOLD)
    found = {(p.split_a, p.index_a, p.split_b, p.index_b): p.jaccard for p in scan.leaks}
    assert found == {("train", 0, "validation", 1): pytest.approx(25 / 27),  # last word only
                     ("train", 2, "test", 0): 1.0}      # under 5 words: one shingle of them all
    assert scan.closest.jaccard == 1.0
    # the pair below the threshold was compared, not reported
    assert jaccard(BASE, middle) == pytest.approx(21 / 31)
    below = independent.scan_cross_split(splits, 0.6).leaks
    assert ("train", 0, "validation", 2) in {(p.split_a, p.index_a, p.split_b, p.index_b)
                                             for p in below}
    # rows in one split may be alike: only pairs across splits count
    assert independent.scan_cross_split({"train": [BASE, BASE], "test": []}, 0.8).pairs == 0


def test_leak_scan_finds_a_leak_planted_in_a_real_version(corpus_run):
    splits = {s: [independent.row_text(r) for r in rows]
              for s, rows in independent.load_splits(corpus_run.path).items()}
    # the inverted index compares exactly the pairs a brute-force scan finds sharing a shingle
    sample = {"train": splits["train"][:300], "validation": splits["validation"][:100]}
    sets = {k: [independent.shingles(t) for t in v] for k, v in sample.items()}
    brute = [independent.jaccard(a, b) for a in sets["train"] for b in sets["validation"]]
    small = independent.scan_cross_split(sample, THRESHOLD)
    assert small.pairs == sum(j > 0 for j in brute) > 0
    assert small.closest.jaccard == pytest.approx(max(brute))
    # one train row copied into test with one word changed is found, and only it
    words = splits["train"][10].split()
    words[len(words) // 2] = "zebra"
    splits["test"].append(" ".join(words))
    expected = jaccard(splits["train"][10], splits["test"][-1])
    assert expected >= THRESHOLD
    scan = independent.scan_cross_split(splits, THRESHOLD)
    assert [(p.split_a, p.index_a, p.split_b, p.index_b) for p in scan.leaks] == \
        [("train", 10, "test", len(splits["test"]) - 1)]
    assert scan.leaks[0].jaccard == pytest.approx(expected)


def test_near_clusters_stay_in_one_split_without_groups(corpus, tmp_path):
    path, _, _ = corpus
    result = run_pipeline([path], "nogroups", recipe_file(tmp_path, "dedup:\n  exact: false\n"),
                          tmp_path / "store")
    removed = independent.read_jsonl(result.path / "removed.jsonl")
    assert sum(r["reason"] == "duplicate:near" for r in removed) > 300  # exact copies too
    assert_no_leak(result.path)


def test_accounting_with_all_stages(corpus, corpus_run):
    path, stats, _ = corpus
    sources = independent.jsonl_sources(path)
    assert len(sources) == stats["rows"] == 6000
    assert independent.accounting_problems(corpus_run.path, sources) == []
    acc = independent.account(corpus_run.path)
    assert acc.removed > 600 and acc.augmented == 0
    # the report's counts are the ones the files give
    counts = corpus_run.report["counts"]
    assert counts["input"] == len(sources)
    assert counts["output"] == acc.original


BAD_LINES = [
    '{"id": "bad-1", "text": "cut off mid',                            # invalid_json
    '["not", "an", "object"]',                                          # not_an_object
    '{"id": "bad-2", "label": "positive", "customer_id": "c-bad"}',     # missing_field:text
    '{"id": "bad-3", "text": "The kettle is fine.", "label": null}',    # null_field:label
    '{"id": "bad-4", "text": "", "label": "negative"}',                 # empty_field:text
]


def test_accounting_with_rejected_and_blank_lines(corpus, tmp_path):
    path, _, _ = corpus
    lines = path.read_text(encoding="utf-8").splitlines()[:1500]
    for k, bad in enumerate(BAD_LINES):
        lines.insert(100 + 200 * k, bad)
        lines.insert(150 + 200 * k, "")
    short_row = json.dumps({"id": "short", "text": "x", "label": "neutral",
                            "customer_id": "c-short"})                     # too_short:chars
    lines.insert(1000, short_row)
    messy = tmp_path / "messy.jsonl"
    messy.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    recipe = recipe_file(tmp_path, "languages: [en]\nsplit:\n  group_by: customer_id\n")
    result = run_pipeline([messy], "messy", recipe, tmp_path / "store")
    sources = independent.jsonl_sources(messy)
    assert len(sources) == 1500 + len(BAD_LINES) + 1
    assert independent.accounting_problems(result.path, sources) == []
    acc = independent.account(result.path)
    assert acc.rejected == len(BAD_LINES) and acc.removed > 100
    bad = {f"{messy}:{i}" for i, line in enumerate(lines, 1) if line in BAD_LINES}
    assert len(bad) == len(BAD_LINES)
    assert {f"{r['source']}:{r['line']}" for r in
            independent.read_jsonl(result.path / "rejected.jsonl")} == bad
    short = f"{messy}:{lines.index(short_row) + 1}"
    assert [r["reason"] for r in independent.read_jsonl(result.path / "removed.jsonl")
            if r["source"] == short] == ["too_short:chars"]
    assert result.report["counts"]["input"] == len(sources)


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
                            "length-words", "clusters", "cleaning", "pii", "field-text",
                            *(f"filter-{m}" for m in ("chars", "words", "alpha", "dup_lines",
                                                      "top_bigram"))}
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
