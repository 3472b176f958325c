"""Outputs other tools load, and `train export`: runs opened by peft's and transformers' standard
loaders (a GGUF base dequantised once into an ordinary folder for them), the card's Hub metadata
and its loading snippet, the merged / hub / onnx exports with the ONNX parity check, and one-line
errors. On the `trained` fixture's tiny runs (never modified: exports go to temporary folders);
the built-in models in the `slow` tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from common.models import locate_model, materialised_dir, model_cache_root, resolve_model
from train.errors import TrainError
from train.export import PARITY_RELATIVE, check_parity, export_run, load_merged, parity_batch
from train.load import load_run
from train.run_dir import open_run

from .conftest import ROOT
from .tiny_models import build_tokenizer

TEXTS = ["My router drops the connection every hour.", "Great product, works well.", "ok"]
#: Names a folder meant for upload must never hold (training state, checkpoints).
TRAINING_STATE = re.compile(r"checkpoint-|optimizer|scheduler|rng_state|training_args|"
                            r"trainer_state")


def logits(model, tokenizer, texts=TEXTS) -> np.ndarray:
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.eval()(**batch).logits.float().numpy()


def front_matter(card: Path) -> dict:
    text = card.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def card_metrics(meta: dict) -> dict[tuple[str, str], float]:
    """(split, metric type) -> value, read off the card's model-index."""
    [entry] = meta["model-index"]
    return {(result["dataset"]["split"], metric["type"]): metric["value"]
            for result in entry["results"] for metric in result["metrics"]}


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """Each (run, format) exported once per module, into a temporary folder."""
    root, done = tmp_path_factory.mktemp("exports"), {}

    def export(run: str, fmt: str) -> Path:
        if (run, fmt) not in done:
            done[run, fmt] = export_run(open_run(getattr(trained, run)), fmt,
                                        root / f"{run}-{fmt}")
        return done[run, fmt]

    return export


# --- a run opens with the standard loaders ----------------------------------------------------

def test_lora_sft_run_opens_with_autopeft_and_pipeline(trained):
    from peft import AutoPeftModelForCausalLM
    from transformers import pipeline

    model, tokenizer = load_run(trained.sft)
    want = logits(model, tokenizer)
    auto = AutoPeftModelForCausalLM.from_pretrained(str(trained.sft))
    np.testing.assert_allclose(logits(auto, tokenizer), want, atol=1e-6)
    pipe = pipeline("text-generation", model=str(trained.sft))  # base, then the adapter
    np.testing.assert_allclose(logits(pipe.model, tokenizer), want, atol=1e-6)
    [out] = pipe(TEXTS[0], max_new_tokens=4, do_sample=False)
    assert out["generated_text"].startswith(TEXTS[0])


def test_lora_classifier_opens_with_its_labels(trained):
    from peft import AutoPeftModelForSequenceClassification
    from transformers import pipeline

    labels = json.loads((trained.classifier / "run.json").read_text())["labels"]
    model, tokenizer = load_run(trained.classifier)
    auto = AutoPeftModelForSequenceClassification.from_pretrained(
        str(trained.classifier), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)})
    np.testing.assert_allclose(logits(auto, tokenizer), logits(model, tokenizer), atol=1e-6)
    pipe = pipeline("text-classification", model=auto.merge_and_unload(), tokenizer=tokenizer)
    assert {row["label"] for row in pipe(TEXTS)} <= set(labels)


