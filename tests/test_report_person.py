"""The version report as a person reads it: removed rows shown with their text (a duplicate
beside the row it copies), lengths per field, token lengths against max_length, the filter's
measured quantities with their bounds, and a warning when the splits drift apart."""

from __future__ import annotations

import json
import random
from html.parser import HTMLParser
from io import StringIO

import datasets
import numpy as np
import pytest
from rich.console import Console

from common.plots import histogram
from dataprep.distributions import drift_report
from dataprep.errors import DataprepError
from dataprep.filters import MEASURE_EDGES, measure
from dataprep.pipeline import run_pipeline
from dataprep.report import print_report
from dataprep.stage import EXAMPLE_CHARS

from .tiny_models import build_causal_lm


class RemovedTables(HTMLParser):
    """The removed-row example tables of a report page: reason -> rows of {cell class: text}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, str]]] = {}
        self.reason = self.row = self.cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "removed":
            self.reason = attrs["data-reason"]
            self.tables[self.reason] = []
        elif self.reason and tag == "tr":
            self.row = {}
        elif self.row is not None and tag in ("pre", "td") and attrs.get("class"):
            self.cell = attrs["class"]
            self.row[self.cell] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.reason = None
        elif tag == "tr" and self.reason and self.row:
            self.tables[self.reason].append(self.row)
            self.row = None
        elif tag in ("pre", "td"):
            self.cell = None

    def handle_data(self, data):
        if self.cell:
            self.row[self.cell] += data


def removed_tables(version_path) -> dict[str, list[dict[str, str]]]:
    parser = RemovedTables()
    parser.feed((version_path / "report.html").read_text(encoding="utf-8"))
    return parser.tables


def recipe(tmp_path, text: str, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def rows_of(version_path) -> dict[str, list[dict]]:
    ds = datasets.load_from_disk(str(version_path))
    return {split: ds[split].to_list() for split in ds}


def words(rng: random.Random, n: int) -> str:
    vocab = [f"w{i}" for i in range(3000)]
    return " ".join(rng.choice(vocab) for _ in range(n))


def test_removed_rows_show_their_text_and_the_kept_duplicate(fixtures_dir, tmp_path):
    line_2 = (fixtures_dir / "support_chats.jsonl").read_text(errors="replace").splitlines()[1]
    t_10002 = json.loads(line_2)
    short = recipe(tmp_path, "filters:\n  min_words: 60\n")
    result = run_pipeline([fixtures_dir / "support_chats.jsonl"], "support", short,
                          tmp_path / "store")
    tables = removed_tables(result.path)

    copies = tables["duplicate:exact"]
    assert len(copies) == 3
    for row in copies:
        assert row["removed-text"] and row["removed-text"] == row["kept-text"]
        assert row["n similarity"] == "1.0"
    kept_of_line_27 = next(r for r in copies if r["removed-text"].startswith("I returned my Aura"))
    assert kept_of_line_27["kept-text"].startswith(t_10002["messages"][0]["content"])

    short_rows = tables["too_short:words"]
    assert len(short_rows) == 3 and "kept-text" not in short_rows[0]
    for row in short_rows:
        assert 0 < len(row["removed-text"]) <= EXAMPLE_CHARS + 1
        assert len(row["removed-text"].split()) < 60
    # the text travels to the report only: removed.jsonl keeps its fields
    for line in (result.path / "removed.jsonl").open():
        assert not {"text", "_example", "duplicate_of_text"} & set(json.loads(line))


def clipped(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + "…"


def test_near_duplicate_example_shows_both_rows_and_their_similarity(tmp_path):
    rng = random.Random(1)
    texts = [words(rng, 60) for _ in range(40)]
    rows = [{"id": f"r{i}", "text": t, "label": "ab"[i % 2]} for i, t in enumerate(texts)]
    copy = texts[5].rsplit(" ", 1)[0] + " w"  # the last word changed (and shortened)
    rows.append({"id": "copy", "text": copy, "label": "b"})
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run_pipeline([path], "near", store=tmp_path / "store")
    [shown] = removed_tables(result.path)["duplicate:near"]
    assert shown["removed-text"] == clipped(copy) and shown["kept-text"] == clipped(texts[5])
    assert 0.8 <= float(shown["n similarity"]) < 1.0


def test_lengths_per_field_for_chat_and_classification(fixtures_dir, tmp_path):
    chat = run_pipeline([fixtures_dir / "support_chats.jsonl"], "chat", store=tmp_path / "s")
    fields = chat.report["field_lengths"]
    assert list(fields["measures"]) == ["prompt", "response", "turns"]
    for split, rows in rows_of(chat.path).items():
        prompt, response, turns, roles = [], [], [], {}
        for row in rows:
            messages = row["messages"]
            last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
            prompt.append(sum(len(m["content"]) for m in messages[:last]))
            response.append(len(messages[last]["content"]))
            turns.append(len(messages))
            for m in messages:
                roles[m["role"]] = roles.get(m["role"], 0) + 1
        stats = fields["stats"][split]
        for name, values in [("prompt", prompt), ("response", response), ("turns", turns)]:
            assert stats[name]["median"] == float(np.median(values)), (split, name)
            assert stats[name]["max"] == max(values)
            assert sum(fields["histograms"][name]["counts"][split]) == len(values)
        assert fields["roles"][split] == roles
    assert {"system", "user", "assistant"} <= set(fields["roles"]["train"])

    reviews = run_pipeline([fixtures_dir / "reviews.csv"], "reviews",
                           fixtures_dir / "reviews.recipe.yaml", tmp_path / "s")
    fields = reviews.report["field_lengths"]
    assert list(fields["measures"]) == ["text"]
    assert fields["roles"] == {"train": {}, "validation": {}, "test": {}}
    for split, rows in rows_of(reviews.path).items():
        lengths = [len(r["text"]) for r in rows]
        assert fields["stats"][split]["text"]["median"] == float(np.median(lengths))
        assert fields["stats"][split]["text"]["min"] == min(lengths)
    page = (reviews.path / "report.html").read_text()
    assert "<figure data-plot='field-text'>" in page
    assert reviews.report["token_lengths"] is None and "No tokenizer in the recipe" in page


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    folder = build_causal_lm(tmp_path_factory.mktemp("tiny-lm"))
    return folder, AutoTokenizer.from_pretrained(folder)


def test_token_lengths_against_max_length(fixtures_dir, tmp_path, tiny_tokenizer):
    folder, tokenizer = tiny_tokenizer
    with_tokens = recipe(tmp_path, f"report:\n  tokenizer: {folder}\n  max_length: 256\n")
    result = run_pipeline([fixtures_dir / "support_chats.jsonl"], "tok", with_tokens,
                          tmp_path / "store")
    tokens = result.report["token_lengths"]
    assert tokens["tokenizer"] == str(folder) and tokens["max_length"] == 256
    assert tokens["measure"] == "total"
    some_over = 0
    for split, rows in rows_of(result.path).items():
        count = [len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"])
                 + len(tokenizer(r["completion"], add_special_tokens=False)["input_ids"])
                 for r in rows]
        over = sum(n > 256 for n in count)
        assert tokens["over_max_length"][split] == {"rows": over,
                                                    "share": round(over / len(rows), 4)}
        assert tokens["stats"][split]["total"]["max"] == max(count)
        some_over += over
    assert 0 < some_over < sum(result.report["counts"]["output"].values())
    page = (result.path / "report.html").read_text()
    figure = page.split("<figure data-plot='tokens-total'>")[1].split("</figure>")[0]
    assert "class=mark" in figure and "max_length 256" in figure
    out = StringIO()
    print_report(result.report, Console(file=out, width=160))
    assert f"over 256 tokens ({folder})" in out.getvalue()


def test_a_tokenizer_that_does_not_load_fails_before_anything_is_written(fixtures_dir,
                                                                         tmp_path):
    bad = recipe(tmp_path, f"report:\n  tokenizer: {tmp_path / 'nowhere'}\n")
    with pytest.raises(DataprepError, match="recipe report.tokenizer") as caught:
        run_pipeline([fixtures_dir / "reviews.csv"], "bad", bad, tmp_path / "store")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.arrow"))


def test_filter_histograms_carry_the_thresholds(fixtures_dir, tmp_path):
    # 63 is a bin edge of the word histogram: the bins below it hold exactly the rows under it
    bounds = recipe(tmp_path, "filters:\n  min_words: 63\n  max_chars: 900\n")
    result = run_pipeline([fixtures_dir / "support_chats.jsonl"], "f", bounds,
                          tmp_path / "store")
    report = result.report
    measured = report["filter_measures"]
    assert set(measured) == {"chars", "words", "alpha", "dup_lines", "top_bigram"}
    assert (measured["words"]["min"], measured["words"]["max"]) == (63, 4000)
    assert (measured["chars"]["min"], measured["chars"]["max"]) == (2, 900)
    assert measured["alpha"]["max"] is None and measured["dup_lines"]["min"] is None
    seen = report["counts"]["input"] - report["counts"]["rejected"] - sum(
        n for r, n in report["counts"]["filtered_by_reason"].items()
        if r.startswith("empty_after_clean"))
    assert measured["words"]["rows"] == measured["chars"]["rows"] == seen
    assert sum(measured["words"]["counts"]) == seen
    edges = measured["words"]["edges"]
    below = sum(c for c, hi in zip(measured["words"]["counts"], edges[1:], strict=False)
                if hi <= 63)
    assert below == report["counts"]["filtered_by_reason"]["too_short:words"] > 0
    over = sum(c for c, lo in zip(measured["chars"]["counts"], edges, strict=False) if lo > 900)
    assert over <= report["counts"]["filtered_by_reason"].get("too_long:chars", 0)
    # the repetition checks look at rows of 20 words or more (20 is an edge too)
    assert measured["dup_lines"]["rows"] == sum(
        c for c, lo in zip(measured["words"]["counts"], edges, strict=False) if lo >= 20)
    page = (result.path / "report.html").read_text()
    figure = page.split("<figure data-plot='filter-words'>")[1].split("</figure>")[0]
    assert "class=mark" in figure and ">min 63<" in figure and ">max 4000" in figure


def test_filter_histogram_bins_match_the_measures():
    import pyarrow as pa

    from dataprep.filters import measure_histograms
    from dataprep.settings import Filters

    texts = pa.array(["a b c", "one two three four five six seven", "x" * 5000, "", "12 34 !!"])
    m = measure(texts)
    counts = measure_histograms(m, Filters(repetition_min_words=3))
    for name, edges in MEASURE_EDGES.items():
        values = m[name] if name in ("chars", "words", "alpha") else m[name][m["words"] >= 3]
        expected = np.histogram(np.clip(values, 0, edges[-1]), edges)[0]
        got = [counts.get(f"{name}:{b}", 0) for b in range(len(edges) - 1)]
        assert got == expected.tolist(), name


def test_a_threshold_mark_sits_where_its_value_is():
    page = histogram("h", "t", [0, 10, 20, 40], {"rows": [1, 2, 3]}, marks={"min": 20, "max": 30})
    lines = [p.split(" y1")[0] for p in page.split("<line class=mark x1=")[1:]]
    # 40 px left pad, 640 / 3 bins: 20 is the third edge, 30 halfway through the last bin
    assert [float(x) for x in lines] == pytest.approx([40 + 2 * 640 / 3, 40 + 2.5 * 640 / 3],
                                                     abs=0.1)
    assert "class=mark" not in histogram("h", "t", [0, 10, 20, 40], {"rows": [1, 2, 3]})


def drifting_rows(n: int, skewed: bool) -> list[dict]:
    """Rows of two labels; where `skewed`, every `a` row is long and of one customer, so the
    grouped split puts all of them in one split."""
    rng = random.Random(7)
    rows = []
    for i in range(n):
        label = "a" if i % 3 == 0 else "b"
        long = skewed and label == "a"
        rows.append({"id": f"r{i}", "text": words(rng, 70 if long else rng.randint(8, 40)),
                     "label": label, "customer": "c0" if long else f"c{i}"})
    return rows


@pytest.mark.parametrize("skewed", [True, False])
def test_drift_between_splits_warns_only_when_planted(tmp_path, skewed):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in drifting_rows(900, skewed)))
    grouped = recipe(tmp_path, "split:\n  group_by: customer\n")
    result = run_pipeline([path], "drift", grouped, tmp_path / "store")
    drift = result.report["drift"]
    tested = {t["quantity"]: t for t in drift["tests"]}
    assert set(tested) == {"label", "chars"}
    page = (result.path / "report.html").read_text()
    out = StringIO()
    print_report(result.report, Console(file=out, width=200))
    if skewed:
        assert tested["label"]["drifted"] and tested["label"]["p_value"] < 1e-4
        assert tested["chars"]["drifted"]
        assert any("labels" in w for w in drift["warnings"])
        assert "id=drift-warnings" in page and "warning: the splits' labels" in out.getvalue()
    else:
        assert drift["warnings"] == [] and not any(t["drifted"] for t in drift["tests"])
        assert "id=drift-warnings" not in page and "warning:" not in out.getvalue()


def test_a_stratified_split_of_the_fixtures_does_not_warn(fixtures_dir, tmp_path):
    for files, rec in [(["reviews.csv"], fixtures_dir / "reviews.recipe.yaml"),
                       (["support_chats.jsonl", "transcripts.txt"], None),
                       (["instructions.jsonl"], None)]:
        result = run_pipeline([fixtures_dir / f for f in files], files[0].split(".")[0], rec,
                              tmp_path / "store")
        assert result.report["drift"]["warnings"] == [], files
        assert result.report["drift"]["tests"], files


def test_drift_tests_leave_rare_labels_out_and_use_monte_carlo_when_cells_are_small():
    labels = {"train": {"a": 40, "b": 40, "rare": 3}, "validation": {"a": 4, "b": 4},
              "test": {"a": 4, "b": 4}}
    lengths = {s: {"chars": np.arange(n) % 7} for s, n in
               [("train", 83), ("validation", 10), ("test", 10)]}
    drift = drift_report(labels, ["rare"], lengths)
    label = next(t for t in drift["tests"] if t["quantity"] == "label")
    assert label["test"] == "chi-square (Monte Carlo)" and label["dof"] == 2
    assert label["p_value"] > 0.5 and drift["warnings"] == []
    skewed = drift_report({"train": {"a": 80, "b": 0}, "validation": {"a": 0, "b": 40},
                           "test": {"a": 40, "b": 40}}, [], {s: {} for s in labels})
    assert skewed["tests"][0]["test"] == "chi-square" and skewed["warnings"]
