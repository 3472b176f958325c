"""What a hyperparameter search varies: a default space per method, or a YAML file of
`{param: {type: float|int|categorical, low, high, log, step, choices}}`, checked before any
training (an unknown key, an empty range, a bad type: one-line errors naming the file and key).

A parameter is any `TrainConfig` field except the ones fixed for the whole search: the version
is tokenized and the base model loaded once per process (`recipes.*.prepare`), so the model, the
method, `max_length` and what decides packing cannot change from trial to trial.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from common.yaml_files import read_settings

from .config import PROBLEMS, TrainConfig, _meant
from .errors import TrainError

TYPES = ("float", "int", "categorical")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
#: Settings of the whole search, never of one trial (see the module doc).
FIXED = {"dataset": "the version is tokenized once", "model": "the model is loaded once",
         "method": "the method decides the model and the metric",
         "max_length": "the version is tokenized once", "packing": "it is decided once",
         "trust_remote_code": "the model is loaded once", "store": "the version is opened once",
         "output": "each trial has its own directory", "resume": "the search resumes by trials",
         "device": "the model is loaded once"}


@dataclass
class Param:
    """One searched setting, in the shape optuna's `suggest_*` take."""

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.type == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid(self) -> list[Any]:
        """Every value a grid search tries: the choices, or low..high by step (high included
        where the steps land on it)."""
        if self.type == "categorical":
            return list(self.choices)
        if self.step is None:
            raise TrainError(f"--sampler grid: {self.name} has neither choices nor a step; "
                             "give each parameter of --space one of them")
        n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(n)]
        return [int(v) for v in values] if self.type == "int" else [round(v, 12) for v in values]

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items()
                if k != "name" and v is not None and v is not False}


def suggest(trial, space: dict[str, Param]) -> dict[str, Any]:
    """One trial's settings, drawn by the study's sampler."""
    return {name: param.suggest(trial) for name, param in space.items()}


def grid_of(space: dict[str, Param]) -> dict[str, list[Any]]:
    return {name: param.grid() for name, param in space.items()}


def _lora(method: str, uses_adapter: bool) -> dict[str, Param]:
    if method == "full" or not uses_adapter:
        return {}
    return {"lora_r": Param("lora_r", "categorical", choices=[4, 8, 16, 32]),
            "lora_alpha": Param("lora_alpha", "categorical", choices=[8, 16, 32, 64]),
            "lora_dropout": Param("lora_dropout", "float", 0.0, 0.2)}


#: Learning-rate ranges around each method's default (config.METHOD_DEFAULTS and
#: classifier_plan): a decade either side, log-uniform.
LR_RANGES = {"lora": (2e-5, 2e-3), "full": (2e-6, 2e-4), "classifier": (5e-6, 5e-4),
             "classifier-adapter": (5e-5, 5e-3)}


def default_space(cfg: TrainConfig, given: set[str], uses_adapter: bool) -> dict[str, Param]:
    """The method's space, less the settings the user fixed with a flag or `--config`.
    `uses_adapter`: whether the model trains a LoRA adapter (a large classifier does)."""
    lr_key = "classifier-adapter" if cfg.method == "classifier" and uses_adapter else cfg.method
    low, high = LR_RANGES[lr_key]
    space = {"lr": Param("lr", "float", low, high, log=True),
             "batch_size": Param("batch_size", "categorical", choices=[8, 16, 32]),
             "epochs": Param("epochs", "float", 1.0, 5.0, step=1.0),
             **_lora(cfg.method, uses_adapter),
             "weight_decay": Param("weight_decay", "float", 0.0, 0.1),
             "warmup_ratio": Param("warmup_ratio", "float", 0.0, 0.2)}
    if "dropout" in TrainConfig.model_fields:  # the model's own dropout, where train has it
        space["dropout"] = Param("dropout", "float", 0.0, 0.3)
    if cfg.max_steps > 0:  # epochs do nothing when the steps are fixed
        space.pop("epochs")
    return {name: p for name, p in space.items() if name not in given}


def _field_kind(name: str) -> type:
    from .cli import value_type

    return value_type(TrainConfig.model_fields[name].annotation)


