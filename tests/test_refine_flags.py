"""Refining flags on tiny config-built models: freezing (`--freeze-layers`, `--train-top-layers`),
the trainable-parameter count, `--dropout`, `--lr-scheduler`, `--report-to tensorboard`, and
quantized loading (`--load-in-4bit/8bit`: its errors here, its training on a GPU)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dataprep.pipeline import run_pipeline
from train.config import resolve_config
from train.errors import TrainError

from .conftest import FIXTURES
from .tiny_models import build_causal_lm, build_tokenizer


def build_bert(target: Path) -> Path:
    """A 2-layer BERT (MiniLM's architecture) with the fixture tokenizer."""
    from transformers import BertConfig, BertModel

    tokenizer = build_tokenizer(target)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id)
    BertModel(config).save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, Path | str]:
    root = tmp_path_factory.mktemp("refine")
    store = root / "store"
    chat = run_pipeline([FIXTURES / "support_chats.jsonl"], "support", None, store)
    reviews = run_pipeline([FIXTURES / "reviews.csv"], "reviews",
                           FIXTURES / "reviews.recipe.yaml", store)
    return {"root": root, "store": store, "lm": build_causal_lm(root / "lm", chat_template=True),
            "bert": build_bert(root / "bert"),
            "support": f"support@{chat.version}", "reviews": f"reviews@{reviews.version}"}


def config(ws, **kw):
    base = {"dataset": ws["support"], "model": str(ws["lm"]), "store": str(ws["store"]),
            "max_steps": 2, "batch_size": 4, "eval_steps": 2, "max_length": 128, "lr": 1e-3,
            "early_stopping_patience": 0}
    return resolve_config({**base, **kw})


def run_training(cfg) -> Path:
    """The run as `train` makes it (recipe, `fit`, outputs) without the error analysis after
    it, which generates answers and costs more than the tiny training itself."""
    from dataprep.store import open_version
    from train.loop import fit
    from train.recipes import classifier, sft

    version = open_version(cfg.dataset, cfg.store)
    recipe = classifier if cfg.method == "classifier" else sft
    fit(cfg, version, recipe.make_flow(cfg, recipe.prepare(cfg, version)), Path(cfg.output),
        analyse=False)
    return Path(cfg.output)


def weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def same(before, after, prefix: str) -> list[bool]:
    """For each tensor under `prefix`: is it unchanged?"""
    names = [n for n in before if n.startswith(prefix)]
    assert names, prefix
    return [torch.equal(before[n], after[n]) for n in names]


def run_info(out: Path) -> dict:
    return json.loads((out / "run.json").read_text())


# --- freezing -----------------------------------------------------------------------------------

def test_classifier_freezes_embeddings_and_bottom_blocks(workspace):
    """BERT, every weight trained but the embeddings (word, position, token type, their
    LayerNorm) and block 0: those are bit-for-bit the pretrained ones after training, block 1
    moved; the counts in run.json and the card are the saved model's own."""
    out = workspace["root"] / "runs" / "bert-frozen"
    run_training(config(workspace, dataset=workspace["reviews"], model=str(workspace["bert"]),
                        method="classifier", freeze_layers=1, dropout=0.2, output=str(out)))
    before = {f"bert.{k}": v for k, v in weights(workspace["bert"]).items()}
    after = weights(out)
    assert all(same(before, after, "bert.embeddings."))
    assert all(same(before, after, "bert.encoder.layer.0."))
    assert not any(same(before, after, "bert.encoder.layer.1.attention.self."))
    run = run_info(out)
    total = sum(t.numel() for t in after.values())
    frozen = sum(t.numel() for n, t in after.items()
                 if n.startswith(("bert.embeddings.", "bert.encoder.layer.0.")))
    assert run["total_parameters"] == total
    assert run["trainable_parameters"] == total - frozen
    assert run["freezing"] == {"blocks": "bert.encoder.layer", "depth": 2, "frozen_blocks": 1,
                               "embeddings_frozen": True, "tied_head_frozen": False}
    card = (out / "README.md").read_text()
    assert f"Trainable parameters: {total - frozen:,} of {total:,}" in card
    assert "first 1 of 2 transformer blocks (`bert.encoder.layer`)" in card
    # --dropout: every dropout setting BERT's config has, the classifier head's among them
    saved = json.loads((out / "config.json").read_text())
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
        assert saved[name] == 0.2, name


def test_full_fine_tune_of_the_top_block_with_schedule_and_tensorboard(workspace):
    """A causal LM whose head is tied to its embeddings: --train-top-layers 1 leaves both (one
    tensor) and block 0 as they were; the schedule named is the one Trainer ran, and the
    TensorBoard event files in the run directory hold the training loss."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = workspace["root"] / "runs" / "lm-top"
    run_training(config(workspace, method="full", train_top_layers=1, lr_scheduler="linear",
                        report_to="tensorboard", dropout=0.1, output=str(out)))
    before, after = weights(workspace["lm"]), weights(out)
    assert all(same(before, after, "model.embed_tokens."))
    assert all(same(before, after, "model.layers.0."))
    assert not any(same(before, after, "model.layers.1.self_attn."))
    assert not any(same(before, after, "model.norm."))
    run = run_info(out)
    assert run["freezing"]["frozen_blocks"] == 1 and run["freezing"]["tied_head_frozen"]
    assert json.loads((out / "config.json").read_text())["attention_dropout"] == 0.1
    args = torch.load(out / "checkpoint-2" / "training_args.bin", weights_only=False)
    assert args.lr_scheduler_type == "linear" and args.report_to == ["tensorboard"]
    [events] = {p.parent for p in (out / "runs").rglob("events.out.tfevents.*")}
    scalars = EventAccumulator(str(events)).Reload().Tags()["scalars"]
    assert "train/loss" in scalars, scalars


def test_plain_lora_run_reports_its_trainable_share(workspace, capfd):
    """Every run counts: here the adapter's weights (what it saved) of base + adapter."""
    from safetensors.torch import load_file

    out = workspace["root"] / "runs" / "lora"
    run_training(config(workspace, output=str(out)))
    run = run_info(out)
    assert "freezing" not in run and run["config"]["lr_scheduler"] == "cosine"
    trainable = sum(t.numel() for t in load_file(str(out / "adapter_model.safetensors")).values())
    total = sum(t.numel() for t in weights(workspace["lm"]).values()) + trainable
    assert (run["trainable_parameters"], run["total_parameters"]) == (trainable, total)
    line = f"({100 * trainable / total:.1f}%)"
    assert f"parameters {line}" in capfd.readouterr().err
    assert "Trainable parameters:" in (out / "README.md").read_text()