def test_card_snippets_run_from_a_folder_with_its_own_train_py(trained, tmp_path):
    """The cards' loading code, run as written from a folder whose `train.py` would shadow the
    `train` package: it loads the runs with the standard loaders only."""
    (tmp_path / "train.py").write_text("raise SystemExit('the train package was shadowed')\n")
    snippets = [re.search(r"```python\n(.*?)```", (run / "README.md").read_text(), re.S)[1]
                for run in (trained.sft, trained.classifier)]
    program = "\n".join(f"exec({code!r}, {{}})\nprint('loaded')" for code in snippets)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env={**env, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["loaded", "loaded"]


def test_cards_carry_the_hub_metadata(trained):
    from huggingface_hub import ModelCard

    for run, task, metric in ((trained.sft, "text-generation", "loss"),
                              (trained.classifier, "text-classification", "accuracy")):
        meta = front_matter(run / "README.md")
        info = json.loads((run / "run.json").read_text())
        assert meta["datasets"] == [info["identity"]["dataset"]]
        assert meta["pipeline_tag"] == task and meta["library_name"] == "peft"
        assert {"dataprep-train", "lora", info["config"]["method"]} <= set(meta["tags"])
        assert "base_model" not in meta and "license" not in meta  # a local folder: unknown
        test = json.loads((run / "metrics.json").read_text())["test"]
        assert card_metrics(meta)["test", metric] == pytest.approx(test[metric])
        data = ModelCard.load(run / "README.md").data  # the Hub's own reader
        assert data.pipeline_tag == task and data.eval_results
        assert {r.dataset_split for r in data.eval_results} == {"validation", "test"}


# --- GGUF models: dequantised once into an ordinary folder ------------------------------------

def build_gguf_lm(target: Path) -> Path:
    """A folder holding only a tiny Llama as a GGUF file (Q8_0 matrices, the fixture tokenizer
    and a chat template inside), as llama.cpp's converter lays it out."""
    import gguf

    tokenizer = build_tokenizer(target / "tokenizer")
    spec = json.loads((target / "tokenizer" / "tokenizer.json").read_text())
    vocab = [token for token, _ in sorted(spec["model"]["vocab"].items(), key=lambda t: t[1])]
    vocab.append("<|endoftext|>")  # transformers' GGUF tokenizer adds it where it is missing
    special = {*tokenizer.all_special_ids, len(vocab) - 1}
    hidden, ffn, layers = 32, 64, 2
    writer = gguf.GGUFWriter(str(target / "tiny.gguf"), "llama")
    writer.add_name("tiny llama")
    for add, value in ((writer.add_block_count, layers), (writer.add_context_length, 256),
                       (writer.add_embedding_length, hidden), (writer.add_head_count, 2),
                       (writer.add_feed_forward_length, ffn), (writer.add_head_count_kv, 2),
                       (writer.add_rope_freq_base, 10000.0), (writer.add_vocab_size, len(vocab)),
                       (writer.add_layer_norm_rms_eps, 1e-5),
                       (writer.add_rope_dimension_count, hidden // 2)):
        add(value)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab)
    writer.add_token_types([3 if i in special else 1 for i in range(len(vocab))])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m)
                             for m in spec["model"]["merges"]])
    for add, token in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                       (writer.add_eos_token_id, tokenizer.eos_token_id),
                       (writer.add_pad_token_id, tokenizer.pad_token_id),
                       (writer.add_unk_token_id, tokenizer.unk_token_id)):
        add(token)
    writer.add_add_bos_token(False)
    writer.add_chat_template(
        "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    rng = np.random.default_rng(0)

    def matrix(name: str, rows: int, cols: int) -> None:
        weight = rng.normal(0, 0.1, (rows, cols)).astype(np.float32)
        q8 = gguf.GGMLQuantizationType.Q8_0
        writer.add_tensor(name, gguf.quants.quantize(weight, q8), raw_dtype=q8)

    matrix("token_embd.weight", len(vocab), hidden)
    for i in range(layers):
        for norm in ("attn_norm", "ffn_norm"):
            writer.add_tensor(f"blk.{i}.{norm}.weight", np.ones(hidden, np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            matrix(f"blk.{i}.{name}.weight", hidden, hidden)
        matrix(f"blk.{i}.ffn_gate.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_up.weight", ffn, hidden)
        matrix(f"blk.{i}.ffn_down.weight", hidden, ffn)
    writer.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (target / "tokenizer").rename(target.parent / f"{target.name}-tokenizer")  # GGUF alone
    return target


@pytest.fixture(scope="module")
def gguf_lm(tmp_path_factory) -> Path:
    return build_gguf_lm(tmp_path_factory.mktemp("gguf") / "lm")


def test_a_gguf_model_resolves_to_its_dequantised_folder(gguf_lm, tmp_path, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("DATAPREP_MODEL_CACHE", str(tmp_path / "cache"))
    ref = resolve_model(str(gguf_lm))
    folder = Path(ref.path)
    assert ref.gguf_file is None and folder.parent == tmp_path / "cache" == model_cache_root()
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {
        p.name for p in folder.iterdir()}
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    # nothing half-written is left beside it
    assert {p.name for p in folder.parent.iterdir()} - {f"{folder.name}.lock"} == {folder.name}
    direct = AutoModelForCausalLM.from_pretrained(str(gguf_lm), gguf_file="tiny.gguf")
    direct_tok = AutoTokenizer.from_pretrained(str(gguf_lm), gguf_file="tiny.gguf")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer(TEXTS)["input_ids"] == direct_tok(TEXTS)["input_ids"]
    assert tokenizer.chat_template == direct_tok.chat_template
    model = AutoModelForCausalLM.from_pretrained(str(folder))
    assert model.dtype == torch.float32
    np.testing.assert_array_equal(logits(model, tokenizer), logits(direct, tokenizer))
    # written once: a second resolve reads it; a changed GGUF file gets a folder of its own
    written = (folder / "model.safetensors").stat().st_mtime_ns
    assert resolve_model(str(gguf_lm)).path == ref.path
    assert (folder / "model.safetensors").stat().st_mtime_ns == written
    gguf = gguf_lm / "tiny.gguf"
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, gguf.stat().st_mtime_ns + 10**9))
    assert materialised_dir(locate_model(str(gguf_lm))) != folder


def test_processes_starting_together_dequantise_once(gguf_lm, tmp_path):
    env = {**os.environ, "DATAPREP_MODEL_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    code = f"from common.models import resolve_model; print(resolve_model({str(gguf_lm)!r}).path)"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    paths = {out.strip() for out, _ in outs}
    assert len(paths) == 1
    assert sum(err.count("dequantising") for _, err in outs) == 1
    [folder] = [p for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock"]
    assert str(folder) in paths and (folder / "config.json").is_file()


def test_a_lora_run_on_a_gguf_model_opens_with_autopeft(gguf_lm, trained, tmp_path,
                                                         monkeypatch):
    """The issue's case, on a tiny GGUF model: the adapter's base is the dequantised folder, so
    peft's and transformers' loaders open the run, with the logits `load_run` gives."""
    from peft import AutoPeftModelForCausalLM
    from transformers import pipeline

    from train.config import resolve_config
    from train.runner import run_training

    monkeypatch.setenv("DATAPREP_MODEL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    run_training(resolve_config({"dataset": trained.support, "model": str(gguf_lm),
                                 "store": str(trained.store), "max_steps": 2, "batch_size": 4,
                                 "eval_steps": 2, "max_length": 128, "output": str(out)}))
    base = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert base == resolve_model(str(gguf_lm)).path and (Path(base) / "config.json").is_file()
    model, tokenizer = load_run(out)
    want = logits(model, tokenizer)
    np.testing.assert_allclose(logits(AutoPeftModelForCausalLM.from_pretrained(str(out)),
                                      tokenizer), want, atol=1e-6)
    pipe = pipeline("text-generation", model=str(out))
    np.testing.assert_allclose(logits(pipe.model, tokenizer), want, atol=1e-6)
    assert "dequantised once into the model cache" in (out / "README.md").read_text()


# --- merged ------------------------------------------------------------------------------------

def test_merged_export_loads_with_the_auto_classes_and_pipeline(trained, exported):
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
        pipeline,
    )

    out = exported("sft", "merged")
    assert not (out / "adapter_config.json").exists()
    model, tokenizer = load_run(trained.sft)
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    assert type(merged).__name__ == "LlamaForCausalLM" and merged.config.use_cache
    np.testing.assert_allclose(logits(merged, AutoTokenizer.from_pretrained(str(out))),
                               logits(model, tokenizer), atol=1e-5)
    [generated] = pipeline("text-generation", model=str(out))(TEXTS[0], max_new_tokens=4,
                                                             do_sample=False)
    assert generated["generated_text"].startswith(TEXTS[0])
    assert front_matter(out / "README.md")["library_name"] == "transformers"

    out = exported("classifier", "merged")
    model, tokenizer = load_run(trained.classifier)
    merged = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert merged.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    np.testing.assert_allclose(logits(merged, tokenizer), logits(model, tokenizer), atol=1e-5)
    predicted = pipeline("text-classification", model=str(out))(TEXTS)
    assert {row["label"] for row in predicted} <= {"negative", "neutral", "positive"}
    # the export is itself a run the train commands open (full weights)
    again, _ = load_run(out)
    np.testing.assert_allclose(logits(again, tokenizer), logits(model, tokenizer), atol=1e-5)


# --- hub ---------------------------------------------------------------------------------------

def test_hub_folder_is_clean_and_its_card_has_the_hub_metadata(trained, exported):
    from huggingface_hub import ModelCard

    out = exported("sft", "hub")
    names = {p.name for p in out.iterdir()}
    assert {"README.md", "run.json", "metrics.json", "config.json", "model.safetensors",
            "tokenizer.json", "tokenizer_config.json"} <= names
    assert not [n for n in names if TRAINING_STATE.search(n)]
    assert TRAINING_STATE.search(" ".join(p.name for p in trained.sft.iterdir()))  # the run has
    assert all(p.is_file() for p in out.iterdir())
    meta = front_matter(out / "README.md")
    # the base is a local folder, which a downloader cannot fetch: merged weights
    assert meta["library_name"] == "transformers" and not (out / "adapter_config.json").exists()
    assert meta["datasets"] == [trained.support] and meta["pipeline_tag"] == "text-generation"
    test = json.loads((out / "metrics.json").read_text())["test"]
    assert card_metrics(meta)["test", "perplexity"] == pytest.approx(test["perplexity"])
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers"
    assert f'from_pretrained("{out.resolve()}")' in card.text and "upload_folder" in card.text


def hub_cache(root: Path, repo: str, files: Path) -> Path:
    """A Hugging Face cache holding `repo` at one commit, as a download leaves it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in files.iterdir():
        (snapshot / path.name).write_bytes(path.read_bytes())
    return root


HUB_RUN = """
import json, sys
from pathlib import Path
from peft import AutoPeftModelForCausalLM
from train.config import resolve_config
from train.export import export_run
from train.load import load_run
from train.run_dir import open_run
from train.runner import run_training

dataset, store, root = sys.argv[1:]
run = Path(root) / "run"
run_training(resolve_config({"dataset": dataset, "model": "tiny-org/tiny-llama",
                             "store": store, "max_steps": 2, "batch_size": 4, "eval_steps": 2,
                             "max_length": 128, "output": str(run)}))
out = export_run(open_run(run), "hub", Path(root) / "hub")
model, tokenizer = load_run(run)
batch = tokenizer(["My router drops the connection."], return_tensors="pt")
auto = AutoPeftModelForCausalLM.from_pretrained(str(out)).eval()
diff = (auto(**batch).logits - model.eval()(**batch).logits).abs().max().item()
print(json.dumps({"diff": diff}))
"""


def test_hub_export_keeps_the_adapter_when_its_base_is_a_hub_id(trained, tmp_path):
    """A run on a Hub model (here from a local Hugging Face cache, offline): the upload folder
    holds the adapter naming that id, which peft loads onto the same weights."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT),
           "HF_HUB_CACHE": str(hub_cache(tmp_path / "hf", "tiny-org/tiny-llama", trained.lm))}
    done = subprocess.run([sys.executable, "-c", HUB_RUN, trained.support, str(trained.store),
                           str(tmp_path)], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["diff"] < 1e-5
    out = tmp_path / "hub"
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "run.json",
            "tokenizer.json"} <= names and "model.safetensors" not in names
    assert not [n for n in names if TRAINING_STATE.search(n)]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "tiny-org/tiny-llama"
    meta = front_matter(out / "README.md")
    assert meta["base_model"] == "tiny-org/tiny-llama" and meta["library_name"] == "peft"


