"""What every `dataprep` command shares on its command line: the common options and
arguments, their checks (a bad value is a usage error, exit 2, raised while the flags are
parsed), and the stdout console tables print to."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from .errors import DataprepError
from .store import SPLITS, parse_spec

#: click's UsageError and ClickException, reached through typer's public BadParameter: typer
#: 0.2x carries its own copy of click, so `import click` would name other classes.
UsageError = typer.BadParameter.__mro__[1]
ClickException = typer.BadParameter.__mro__[2]


def checked(check):
    """A typer callback from a store check: its one-line error becomes a usage error (exit 2),
    raised while the flags are parsed, before any work."""

    def callback(value: Any) -> Any:
        if value is not None:
            try:
                check(value)
            except DataprepError as exc:
                raise typer.BadParameter(str(exc)) from None
        return value

    return callback


def split_choice(value: str) -> str:
    if value not in SPLITS:
        raise typer.BadParameter(f"unknown split {value!r}: use one of {', '.join(SPLITS)}")
    return value


StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default: $DATAPREP_STORE or ./store)."),
]
RecipeOpt = Annotated[Path | None, typer.Option("--recipe", help="Recipe YAML file.")]
SpecArg = Annotated[str, typer.Argument(
    help="NAME@latest, NAME@<id> or NAME@<id prefix>.", metavar="NAME@VERSION",
    callback=checked(parse_spec))]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]

#: Where `run`'s first pass runs (pipeline.ENGINES; not imported here: it loads the pipeline).
ENGINES = ("local", "ray")
_ADDRESS = re.compile(r"^(ray://)?[^\s:/]+:\d{1,5}$")


def engine_choice(value: str) -> str:
    if value not in ENGINES:
        raise typer.BadParameter(f"unknown engine {value!r}: use one of {', '.join(ENGINES)}")
    return value


def ray_address(value: str | None) -> str | None:
    if value is not None and not _ADDRESS.match(value):
        raise typer.BadParameter(f"{value!r} is not HOST:PORT (the address `ray start --head` "
                                 "prints, e.g. 10.0.0.5:6379)")
    return value


EngineOpt = Annotated[str, typer.Option(
    "--engine", metavar="[local|ray]", envvar="DATAPREP_ENGINE", callback=engine_choice,
    help="Where the first pass runs: local worker processes, or Ray Data (a local Ray with "
    "this machine's CPUs, or the cluster at --ray-address; needs the ray extra). Either "
    "makes the same version.")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", metavar="HOST:PORT", callback=ray_address,
    help="With --engine ray: join this Ray cluster (`ray start --head` on it) instead of "
    "starting a local Ray; its nodes need dataprep and the input files at the same paths.")]


def engine_options(engine: str, address: str | None) -> None:
    if address is not None and engine != "ray":
        raise UsageError("--ray-address needs --engine ray")


def output_mode(as_json: bool, quiet: bool) -> None:
    if as_json and quiet:
        raise UsageError("--json and --quiet exclude each other")


def stdout_console() -> Console:
    """Stdout console; when piped, wide enough that tables keep whole ids instead of '…'."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def write_page(path: Path, page: str) -> None:
    """Write an HTML page to `path` (checked outside the store before any work), or say in one
    line why it cannot be written."""
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise DataprepError(f"{path}: cannot write the page ({exc.strerror})") from None
