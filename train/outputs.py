"""What a finished run leaves: `run.json`, `metrics.json` and a model card `README.md` that names
the dataset version the model was trained on, with its report's headline counts."""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

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


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_card(directory: Path, cfg: TrainConfig, version: Version, metrics: dict[str, Any],
               saved: str) -> None:
    counts = version.counts
    splits = counts["splits"]
    rows = "\n".join(f"| {split} | {name} | {_fmt(v)} |" for split, values in metrics.items()
                     if isinstance(values, dict) for name, v in values.items())
    adapter = (f", LoRA r={cfg.lora_r} alpha={cfg.lora_alpha}" if cfg.lora_r
               else ", every weight trained")
    card = f"""---
library_name: {"peft" if cfg.lora_r else "transformers"}
base_model: {cfg.model}
tags: [dataprep-train, {cfg.method}]
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
{cfg.seed}{adapter}.
The full resolved configuration and package versions are in `run.json`.

## Use it

```python
from train.load import load_run
model, tokenizer = load_run("{directory}")
```

## Metrics

| split | metric | value |
| --- | --- | --- |
{rows}
"""
    (directory / "README.md").write_text(card, encoding="utf-8")