# --- onnx --------------------------------------------------------------------------------------

@pytest.mark.parametrize("run", ["classifier", "sft"])
def test_onnx_export_matches_torch(trained, exported, run):
    import onnx
    import onnxruntime

    out = exported(run, "onnx")
    assert {"model.onnx", "config.json", "tokenizer.json", "parity.json"} <= {
        p.name for p in out.iterdir()}
    onnx.checker.check_model(str(out / "model.onnx"))
    parity = json.loads((out / "parity.json").read_text())
    assert parity["rows"] >= 2 and len(parity["split_rows"]) == parity["rows"]
    assert parity["bound"] == pytest.approx(PARITY_RELATIVE * max(1, parity["largest_logit"]))
    assert 0 <= parity["max_abs_logit_diff"] <= parity["bound"]
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert all(isinstance(d, str) for i in session.get_inputs() for d in i.shape)  # dynamic
    # another batch than the export saw and checked: 5 train rows, right-padded
    model, tokenizer, _ = load_merged(open_run(getattr(trained, run)))
    texts = [r["text"] if "text" in r else r["prompt"] for r in
             open_run(getattr(trained, run)).version.data["train"].select(range(5))]
    batch = tokenizer(texts, return_tensors="np", padding=True, truncation=True, max_length=64)
    feeds = {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}
    got = session.run(["logits"], feeds)[0]
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    keep = feeds["attention_mask"] == 1 if run == "sft" else slice(None)
    np.testing.assert_allclose(got[keep], want[keep], atol=1e-4)


