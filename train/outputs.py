"""What a finished run leaves: `run.json`, `metrics.json` and a model card `README.md` that names
the dataset version the model was trained on, with its report's headline counts.

The card's YAML front matter is the Hub's model-card metadata (`base_model`, `datasets`,
`pipeline_tag`, `library_name`, `license`, `tags`, the metrics as `model-index`), written by
`huggingface_hub.ModelCardData`, so the Hub and the tools that read it find what they expect.
Its loading snippets are the standard loaders on the folder's absolute path, which work from any
directory (`from train.load import ...` would not: a user's own `train.py` shadows the package).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.models import BUILTIN_MODELS, hub_id_of, license_of, model_cache_root
from dataprep.store import Version

from .checkpoints import RUN_FILE, identity
from .config import TrainConfig

PACKAGES = ("dataprep-train", "torch", "transformers", "peft", "accelerate", "datasets")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n",
                    encoding="utf-8")


def write_run(directory: Path, cfg: TrainConfig, version: Version, extra: dict[str, Any]) -> None:
    write_json(directory / RUN_FILE, {
        "identity": identity(cfg, version), "config": cfg.as_dict(),
        "dataset": {"name": version.ref.name, "version": version.ref.version,
                    "path": str(version.path), "kind": version.kind},
        "packages": package_versions(), **extra})


#: Metrics the card's `model-index` lists: metrics.json key -> (Hub metric type, name, args).
CARD_METRICS = {"loss": ("loss", "loss", None), "perplexity": ("perplexity", "perplexity", None),
                "accuracy": ("accuracy", "accuracy", None),
                "macro_f1": ("f1", "macro F1", {"average": "macro"})}
#: What a folder holds: a LoRA adapter (loaded on top of its base) or a model's full weights.
ADAPTER, FULL_WEIGHTS = "adapter", "full"


@dataclass
class CardFolder:
    """The folder a card describes, where it is not the run directory itself (an export)."""

    weights: str                 # ADAPTER or FULL_WEIGHTS
    name: str                    # the model-index name
    location: Path               # the folder's final path (the snippets' path)
    upload: bool = False         # a folder meant for the Hub: say how to upload it


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def pipeline_tag(method: str) -> str:
    return "text-classification" if method == "classifier" else "text-generation"


def card_metadata(cfg: TrainConfig, version: Version, metrics: dict[str, Any], weights: str,
                  name: str) -> str:
    """The card's front matter as YAML (the Hub's model-card metadata)."""
    from huggingface_hub import EvalResult, ModelCardData

    task = pipeline_tag(cfg.method)
    results = [EvalResult(task_type=task, task_name=task.replace("-", " ").capitalize(),
                          dataset_type=version.spec, dataset_split=split,
                          dataset_name=f"{version.ref.name} (dataprep version "
                                       f"{version.ref.version})",
                          metric_type=kind, metric_name=label, metric_args=args,
                          metric_value=float(values[key]))
               for split in ("validation", "test")
               if isinstance(values := metrics.get(split), dict)
               for key, (kind, label, args) in CARD_METRICS.items()
               if isinstance(values.get(key), int | float) and math.isfinite(values[key])]
    tags = ["dataprep-train", cfg.method, *(["lora"] if cfg.lora_r else [])]
    data = ModelCardData(base_model=hub_id_of(cfg.model), datasets=[version.spec],
                         pipeline_tag=task,
                         library_name="peft" if weights == ADAPTER else "transformers",
                         license=license_of(cfg.model), tags=tags, model_name=name,
                         eval_results=results or None)
    return data.to_yaml()


def _adapter_base(directory: Path) -> str | None:
    config = directory / "adapter_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("base_model_name_or_path")


def usage(cfg: TrainConfig, labels: list[str], folder: CardFolder, directory: Path) -> str:
    """How to load the folder: the standard loaders, then the console way."""
    weights, location = folder.weights, folder.location.resolve()
    where = json.dumps(str(location))
    if cfg.method == "classifier":
        auto, task = "AutoModelForSequenceClassification", "text-classification"
    else:
        auto, task = "AutoModelForCausalLM", "text-generation"
    if weights == FULL_WEIGHTS:
        code = f"""from transformers import {auto}, AutoTokenizer, pipeline

model = {auto}.from_pretrained({where})
tokenizer = AutoTokenizer.from_pretrained({where})
pipe = pipeline("{task}", model={where})"""
    elif cfg.method == "classifier":
        code = f"""from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer, pipeline

labels = {json.dumps(labels)}  # the head's classes, in index order
model = AutoPeftModelForSequenceClassification.from_pretrained(
    {where},
    num_labels=len(labels), id2label=dict(enumerate(labels)),
    label2id={{name: i for i, name in enumerate(labels)}})
tokenizer = AutoTokenizer.from_pretrained({where})
pipe = pipeline("{task}", model=model.merge_and_unload(), tokenizer=tokenizer)"""
    else:
        code = f"""from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer, pipeline

