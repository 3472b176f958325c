"""`train NAME@VERSION --model M [--method lora|full|classifier] ...`: fine-tune on a version;
`train predict|evaluate|report|serve|export runs/<run> ...` use the run (`commands.py`).

The command's options are generated from `TrainConfig`'s fields (name, type, help text, flag
form), so a setting is declared once; `--config FILE`, `--json`, `--quiet` and `--version` are
the CLI's own. A flag left off is None, so it does not override the config file (see
`resolve_config`). Every setting is checked before any data or model is touched; a usage error
(an unknown, missing or out-of-range flag) is one line and exit 2, any other mistake one line
and exit 1.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import math
import os
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import Abort, TyperException

from common.errors import run_command

from .config import ARGUMENT, TrainConfig, resolve_config
from .errors import TrainUsageError

#: `-h` as well as `--help`, on the command and on every subcommand (click passes the setting
#: down to each subcommand's context).
CONTEXT = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=True, pretty_exceptions_enable=False,
                  context_settings=CONTEXT)


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


#: The two output switches of every command that prints a result (`train` and the commands on
#: a run share them).
AsJson = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document "
                                                    "on stdout, and nothing else there.")]
Quiet = Annotated[bool, typer.Option("--quiet", help="Print only the essential result (a path) "
                                                     "on stdout.")]


def result_only(as_json: bool, quiet: bool) -> contextlib.AbstractContextManager:
    """Where what a command prints on its way goes: with --json or --quiet, stdout holds the
    result alone, so everything printed before it (transformers' progress callback writes its
    logs to stdout) goes to stderr."""
    if as_json and quiet:
        raise TrainUsageError("--json and --quiet: give one of them")
    return contextlib.redirect_stdout(sys.stderr) if as_json or quiet else \
        contextlib.nullcontext()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dataprep-train")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def show_version(value: bool) -> None:
    if value:
        print(f"train {package_version()}")
        raise typer.Exit()


#: `--json` and `--quiet` as signature parameters: train's own, and `train search`'s.
OUTPUT_SWITCHES = [
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=AsJson),
    inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=Quiet),
]
OWN = [
    CONFIG,
    *OUTPUT_SWITCHES,
    inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, default=False,
                      annotation=Annotated[bool, typer.Option(
                          "--version", help="Print the version and exit.", is_eager=True,
                          callback=show_version)]),
]


def finite(value: Any) -> Any:
    """The value with NaN and infinities as null: `json.dumps` would write `NaN`, which is not
    JSON and which strict readers (jq, JavaScript) refuse."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_result(result: Any, method: str, as_json: bool, quiet: bool) -> None:
    """The run's result as the flags ask: a JSON document, the run directory, or a summary."""
    if as_json:
        print(json.dumps(finite({"dataset": result.dataset, "method": method,
                                 "output": str(result.output), "metrics": result.metrics,
                                 "summary": result.summary}), ensure_ascii=False))
    elif quiet:
        print(result.output)
    elif result.summary:
        print(result.summary)
    else:
        test = result.metrics.get("test", {})
        summary = ", ".join(f"{k} {v:.4f}" for k, v in test.items()
                            if k in ("loss", "perplexity", "accuracy", "macro_f1")
                            and isinstance(v, float))
        print(f"{method} on {result.dataset}: test {summary or 'not evaluated'}; "
              f"written to {result.output}")


def train(**flags: Any) -> None:
    """Fine-tune a model on a dataset version and write adapter/model, metrics and a card.

    Then use the run: train predict|evaluate|report|serve|export RUN --help."""
    config, as_json, quiet = flags.pop("config"), flags.pop("as_json"), flags.pop("quiet")
    flags.pop("version")
    output_mode = result_only(as_json, quiet)
    cfg = resolve_config({k: None if k in ON_SWITCHES and not v else v
                          for k, v in flags.items()}, config)
    from .runner import run_training  # torch and transformers: only once the settings hold

    with output_mode:
        result = run_training(cfg)
    if os.environ.get("RANK", "0") != "0":
        return
    print_result(result, cfg.method, as_json, quiet)


train.__signature__ = inspect.Signature([*PARAMETERS, *OWN])  # type: ignore[attr-defined]
train.__annotations__ = {p.name: p.annotation for p in (*PARAMETERS, *OWN)}
app.command(context_settings=CONTEXT)(train)


def one_line(text: str) -> str:
    return " ".join(text.split())


def run_app(typer_app: typer.Typer) -> None:
    """Run the app with click's usage errors as one line (`error: ...`, exit 2) like every other
    error of the CLI, where click would print the usage and a boxed message."""
    command = typer.main.get_command(typer_app)
    try:
        code = command.main(prog_name="train", standalone_mode=False)
    except TyperException as exc:  # typer's (vendored click's) usage errors derive from it
        where = exc.ctx.command_path if getattr(exc, "ctx", None) else "train"
        print(f"error: {one_line(exc.format_message())} (see {where} -h)", file=sys.stderr)
        sys.exit(exc.exit_code)
    except Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    """A first argument naming a subcommand runs it; anything else trains."""
    from .commands import SUBCOMMANDS
    from .commands import app as commands

    chosen = commands if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS else app
    run_command(lambda: run_app(chosen))