def test_parity_check_fails_when_model_and_onnx_disagree(trained, exported):
    run = open_run(trained.classifier)
    onnx_path = exported("classifier", "onnx") / "model.onnx"
    model, _, predictor = load_merged(run)
    batch = parity_batch(predictor, run.version.data["test"].to_list())
    assert check_parity(model, onnx_path, batch, causal=False).ok
    with torch.no_grad():
        model.score.weight.add_(0.05 * torch.randn_like(model.score.weight))
    with pytest.raises(TrainError, match="the ONNX model disagrees with torch"):
        check_parity(model, onnx_path, batch, causal=False)


def test_a_failed_parity_check_leaves_no_export(trained, tmp_path, monkeypatch):
    import train.export

    monkeypatch.setattr(train.export, "PARITY_RELATIVE", -1.0)  # no difference passes
    with pytest.raises(TrainError, match="disagrees"):
        export_run(open_run(trained.classifier), "onnx", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


# --- the command and its one-line errors ----------------------------------------------------

def train_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_cli_prints_the_export_folder_last(trained, tmp_path):
    out = tmp_path / "merged"
    done = train_cli("export", str(trained.sft_labels), "--format", "merged", "--output",
                     str(out), "--store", str(trained.store))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(out)
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["RUN", "--format", "tflite"], "unknown export format 'tflite' (use one of: merged, hub, "
                                    "onnx)"),
    (["NOWHERE", "--format", "onnx"], "no such run directory"),
    (["STORE", "--format", "merged"], "not a run directory (no run.json"),
])
def test_errors_are_one_line(trained, tmp_path, train_main, args, message):
    places = {"RUN": str(trained.sft), "NOWHERE": str(tmp_path / "nowhere"),
              "STORE": str(trained.store)}
    done = train_main("export", *[places.get(a, a) for a in args], "--output",
                      str(tmp_path / "out"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert not (tmp_path / "out").exists()


def test_an_existing_output_is_not_overwritten(trained, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(TrainError, match="already exists: remove it or give another --output"):
        export_run(open_run(trained.sft), "merged", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


# --- the built-in models ------------------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_run_opens_with_autopeft_and_pipeline(trained_real):
    from peft import AutoPeftModelForCausalLM
    from transformers import pipeline

    run = trained_real.smollm2
    base = Path(json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"])
    assert base.parent == model_cache_root() and (base / "config.json").is_file()
    assert not list(base.glob("*.gguf"))
    model, tokenizer = load_run(run)
    want = logits(model, tokenizer)
    np.testing.assert_allclose(logits(AutoPeftModelForCausalLM.from_pretrained(str(run)),
                                      tokenizer), want, atol=1e-4)
    pipe = pipeline("text-generation", model=str(run))
    [out] = pipe([{"role": "user", "content": "My router drops the connection."}],
                 max_new_tokens=8, do_sample=False)
    assert out["generated_text"][-1]["role"] == "assistant"
    assert out["generated_text"][-1]["content"].strip()
    meta = front_matter(run / "README.md")
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["license"] == "apache-2.0" and meta["library_name"] == "peft"
    minilm = front_matter(trained_real.minilm / "README.md")
    assert minilm["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm["library_name"] == "transformers"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_onnx_export_of_the_builtin_models(trained_real, tmp_path, capsys, name):
    out = export_run(open_run(getattr(trained_real, name)), "onnx", tmp_path / "onnx")
    parity = json.loads((out / "parity.json").read_text())
    rows = min(8, open_run(getattr(trained_real, name)).version.counts["splits"]["test"])
    assert parity["rows"] == rows and parity["max_abs_logit_diff"] <= parity["bound"]
    assert f"ONNX parity on {rows} test rows: max |logit difference|" in capsys.readouterr().out