model = AutoPeftModelForCausalLM.from_pretrained({where})
tokenizer = AutoTokenizer.from_pretrained({where})
pipe = pipeline("{task}", model={where})  # transformers loads the base, then the adapter"""
    notes = []
    if weights == ADAPTER:
        base = _adapter_base(directory) or cfg.model
        notes.append(f"The adapter loads on top of its base model, `{base}` (the adapter "
                     "config's `base_model_name_or_path`).")
        if Path(base).is_relative_to(model_cache_root()):
            notes.append("That folder is the GGUF model dequantised once into the model cache "
                         "($DATAPREP_MODEL_CACHE); any `train` command on this run writes it "
                         "again if it is deleted.")
        if cfg.method == "classifier":
            notes.append("A classifier's adapter needs the number of labels and their names "
                         "(`num_labels`, `id2label`) to rebuild the head it was saved with.")
    if folder.upload:
        notes.append("Upload this folder as it is: `huggingface_hub.HfApi().upload_folder("
                     f"repo_id=\"OWNER/NAME\", folder_path={where})`; then load it by "
                     "`\"OWNER/NAME\"` in place of the path.")
    notes.append(f"From a shell, in any directory: `train predict {location}` (the `train` "
                 "command; `python -m train` would import a `train.py` of the current "
                 f"directory instead), and `train export {location} --format "
                 "merged|hub|onnx`.")
    return f"```python\n{code}\n```\n\n" + "\n".join(f"- {n}" for n in notes)


def trained_share(directory: Path) -> str:
    """The card's line on how much of the model trained, from the run's run.json (written
    before training; an export carries a copy): '' where there is none to read."""
    path = directory / RUN_FILE
    run = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    trainable, total = run.get("trainable_parameters"), run.get("total_parameters")
    if not isinstance(trainable, int) or not total:
        return ""
    line = (f"\nTrainable parameters: {trainable:,} of {total:,} "
            f"({100 * trainable / total:.2f}%)")
    frozen = run.get("freezing")
    if frozen:
        line += (f"; frozen: the embeddings and the first {frozen['frozen_blocks']} of "
                 f"{frozen['depth']} transformer blocks (`{frozen['blocks']}`)")
        if frozen.get("tied_head_frozen"):
            line += ", and with them the output head tied to the embeddings"
    return line + "."


def write_card(directory: Path, cfg: TrainConfig, version: Version, metrics: dict[str, Any],
               saved: str, folder: CardFolder | None = None) -> None:
    """README.md in `directory`, describing what it holds: by default the run itself (an adapter
    when it trained LoRA), else the export `folder` says."""
    folder = folder or CardFolder(ADAPTER if cfg.lora_r else FULL_WEIGHTS, directory.name,
                                  directory)
    counts = version.counts
    splits = counts["splits"]
    rows = "\n".join(f"| {split} | {key} | {_fmt(v)} |" for split, values in metrics.items()
                     if isinstance(values, dict) for key, v in values.items())
    adapter = (f", LoRA r={cfg.lora_r} alpha={cfg.lora_alpha}" if cfg.lora_r
               else ", every weight trained")
    labels = version.labels() if cfg.method == "classifier" else []
    builtin = BUILTIN_MODELS.get(cfg.model)
    if builtin is not None and builtin.gguf_file:
        adapter += (f".\nThe base weights are `{builtin.gguf_file}` from the `{builtin.package}` "
                    "package, dequantised to float32 (`base_model` names the model it "
                    "quantises)")
    front = card_metadata(cfg, version, metrics, folder.weights, folder.name)
    card = f"""---
{front.rstrip()}
---

# {version.ref.name} fine-tune of {cfg.model}

Trained with `train {version.spec} --model {cfg.model} --method {cfg.method}`: {saved}.

## Data: dataset version `{version.spec}`

- Store path: `{version.path}` ({version.kind} records; the data-quality report is
  `{version.report_html.name}` there).
- Input rows {counts["input"]}: rejected {counts["rejected"]}, filtered {counts["filtered"]},
  duplicates {counts["duplicates_exact"]} exact / {counts["duplicates_near"]} near, augmented
  (train only) {counts["augmented"]}.
- Splits: train {splits["train"]}, validation {splits["validation"]}, test {splits["test"]}.

## Training

Method `{cfg.method}`, {cfg.epochs} epochs (max steps {cfg.max_steps}), learning rate {cfg.lr},
batch {cfg.batch_size} x {cfg.grad_accum} accumulation, max length {cfg.max_length}, seed
{cfg.seed}{adapter}.{trained_share(directory)}
The full resolved configuration and package versions are in `run.json`.

## Use it

{usage(cfg, labels, folder, directory)}

## Metrics

| split | metric | value |
| --- | --- | --- |
{rows}
"""
    (directory / "README.md").write_text(card, encoding="utf-8")