def test_freezing_with_lora_puts_the_adapter_on_the_top_blocks(workspace):
    from train.modeling import load_causal_lm, load_tokenizer, trainable_model

    cfg = config(workspace, train_top_layers=1)
    model = trainable_model(load_causal_lm(cfg, load_tokenizer(cfg)), cfg)
    adapted = {n.split(".layers.")[1].split(".")[0] for n, _ in model.named_parameters()
               if "lora_" in n}
    assert adapted == {"1"}
    cfg = config(workspace, freeze_layers=2)
    with pytest.raises(TrainError, match="leaves its LoRA adapter nowhere to go"):
        trainable_model(load_causal_lm(cfg, load_tokenizer(cfg)), cfg)


# --- one-line errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("given, message", [
    ({"freeze_layers": 1, "train_top_layers": 1}, "say the same thing two ways"),
    ({"freeze_layers": -1}, "--freeze-layers: -1 is invalid (input should be greater than"),
    ({"train_top_layers": -2}, "--train-top-layers: -2 is invalid"),
    ({"lr_scheduler": "cosinus"}, "--lr-scheduler: 'cosinus' is invalid (use one of: linear, "
                                  "cosine,"),
    ({"report_to": "comet"}, "use one of: tensorboard, wandb, mlflow, none"),
    ({"dropout": 1.0}, "--dropout: 1.0 is invalid"),
    ({"load_in_4bit": True, "load_in_8bit": True}, "give one of them"),
    ({"load_in_4bit": True, "method": "full"}, "quantized weights cannot be fully trained"),
    ({"load_in_8bit": True, "method": "classifier", "lora_r": 0}, "cannot be fully trained"),
])
def test_settings_that_contradict_are_one_line(given, message):
    with pytest.raises(TrainError) as raised:
        resolve_config({"dataset": "x@latest", "model": "m", **given})
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_cli_error_is_one_line_and_exit_1(workspace, train_main):
    done = train_main(workspace["support"], "--model", str(workspace["lm"]), "--store",
                      str(workspace["store"]), "--freeze-layers", "1", "--train-top-layers",
                      "1")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "say the same thing two ways" in lines[0], done.stderr


def test_model_errors_come_before_any_tokenizing(workspace, monkeypatch):
    """A depth the flags exceed, and 4 bits without CUDA, fail while loading the model (the
    recipes load it before they tokenize)."""
    from train.recipes import sft

    monkeypatch.setattr(sft, "tokenize_sft", lambda *a: pytest.fail("tokenized"))
    with pytest.raises(TrainError) as raised:
        run_training(config(workspace, method="full", freeze_layers=3))
    assert str(raised.value).endswith("has 2 transformer blocks (model.layers); use at most 2 "
                                      "(which trains only what sits above them: final norm, "
                                      "pooler, head)")
    with pytest.raises(TrainError, match="--train-top-layers 5: .* has 2 transformer blocks"):
        run_training(config(workspace, train_top_layers=5))
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="^--load-in-4bit needs a CUDA GPU"):
            run_training(config(workspace, load_in_4bit=True))


def test_missing_packages_are_named(workspace, monkeypatch, tmp_path):
    """bitsandbytes and the trackers are optional: their absence is one line naming the pip
    package (checked for real where the package is not installed)."""
    from train import quantize, tracking

    if importlib.util.find_spec("bitsandbytes") is None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        with pytest.raises(TrainError, match=r"needs the bitsandbytes package: pip install "
                                             r"bitsandbytes$"):
            quantize.quantization_kwargs(config(workspace, load_in_4bit=True))
    for tracker in ("wandb", "mlflow"):
        if importlib.util.find_spec(tracker) is None:
            with pytest.raises(TrainError, match=f"pip install {tracker}$"):
                tracking.report_to(tracker, tmp_path)


# --- quantized loading: on a GPU ----------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("bits", [4, 8])
def test_quantized_lora_trains_on_a_gpu(workspace, bits):
    """QLoRA on the tiny Llama: the base linear layers are bitsandbytes' quantized ones, only
    the adapter trains, and the run finishes with a finite loss."""
    import bitsandbytes as bnb

    from train.modeling import load_causal_lm, load_tokenizer, trainable_model

    flag = {f"load_in_{bits}bit": True}
    cfg = config(workspace, **flag)
    model = trainable_model(load_causal_lm(cfg, load_tokenizer(cfg)), cfg)
    layer = model.get_base_model().model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(layer, bnb.nn.Linear4bit if bits == 4 else bnb.nn.Linear8bitLt)
    assert all("lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    out = workspace["root"] / "runs" / f"qlora{bits}"
    run_training(config(workspace, output=str(out), max_steps=2, eval_steps=2, **flag))
    metrics = json.loads((out / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["loss"])
    run = run_info(out)
    assert 0 < run["trainable_parameters"] < run["total_parameters"]
