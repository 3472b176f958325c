"""`train NAME@VERSION --model M [--method lora|full|classifier] ...`: fine-tune on a version;
`train predict|evaluate|report|serve|export runs/<run> ...` use the run (`commands.py`).

The command's options are generated from `TrainConfig`'s fields (name, type, help text, flag
form), so a setting is declared once; `--config FILE` is the only option of the CLI's own. A
flag left off is None, so it does not override the config file (see `resolve_config`).
"""

from __future__ import annotations

import inspect
import os
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import typer

from common.errors import run_command

from .config import ARGUMENT, TrainConfig, resolve_config

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def value_type(annotation: Any) -> type:
    """What click parses a flag as: the field's type without None; a list comma-separated."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return str if typing.get_origin(annotation) is list else annotation


def help_text(info) -> str:
    """The field's help, with its default where the flag's own default (None) cannot show it."""
    default = info.default
    if info.is_required() or default is None or isinstance(default, bool):
        return info.description
    shown = ",".join(default) if isinstance(default, list) else default
    return f"{info.description} (default {shown})"


def parameter(name: str, info) -> inspect.Parameter:
    """The typer parameter of one `TrainConfig` field."""
    kind, flag = value_type(info.annotation), info.json_schema_extra["flag"]
    if flag == ARGUMENT:
        annotation: Any = Annotated[kind | None, typer.Argument(help=info.description,
                                                                show_default=False)]
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                 annotation=annotation)
    flag = flag or "--" + name.replace("_", "-")
    on_switch = kind is bool and "/" not in flag
    option = typer.Option(flag, help=help_text(info), show_default=False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                             default=False if on_switch else None,
                             annotation=Annotated[bool if on_switch else kind | None, option])


PARAMETERS = [parameter(name, info) for name, info in TrainConfig.model_fields.items()]
#: Flags that can only be switched on: off (False) means not given.
ON_SWITCHES = {p.name for p in PARAMETERS if p.default is False}
CONFIG = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                           annotation=Annotated[Path | None, typer.Option(
                               help="YAML file with the same keys; flags given win.")])


def train(**flags: Any) -> None:
    """Fine-tune a model on a dataset version and write adapter/model, metrics and a card.

    Then use the run: train predict|evaluate|report|serve|export RUN --help."""
    config = flags.pop("config")
    cfg = resolve_config({k: None if k in ON_SWITCHES and not v else v
                          for k, v in flags.items()}, config)
    from .runner import run_training  # torch and transformers: only once the settings hold

    result = run_training(cfg)
    if os.environ.get("RANK", "0") != "0":
        return
    if result.summary:
        print(result.summary)
        return
    test = result.metrics.get("test", {})
    summary = ", ".join(f"{k} {v:.4f}" for k, v in test.items()
                        if k in ("loss", "perplexity", "accuracy", "macro_f1")
                        and isinstance(v, float))
    print(f"{cfg.method} on {result.dataset}: test {summary or 'not evaluated'}; "
          f"written to {result.output}")


train.__signature__ = inspect.Signature([*PARAMETERS, CONFIG])  # type: ignore[attr-defined]
train.__annotations__ = {p.name: p.annotation for p in (*PARAMETERS, CONFIG)}
app.command()(train)


def main() -> None:
    """A first argument naming a subcommand runs it; anything else trains."""
    from .commands import SUBCOMMANDS
    from .commands import app as commands

    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        run_command(commands)
    else:
        run_command(app)
