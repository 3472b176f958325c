"""The run's settings, declared once: `TrainConfig`'s fields are the command-line flags (`cli.py`
generates its options from them: name, type, help, flag form), the keys of a YAML `--config`
file, and what `run.json` stores. Method defaults, then the config file, then the flags given.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from common.yaml_files import read_settings

from .errors import TrainError, TrainUsageError

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

#: Arguments the schedules that decay to a floor need (10% of the peak learning rate).
SCHEDULER_KWARGS: dict[str, dict[str, Any]] = {"cosine_with_min_lr": {"min_lr_rate": 0.1},
                                               "cosine_warmup_with_min_lr": {"min_lr_rate": 0.1}}

#: The flag form of the one positional setting.
ARGUMENT = "argument"

#: Devices a run can name: torch's device strings for the backends training supports.
DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
#: The largest seed numpy's generators (which transformers' `set_seed` seeds) accept.
MAX_SEED = 2**32 - 1


def setting(default: Any, help: str, flag: str | None = None, aka: tuple[str, ...] = (),
            **constraints: Any) -> Any:
    """A `TrainConfig` field with what the CLI and the config-file checks need of it: the help
    text, the flag form where it is not `--field-name` (`ARGUMENT` for the positional dataset,
    `--packing/--no-packing` for a flag that can be switched off), and `aka`, names people
    carry over from transformers' `TrainingArguments`, which an unknown config key is matched
    against to say which key was meant."""
    return Field(default, description=help, json_schema_extra={"flag": flag, "aka": list(aka)},
                 **constraints)


class TrainConfig(BaseModel):
    """Every setting of a run. A bool without a flag form is an on-switch (`--merge`)."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = setting(..., "Dataset version: NAME@VERSION or NAME@latest.", flag=ARGUMENT,
                           min_length=1)
    model: str = setting(..., "Hub id, local directory, or built-in: smollm2-135m-instruct, "
                              "minilm-l6.", aka=("model_name_or_path", "base_model"),
                         min_length=1)
    method: str = setting("lora", "lora, full or classifier.")
    output: str | None = setting(None, "Run directory (default runs/<name>-<version>-<time>/).",
                                 aka=("output_dir",), min_length=1)
    store: str | None = setting(None, "Dataset store (default $DATAPREP_STORE or ./store).",
                                min_length=1)
    epochs: float | None = setting(None, "Passes over the train split (default 3).",
                                   aka=("num_train_epochs",), gt=0, allow_inf_nan=False)
    max_steps: int = setting(-1, "Stop after this many optimizer steps (-1: run the epochs).",
                             ge=-1)
    lr: float | None = setting(None, "Learning rate (default by method: LoRA 2e-4, full 2e-5, "
                                     "classifier by model size).", aka=("learning_rate",),
                               gt=0, allow_inf_nan=False)
    batch_size: int | None = setting(None, "Examples per device and step (default 16, "
                                           "classifier 32).",
                                     aka=("per_device_train_batch_size", "train_batch_size"),
                                     ge=1)
    grad_accum: int = setting(1, "Gradient accumulation steps.",
                              aka=("gradient_accumulation_steps",), ge=1)
    max_length: int | None = setting(None, "Tokens per example (default 512, classifier 64).",
                                     aka=("max_seq_length", "model_max_length"), ge=1)
    lora_r: int | None = setting(None, "LoRA rank; 0 trains every weight (default 16; "
                                       "classifier by model size).", aka=("r", "lora_rank"),
                                 ge=0)
    lora_alpha: int = setting(32, "LoRA alpha (the adapter's scale is alpha / r).", ge=1)
    lora_dropout: float = setting(0.05, "Dropout on the LoRA layers' input.", ge=0, lt=1)
    target_modules: list[str] = setting(["all-linear"], "Comma-separated module names, or "
                                                        "all-linear.", min_length=1)
    eval_steps: int | None = setting(None, "Steps between evaluations and checkpoints "
                                           "(default twice an epoch).", ge=1)
    early_stopping_patience: int | None = setting(3, "Evaluations without improvement before "
                                                     "training stops (0: no early stopping).",
                                                  ge=0)
    seed: int = setting(42, "Seed of the weights' initialisation and the data order.", ge=0,
                        le=MAX_SEED)
    resume: bool = setting(False, "Continue the newest run of this version from its last "
                                  "checkpoint.", aka=("resume_from_checkpoint",))
    merge: bool = setting(False, "Also write the adapter merged into the weights (merged/).")
    packing: bool | None = setting(None, "Padding-free packing (default: where the attention "
                                         "supports it).", flag="--packing/--no-packing")
    gradient_checkpointing: bool | None = setting(
        None, "Recompute activations in the backward pass (less memory, slower; default: on "
              "for SFT on a CPU, off otherwise).",
        flag="--gradient-checkpointing/--no-gradient-checkpointing")
    trust_remote_code: bool = setting(False, "Run code that ships with the model.")
    warmup_ratio: float = setting(0.05, "Share of the optimizer steps that warm the learning "
                                        "rate up.", ge=0, lt=1, allow_inf_nan=False)
    weight_decay: float = setting(0.0, "AdamW weight decay.", ge=0, allow_inf_nan=False)
    device: str = setting("auto", "auto (the GPU when there is one), cpu, cuda, cuda:N or mps.")
    freeze_layers: int | None = setting(None, "Freeze the embeddings and the first N transformer "
                                              "blocks (with LoRA: the adapter goes on the other "
                                              "blocks only).", ge=0)
    train_top_layers: int | None = setting(None, "Train only the last K transformer blocks and "
                                                 "what sits above them (norm, pooler, head).",
                                           ge=0)
    dropout: float | None = setting(None, "Dropout of the model's layers and classifier head, "
                                          "wherever its config has a setting for it (default: "
                                          "the model's own).", aka=("hidden_dropout_prob",),
                                    ge=0, lt=1)
    lr_scheduler: str = setting("cosine", "Learning-rate schedule after the warm-up: a "
                                          "transformers SchedulerType (linear, cosine, "
                                          "constant, ...).", aka=("lr_scheduler_type",))
    report_to: str = setting("none", "Experiment tracking, offline, in the run directory: "
                                     "tensorboard, wandb, mlflow or none.")
    load_in_8bit: bool = setting(False, "Load the base weights in 8 bits under a LoRA adapter "
                                        "(bitsandbytes, CUDA only).")
    load_in_4bit: bool = setting(False, "QLoRA: base weights in 4-bit NF4, double quantized, "
                                        "bf16 compute (bitsandbytes, CUDA only).")
    folds: int | None = setting(None, "K-fold cross-validation over train + validation "
                                      "(classifier): K runs, out-of-fold predictions and the "
                                      "rows whose label is likely wrong.", ge=2)
    max_tokens_per_batch: int | None = setting(
        None, "Packed training: fill each batch with rows up to this many tokens (replaces "
              "--batch-size for training; a longer row is a batch alone).", ge=1)
    liger: bool = setting(False, "Liger kernels (fused linear cross-entropy and more; CUDA, "
                                 "needs liger-kernel).", aka=("use_liger_kernel",))
    torch_compile: bool = setting(False, "Compile the model with torch.compile.")

    @field_validator("target_modules", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """`--target-modules q_proj,v_proj` and a config file's list mean the same."""
        if isinstance(value, str):
            return [m.strip() for m in value.split(",") if m.strip()]
        return value

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHODS:
            raise PydanticCustomError("choice", f"use one of: {', '.join(METHODS)}")
        return value

    @field_validator("max_steps")
    @classmethod
    def _steps_or_epochs(cls, value: int) -> int:
        """0 steps would save an untrained model as if it were a run."""
        if value == 0:
            raise PydanticCustomError("choice", "use -1 (run the epochs) or at least 1")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        """The form only; whether this machine has the device is `check_device`'s question."""
        if not DEVICE.fullmatch(value):
            raise PydanticCustomError("choice", "use auto, cpu, cuda, cuda:N or mps")
        return value

    @field_validator("lr_scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        """transformers' own list of schedules (imported only when one is named)."""
        from transformers.trainer_utils import SchedulerType

        names = [s.value for s in SchedulerType]
        if value not in names:
            raise PydanticCustomError("choice", f"use one of: {', '.join(names)}")
        return value

    @field_validator("report_to")
    @classmethod
    def _known_tracker(cls, value: str) -> str:
        from .tracking import TRACKERS

        if value not in TRACKERS:
            raise PydanticCustomError("choice", f"use one of: {', '.join(TRACKERS)}")
        return value

    @model_validator(mode="after")
    def _one_way_each(self) -> TrainConfig:
        """Flags that contradict each other (a one-line error, not pydantic's report)."""
        if self.freeze_layers is not None and self.train_top_layers is not None:
            raise TrainError("--freeze-layers and --train-top-layers say the same thing two "
                             "ways: give one of them")
        if self.load_in_4bit and self.load_in_8bit:
            raise TrainError("--load-in-4bit and --load-in-8bit: give one of them")
        quantized = "--load-in-4bit" if self.load_in_4bit else "--load-in-8bit"
        if (self.load_in_4bit or self.load_in_8bit) and (self.method == "full"
                                                         or self.lora_r == 0):
            raise TrainError(f"{quantized}: quantized weights cannot be fully trained; train a "
                             "LoRA adapter on them (--method lora, or classifier with --lora-r "
                             "of at least 1)")
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


def classifier_plan(cfg: TrainConfig, n_params: int) -> TrainConfig:
    """Fill in the classifier's adapter rank (0 = full fine-tuning) and learning rate."""
    if cfg.lora_r is None:
        cfg.lora_r = 0 if n_params < FULL_CLASSIFIER_MAX_PARAMS else 16
    if cfg.lr is None:
        cfg.lr = 5e-5 if cfg.lora_r == 0 else 5e-4
    return cfg


def _meant(key: str) -> str:
    """' (did you mean 'lr'?)' for a near-miss or a transformers name, else the known keys."""
    names = {name: name for name in TrainConfig.model_fields}
    for name, info in TrainConfig.model_fields.items():
        names |= {alias: name for alias in (info.json_schema_extra or {}).get("aka", [])}
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f" (did you mean {names[close[0]]!r}?)"
    return f" (known keys: {', '.join(TrainConfig.model_fields)})"


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """The YAML file's keys (the flags' names, with - or _); a key left empty is not given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"{path}: config file not found")
    data = read_settings(path, "config file", TrainError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise TrainError(f"{path}: a config file must be a mapping of keys to values, not "
                         f"a {type(data).__name__}")
    data = {str(k).replace("-", "_"): v for k, v in data.items() if v is not None}
    for key in data:
        if key not in TrainConfig.model_fields:
            raise TrainError(f"{path}: unknown key {shown(key)}{_meant(key)}")
    return data


def shown(value: Any, limit: int = 80) -> str:
    """A value as a message quotes it: its repr (escapes, no raw control characters), cut."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


#: How pydantic's error types read in a one-line message.
PROBLEMS = {"float_parsing": "is not a number", "float_type": "is not a number",
            "int_parsing": "is not a whole number", "int_type": "is not a whole number",
            "int_from_float": "is not a whole number", "bool_parsing": "is not true or false",
            "bool_type": "is not true or false", "string_type": "is not a string",
            "list_type": "is not a list", "finite_number": "is not a finite number"}


def _invalid(exc: ValidationError, merged: dict[str, Any], origin: dict[str, str]) -> TrainError:
    """The first problem as `config.yaml: epochs: 'three' is not a number` (exit 1), or as
    `--epochs: ...` for a value that came from a flag (a usage error, exit 2)."""
    error = exc.errors()[0]
    key = str(error["loc"][0]) if error["loc"] else ""
    problem = PROBLEMS.get(error["type"]) or f"is invalid ({error['msg'].lower()})"
    value = shown(merged.get(key, error["input"]))
    if key in origin:
        return TrainError(f"{origin[key]}: {key}: {value} {problem}")
    return TrainUsageError(f"--{key.replace('_', '-')}: {value} {problem}")


def check_device(device: str) -> None:
    """A device the run names must be there: asked for CUDA on a machine without it, training
    would otherwise run on the CPU and exit 0 as if nothing were wrong."""
    if device in ("auto", "cpu"):
        return
    import torch  # only for a named GPU

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise TrainError("--device mps: torch sees no MPS (Apple GPU) device here; use "
                             "--device auto or cpu")
        return
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= count:
        seen = f"{count} CUDA device{'s' * (count != 1)}" if count else "no CUDA GPU"
        raise TrainError(f"--device {device}: torch sees {seen} here; use --device auto or cpu")


def resolve_config(flags: dict[str, Any], config_file: str | Path | None = None) -> TrainConfig:
    """Method defaults < config file < flags given on the command line (None = not given).
    Everything is checked here, before any data or model is touched or any directory made."""
    from_file = load_config_file(config_file)
    given = {k: v for k, v in flags.items() if v is not None}
    for key in given:
        if key not in TrainConfig.model_fields:
            raise TrainError(f"unknown setting {key!r}{_meant(key)}")
    merged = {**from_file, **given}
    if not merged.get("dataset"):
        raise TrainUsageError("missing the dataset version (NAME@VERSION): give it on the "
                              "command line or as `dataset:` in --config")
    if not merged.get("model"):
        raise TrainUsageError("missing --model: give it on the command line or as `model:` in "
                              "--config")
    try:
        cfg = TrainConfig.model_validate(merged)
    except ValidationError as exc:
        origin = {k: str(config_file) for k in from_file if k not in given}
        raise _invalid(exc, merged, origin) from None
    for key, value in METHOD_DEFAULTS[cfg.method].items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    if cfg.method == "lora" and cfg.lora_r < 1:
        raise TrainError("--method lora needs --lora-r of at least 1 (use --method full)")
    check_device(cfg.device)
    return cfg
