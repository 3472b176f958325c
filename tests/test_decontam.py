"""Decontamination (the recipe's `decontaminate`): planted overlaps with evaluation rows found,
named and nothing else removed; store splits as sources; validation/test overlaps reported;
bad sources as one-line errors with nothing published."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest

from dataprep.decontam import EvalIndex, record_text, resolve_sources
from dataprep.errors import DataprepError
from dataprep.pipeline import run_pipeline
from dataprep.recipe import resolve_recipe
from dataprep.store import open_version

from .conftest import run_cli
from .independent import load_splits, normalise, row_text

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
ALL_TRAIN = "kind: classification\nsplit: {ratios: [1, 0, 0]}\n"


def vocabulary(seed: int = 3, size: int = 3000) -> list[str]:
    """Made-up words (no language filter, no accidental shared phrase between rows)."""
    rnd = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rnd.choice(SYLLABLES) for _ in range(rnd.randint(2, 4))))
    return sorted(words)


WORDS = vocabulary()


def sentence(rnd: random.Random, n: int) -> list[str]:
    return [rnd.choice(WORDS) for _ in range(n)]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def questions(rnd: random.Random, n: int = 6) -> list[dict]:
    """Benchmark-like records of another kind (question, choices, answer index); the last one
    shorter than 13 words."""
    out = [{"question": " ".join(sentence(rnd, 30)),
            "choices": [" ".join(sentence(rnd, 3)) for _ in range(4)], "answer": 1}
           for _ in range(n - 1)]
    return out + [{"question": " ".join(sentence(rnd, 4)), "choices": ["a", "b"], "answer": 0}]


def corpus(rnd: random.Random, n: int = 40) -> list[dict]:
    return [{"id": f"r{i}", "text": " ".join(sentence(rnd, 30)), "label": "ab"[i % 2]}
            for i in range(n)]


def planted(rnd: random.Random, span: list[str], row_id: str, label: str = "a") -> dict:
    """A row holding `span` between fresh words, written with other case and punctuation (the
    normalised text is what is compared)."""
    text = " ".join(sentence(rnd, 8)) + " " + ", ".join(w.upper() for w in span) + ". " + \
        " ".join(sentence(rnd, 8))
    return {"id": row_id, "text": text, "label": label}


def removed(result) -> list[dict]:
    return [json.loads(line) for line in (result.path / "removed.jsonl").open()]


def output_ids(result) -> dict[str, set[str]]:
    return {split: {r["id"] for r in rows} for split, rows in load_splits(result.path).items()}


def accounted(result) -> bool:
    """input + augmented == rejected + removed + output, from the files (and the augmented
    count: an augmented row removed as contaminated is in removed.jsonl too)."""
    rejected = sum(1 for _ in (result.path / "rejected.jsonl").open())
    out = sum(len(v) for v in output_ids(result).values())
    counts = result.report["counts"]
    return counts["input"] + sum(counts["augmented"].values()) == \
        rejected + len(removed(result)) + out


@pytest.fixture
def work(tmp_path) -> Path:
    rnd = random.Random(7)
    evals = questions(rnd)
    write_jsonl(tmp_path / "bench" / "eval.jsonl", evals)
    q2, q3 = evals[1]["question"].split(), evals[2]["question"].split()
    rows = corpus(rnd)
    rows.append(planted(rnd, q2[5:18], "hit13"))    # 13 words of evaluation row 2
    rows.append(planted(rnd, q3[5:17], "miss12"))   # only 12 words of evaluation row 3
    write_jsonl(tmp_path / "logs.jsonl", rows)
    return tmp_path


def run(work: Path, recipe: str, name: str = "logs", inputs: list[Path] | None = None):
    (work / "recipe.yaml").write_text(recipe, encoding="utf-8")
    return run_pipeline(inputs or [work / "logs.jsonl"], name, work / "recipe.yaml",
                        work / "store")


def test_a_train_row_with_a_13_word_span_is_removed_naming_the_evaluation_row(work):
    plain = run(work, ALL_TRAIN)
    checked = run(work, ALL_TRAIN + "decontaminate: [bench/eval.jsonl]\n")
    mine = [r for r in removed(checked) if r["stage"] == "decontaminate"]
    assert [(r["id"], r["reason"], r["contaminated_by"]) for r in mine] == [
        ("hit13", "contaminated:bench/eval.jsonl", "bench/eval.jsonl:2")]
    # nothing else changed: the 12-word row and every other row are where they were
    assert output_ids(checked)["train"] == output_ids(plain)["train"] - {"hit13"}
    assert "miss12" in output_ids(checked)["train"]
    assert removed(plain) == [r for r in removed(checked) if r["stage"] != "decontaminate"]
    assert checked.report["accounting_ok"] and accounted(checked)
    counts = checked.report["counts"]["filtered_by_reason"]
    assert counts == {"contaminated:bench/eval.jsonl": 1}
    section = checked.report["decontamination"]
    assert section["ngram"] == 13 and section["removed"] == 1
    assert section["sources"][0]["rows"] == 6 and section["sources"][0]["short_rows"] == 1
    assert section["sources"][0]["removed"] == 1
    manifest = json.loads((checked.path / "manifest.json").read_text())
    assert manifest["recipe"]["decontaminate_sources"] == [
        {"source": "bench/eval.jsonl", "sha256": section["sources"][0]["sha256"]}]
    page = (checked.path / "report.html").read_text()
    assert "Decontamination against evaluation sources" in page and "bench/eval.jsonl" in page
    # the recorded recipe reads back (what `train predict` prepares raw files with)
    version = open_version(f"logs@{checked.version}", work / "store")
    assert version.prepare([work / "logs.jsonl"]).rows_read == 42


def test_a_lower_ngram_finds_the_12_word_span_and_the_mapping_form_reads_alike(work):
    checked = run(work, ALL_TRAIN + "decontaminate: {sources: [bench/eval.jsonl], ngram: 12}\n")
    assert sorted(r["id"] for r in removed(checked) if r["stage"] == "decontaminate") == \
        ["hit13", "miss12"]
    short = resolve_recipe({"decontaminate": ["bench/eval.jsonl"]}).resolved()
    long = resolve_recipe({"decontaminate": {"sources": ["bench/eval.jsonl"]}}).resolved()
    assert short["decontaminate"] == long["decontaminate"] == {
        "sources": ["bench/eval.jsonl"], "ngram": 13}


def test_editing_the_evaluation_file_makes_a_new_version(work):
    recipe = ALL_TRAIN + "decontaminate: [bench/eval.jsonl]\n"
    first = run(work, recipe)
    again = run(work, recipe)
    assert not again.created and again.version == first.version
    with (work / "bench" / "eval.jsonl").open("a") as fh:
        fh.write(json.dumps({"question": " ".join(WORDS[:20])}) + "\n")
    assert run(work, recipe).version != first.version


def test_a_split_of_a_store_version_is_a_source(work):
    rnd = random.Random(11)
    chats = [{"id": f"c{i}", "messages": [
        {"role": "user", "content": " ".join(sentence(rnd, 20))},
        {"role": "assistant", "content": " ".join(sentence(rnd, 20))}]} for i in range(40)]
    write_jsonl(work / "chats.jsonl", chats)
    (work / "chat.yaml").write_text("kind: chat\n", encoding="utf-8")
    evalset = run_pipeline([work / "chats.jsonl"], "evalset", work / "chat.yaml", work / "store")
    test_row = load_splits(evalset.path)["test"][0]
    answer = test_row["messages"][1]["content"].split()
    write_jsonl(work / "more.jsonl", [planted(rnd, answer[2:15], "from-test")])
    checked = run(work, ALL_TRAIN + "decontaminate: [evalset@latest:test]\n",
                  inputs=[work / "logs.jsonl", work / "more.jsonl"])
    mine = [r for r in removed(checked) if r["stage"] == "decontaminate"]
    assert [(r["id"], r["reason"], r["contaminated_by"]) for r in mine] == [
        ("from-test", "contaminated:evalset@latest:test", test_row["source"])]
    source = checked.report["decontamination"]["sources"][0]
    assert source["version"] == f"evalset@{evalset.version}"
    assert source["rows"] == len(load_splits(evalset.path)["test"])


def test_validation_and_test_overlaps_are_reported_not_removed(work):
    rnd = random.Random(5)
    q = json.loads((work / "bench" / "eval.jsonl").read_text().splitlines()[0])["question"]
    rows = corpus(rnd, 60) + [planted(rnd, q.split()[i:i + 13], f"p{i}", "ab"[i % 2])
                              for i in range(16)]
    write_jsonl(work / "logs.jsonl", rows)
    checked = run(work, "kind: classification\ndecontaminate: [bench/eval.jsonl]\n")
    out = output_ids(checked)
    gone = {r["id"] for r in removed(checked) if r["stage"] == "decontaminate"}
    plants = {f"p{i}" for i in range(16)}
    kept = {s: out[s] & plants for s in ("validation", "test")}
    assert gone | kept["validation"] | kept["test"] == plants and not out["train"] & plants
    section = checked.report["decontamination"]
    assert section["removed"] == len(gone) > 0
    assert section["overlaps"] == {s: len(kept[s]) for s in kept}
    assert sum(section["overlaps"].values()) > 0
    example = section["examples"][0]
    assert example["id"] in kept[example["split"]]
    assert example["evaluation_row"] == "bench/eval.jsonl:1"
    assert checked.report["accounting_ok"] and accounted(checked)


def test_the_vectorised_check_agrees_with_a_plain_python_one(tmp_path):
    """Random texts over a small vocabulary (so some 13-grams are shared by chance), and texts
    quoting evaluation rows that share spans with each other, checked against the evaluation
    rows: a row is flagged exactly when it shares a 13-word sequence of the normalised text,
    and named by the first evaluation row holding its first such sequence."""
    rnd = random.Random(1)
    small = WORDS[:2]
    evals = [{"text": " ".join(rnd.choice(small) for _ in range(rnd.randint(5, 40)))}
             for _ in range(30)]
    for number in range(1, 30, 2):  # every other row repeats the start of the one before
        evals[number]["text"] = " ".join(evals[number - 1]["text"].split()[:15]) + " " + \
            " ".join(rnd.choice(WORDS) for _ in range(10))
    write_jsonl(tmp_path / "e.jsonl", evals)
    texts = [" ".join(rnd.choice(small) for _ in range(rnd.randint(0, 60))) for _ in range(300)]
    texts += [" ".join(e["text"].split()[:14]) for e in evals[1::2]]
    sources = resolve_sources(["e.jsonl"], tmp_path, tmp_path / "store")
    index = EvalIndex(sources, 13, tmp_path / "store", 1 << 20)
    got = index.matches(pa.array(texts, pa.string()))
    first_row: dict[tuple, int] = {}
    for number, record in enumerate(evals):
        words = normalise(record_text(record))
        for i in range(len(words) - 12):
            first_row.setdefault(tuple(words[i:i + 13]), number)
    expected = []
    for text in texts:
        words = normalise(text)
        grams = [tuple(words[i:i + 13]) for i in range(len(words) - 12)]
        expected.append(next((first_row[g] for g in grams if g in first_row), -1))
    assert got.tolist() == expected
    assert 0 < sum(e >= 0 for e in expected) < len(texts)


def test_record_text_takes_every_text_field_of_any_kind():
    assert record_text({"id": "x", "messages": [{"role": "user", "content": "a b"},
                                                {"role": "assistant", "content": "c"}]}) == \
        "a b\nc"
    assert record_text({"text": "t", "label": "positive", "meta": {"k": "v"}}) == "t"
    assert record_text({"question": "q", "choices": ["x", "y"], "answer": 2}) == "q\nx\ny"
    assert row_text({"text": "t"}) == "t"


def no_version(store: Path, name: str = "logs") -> bool:
    folder = store / name
    return not folder.exists() or not any(p.is_dir() and not p.name.startswith(".")
                                          for p in folder.iterdir())


@pytest.mark.parametrize(("source", "content", "message"), [
    ("bench/missing.jsonl", None, "bench/missing.jsonl: decontamination source not found"),
    ("bench/empty.jsonl", "", "bench/empty.jsonl: decontamination source holds no rows"),
    ("bench/bad.jsonl", '{"text": "fine words"}\nnot json\n',
     "bench/bad.jsonl:2: evaluation row cannot be read (invalid_json"),
    ("bench/short.jsonl", '{"text": "only five words here now"}\n',
     "bench/short.jsonl: no evaluation row has 13 words"),
    ("bench/list.jsonl", "[1, 2]\n",
     "bench/list.jsonl:1: evaluation row cannot be read (not_an_object"),
    ("bench/eval.txt.zip", "x", "bench/eval.txt.zip: unsupported input format"),
    ("nope@latest:test", None, "no dataset named 'nope' in store"),
    ("nope@latest:dev", None, "decontaminate: 'nope@latest:dev': a store source is"),
])
def test_bad_sources_fail_in_one_line_before_anything_is_written(work, source, content,
                                                                  message):
    if content is not None:
        (work / source).write_text(content, encoding="utf-8")
    with pytest.raises(DataprepError) as caught:
        run(work, ALL_TRAIN + f"decontaminate: [{source}]\n")
    assert str(caught.value).startswith(message) or message in str(caught.value)
    assert "\n" not in str(caught.value) and no_version(work / "store")


def test_a_bad_source_on_the_command_line_is_one_line_and_exit_1(work):
    (work / "recipe.yaml").write_text(ALL_TRAIN + "decontaminate: [bench/none.csv]\n")
    proc = run_cli("run", "logs.jsonl", "--name", "logs", "--recipe", "recipe.yaml",
                   "--store", "store", cwd=work)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: bench/none.csv: decontamination source not found "
        f"(looked for {work / 'bench' / 'none.csv'})"]
    assert no_version(work / "store")


@pytest.mark.parametrize(("recipe", "message"), [
    ({"decontaminate": ["a.jsonl", "a.jsonl"]}, "source 'a.jsonl' is listed twice"),
    ({"decontaminate": {"sources": ["a.jsonl"], "ngram": 0}}, "decontaminate.ngram: 0"),
    ({"decontaminate": [""]}, "decontaminate.sources.0"),
    ({"decontaminate": {"source": ["a.jsonl"]}},
     "unknown key decontaminate.source .*did you mean 'sources'"),
])
def test_bad_decontaminate_settings_are_recipe_errors(recipe, message):
    with pytest.raises(DataprepError, match=message):
        resolve_recipe(recipe)


@pytest.mark.slow  # fidelity embeds every candidate with minilm-l6
def test_augmented_train_rows_are_checked_too(tmp_path, fixtures_dir):
    """Every review is an evaluation row, so every original train row goes; the augmented
    rows (made from the planned train rows before the check) are checked on their own text:
    none left in train shares a 13-gram with an evaluation row, and some were removed."""
    plain = run_pipeline([fixtures_dir / "reviews.csv"], "reviews",
                         fixtures_dir / "reviews.recipe.yaml", tmp_path / "store")
    reviews = [r["text"] for rows in load_splits(plain.path).values() for r in rows]
    write_jsonl(tmp_path / "eval.jsonl", [{"text": t} for t in reviews])
    (tmp_path / "r.yaml").write_text(json.dumps({
        "kind": "classification", "fields": {"id": "review_id", "text": "review",
                                             "label": "sentiment"},
        "augment": [{"kind": "synonym", "backend": "wordnet", "fraction": 1.0, "aug_p": 0.1}],
        "fidelity": {"min_similarity": 0.6}, "decontaminate": ["eval.jsonl"]}))
    checked = run_pipeline([fixtures_dir / "reviews.csv"], "reviews", tmp_path / "r.yaml",
                           tmp_path / "store")
    evaluation = set()
    for text in reviews:
        words = normalise(text)
        evaluation.update(tuple(words[i:i + 13]) for i in range(len(words) - 12))
    train = load_splits(checked.path)["train"]
    for row in train:
        words = normalise(row["text"])
        assert not any(tuple(words[i:i + 13]) in evaluation for i in range(len(words) - 12))
    gone = {r["id"] for r in removed(checked) if r["stage"] == "decontaminate"}
    inputs = {r["id"] for rows in load_splits(plain.path).values() for r in rows}
    assert gone - inputs, "no augmented row was removed"
    assert checked.report["accounting_ok"] and accounted(checked)