def _check_value(where: str, cfg: TrainConfig, name: str, what: str, value: Any) -> None:
    """A bound or choice must be a value the setting itself accepts (`warmup_ratio: 1.5` is
    not), checked by the one validation a run's settings go through."""
    try:
        TrainConfig.model_validate({**cfg.as_dict(), name: value})
    except ValidationError as exc:
        error = exc.errors()[0]
        problem = PROBLEMS.get(error["type"]) or f"is invalid ({error['msg'].lower()})"
        raise TrainError(f"{where}: {name}: {what} {value!r} {problem}") from None
    if name == "lora_r" and cfg.method == "lora" and isinstance(value, int) and value < 1:
        raise TrainError(f"{where}: lora_r: {what} {value} is below 1 (--method lora needs an "
                         "adapter; use --method full)")


def _number(where: str, name: str, key: str, value: Any) -> float:
    """A number, also from YAML 1.1's reading of `1e-5` (a string: it wants `1.0e-5`)."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # not a number: said just below
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainError(f"{where}: {name}: {key} {value!r} is not a number")
    return value


def parse_param(where: str, name: str, spec: Any, cfg: TrainConfig) -> Param:
    """One entry of a space file, checked; `where` names the file in the messages."""
    if name not in TrainConfig.model_fields:
        raise TrainError(f"{where}: unknown setting {name!r}{_meant(name)}")
    if name in FIXED:
        raise TrainError(f"{where}: {name} cannot be searched ({FIXED[name]}); give it as a "
                         "flag instead")
    if not isinstance(spec, dict):
        raise TrainError(f"{where}: {name}: give a mapping with type and low/high or choices")
    unknown = [k for k in spec if k not in PARAM_KEYS]
    if unknown:
        raise TrainError(f"{where}: {name}: unknown key {unknown[0]!r} (use: "
                         f"{', '.join(PARAM_KEYS)})")
    kind = spec.get("type", "categorical" if "choices" in spec else None)
    if kind not in TYPES:
        raise TrainError(f"{where}: {name}: type {kind!r} is not one of {', '.join(TYPES)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise TrainError(f"{where}: {name}: a categorical parameter needs a non-empty list "
                             "of choices")
        if _field_kind(name) is float:
            choices = [_number(where, name, "choice", c) for c in choices]
        for choice in choices:
            _check_value(where, cfg, name, "choice", choice)
        return Param(name, kind, choices=choices)
    field = _field_kind(name)
    if field not in (int, float):
        raise TrainError(f"{where}: {name} is not a number setting: use type categorical")
    if kind == "float" and field is int:
        raise TrainError(f"{where}: {name} is a whole number: use type int (or categorical)")
    for key in ("low", "high"):
        if key not in spec:
            raise TrainError(f"{where}: {name}: type {kind} needs low and high")
    low, high = (_number(where, name, k, spec[k]) for k in ("low", "high"))
    step = None if spec.get("step") is None else _number(where, name, "step", spec["step"])
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise TrainError(f"{where}: {name}: log {log!r} is not true or false")
    if low >= high:
        raise TrainError(f"{where}: {name}: empty range (low {low} is not below high {high})")
    if step is not None and (step <= 0 or log):
        raise TrainError(f"{where}: {name}: step {step} " + (
            "cannot go with log: true" if log else "must be above 0"))
    if log and low <= 0:
        raise TrainError(f"{where}: {name}: log: true needs low above 0 (it is {low})")
    if kind == "int" and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise TrainError(f"{where}: {name}: type int needs whole-number low, high and step")
    _check_value(where, cfg, name, "low", int(low) if kind == "int" else float(low))
    _check_value(where, cfg, name, "high", int(high) if kind == "int" else float(high))
    return Param(name, kind, float(low), float(high), log, None if step is None else float(step))


def load_space(path: str | Path, cfg: TrainConfig, given: set[str]) -> dict[str, Param]:
    """The space file's parameters; a setting both fixed (flag / `--config`) and searched is
    an error, because which of the two wins would be a guess."""
    path = Path(path)
    if not path.is_file():
        raise TrainError(f"{path}: search space file not found")
    data = read_settings(path, "search space file", TrainError)
    if not isinstance(data, dict) or not data:
        raise TrainError(f"{path}: a search space is a mapping of settings to their ranges")
    space = {}
    for key, spec in data.items():
        name = str(key).replace("-", "_")
        space[name] = parse_param(str(path), name, spec, cfg)
        if name in given:
            raise TrainError(f"{path}: {name} is both fixed (flag or --config) and searched; "
                             "drop one")
    return space


def space_from_dicts(data: dict[str, dict[str, Any]]) -> dict[str, Param]:
    """A space as `search.json` stores it (`Param.as_dict`), back into parameters."""
    return {name: Param(name, **spec) for name, spec in data.items()}
