"""The run's settings: method defaults, then a YAML `--config` file, then command-line flags.

One flat dataclass whose field names are the CLI flags and the YAML keys, so a config file is just
the flags written down; `run.json` stores the resolved result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dataprep.errors import DataprepError

METHODS = ("lora", "full", "classifier")

#: What a method uses where neither the config file nor a flag says otherwise. Classifier values
#: match the plain `Trainer` recipe the issue measures against (max length 64 suits short
#: reviews; batch 32); its learning rate and adapter are chosen by model size (see
#: `classifier_plan`). LoRA learning rates are the usual 10x of full fine-tuning.
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "lora": {"lr": 2e-4, "epochs": 3.0, "batch_size": 16, "max_length": 512, "lora_r": 16},
    "full": {"lr": 2e-5, "epochs": 3.0, "batch_size": 16, "max_length": 512, "lora_r": 0},
    "classifier": {"epochs": 3.0, "batch_size": 32, "max_length": 64},
}
#: A classifier on a model below this size trains every weight (cheap, and on all-MiniLM-L6-v2
#: it beat LoRA + head on Rotten Tomatoes: 0.842 vs a plain full fine-tune's 0.852, see
#: BENCHMARKS.md); a larger model gets a LoRA adapter and a fully trained head.
FULL_CLASSIFIER_MAX_PARAMS = 300_000_000


def classifier_plan(cfg: TrainConfig, n_params: int) -> TrainConfig:
    """Fill in the classifier's adapter rank (0 = full fine-tuning) and learning rate."""
    if cfg.lora_r is None:
        cfg.lora_r = 0 if n_params < FULL_CLASSIFIER_MAX_PARAMS else 16
    if cfg.lr is None:
        cfg.lr = 5e-5 if cfg.lora_r == 0 else 5e-4
    return cfg


@dataclass
class TrainConfig:
    dataset: str
    model: str
    method: str = "lora"
    output: str | None = None
    store: str | None = None
    epochs: float | None = None
    max_steps: int = -1
    lr: float | None = None
    batch_size: int | None = None
    grad_accum: int = 1
    max_length: int | None = None
    lora_r: int | None = None
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["all-linear"])
    eval_steps: int | None = None
    early_stopping_patience: int | None = 3
    seed: int = 42
    resume: bool = False
    merge: bool = False
    packing: bool | None = None
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_names() -> set[str]:
    return {f.name for f in dataclasses.fields(TrainConfig)}


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """The YAML file's keys (the same names as the flags, with - or _)."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise DataprepError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DataprepError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise DataprepError(f"{path}: a config file must be a mapping of keys to values")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    unknown = sorted(set(data) - field_names())
    if unknown:
        raise DataprepError(f"{path}: unknown key {unknown[0]!r} (allowed: "
                            f"{', '.join(sorted(field_names()))})")
    return data


def resolve_config(flags: dict[str, Any], config_file: str | Path | None = None) -> TrainConfig:
    """Method defaults < config file < flags given on the command line (None = not given)."""
    merged = {**load_config_file(config_file), **{k: v for k, v in flags.items() if v is not None}}
    for key in ("dataset", "model"):
        if not merged.get(key):
            raise DataprepError(f"missing {key}: give it on the command line or in --config")
    method = merged.get("method", "lora")
    if method not in METHODS:
        raise DataprepError(f"unknown method {method!r} (use one of: {', '.join(METHODS)})")
    for key, value in METHOD_DEFAULTS[method].items():
        if merged.get(key) is None:
            merged[key] = value
    if method == "lora" and merged["lora_r"] < 1:
        raise DataprepError("--method lora needs --lora-r of at least 1 (use --method full)")
    if isinstance(merged.get("target_modules"), str):
        merged["target_modules"] = [m.strip() for m in merged["target_modules"].split(",")]
    return TrainConfig(**merged)
