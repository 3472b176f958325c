"""`dataprep diff` and `dataprep export`: the commands on versions already made, which compare
them and carry them to the tools users train with (registered on the app in `cli.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from common.terminal import json_line, printable

from .cli_options import SpecArg, StoreOpt, checked, output_mode, stdout_console, write_page
from .store import parse_spec


def diff(
    a: Annotated[str, typer.Argument(
        help="The version before: NAME@latest, NAME@<id> or NAME@<id prefix>.", metavar="A",
        callback=checked(parse_spec))],
    b: Annotated[str, typer.Argument(
        help="The version after (of the same dataset or another).", metavar="B",
        callback=checked(parse_spec))],
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the comparison as one JSON document.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Also write the comparison as a self-contained "
                                  "page to PATH (outside the store; its folder must exist).")
    ] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print one line: rows added, removed and moved per split.")] = False,
    store: StoreOpt = None,
) -> None:
    """Compare version A with version B (of one dataset or of two): rows added, removed and
    moved per split, labels and languages per split with their shift (population stability
    index, chi-square p-value), text lengths, and the two reports' counts side by side."""
    output_mode(as_json, quiet)
    from .diff import diff_versions
    from .diff_view import print_diff, render_html, summary_line
    from .store import check_outside_store, find_version, store_root

    if html_path is not None:
        check_outside_store(store_root(store), html_path)
    result = diff_versions(find_version(a, store), find_version(b, store))
    if html_path is not None:
        write_page(html_path, render_html(result))
    if as_json:
        print(json_line(result))
    elif quiet:
        print(printable(summary_line(result)))
    else:
        print_diff(result, stdout_console())
        if html_path is not None:
            print(printable(html_path))


def _format_choice(value: str) -> str:
    from .export import FORMATS

    if value not in FORMATS:
        raise typer.BadParameter(f"unknown format {value!r}: use one of {', '.join(FORMATS)}")
    return value


def export(
    ref: SpecArg,
    out: Annotated[Path, typer.Argument(
        help="Folder to write, outside the store; it must not exist, be empty, or (with "
        "--overwrite) hold an earlier export.", metavar="DIR", show_default=False)],
    fmt: Annotated[str, typer.Option(
        "--format", help="openai, sharegpt, alpaca (JSON Lines), trl-messages, "
        "trl-prompt-completion, datasets (datasets folders) or parquet.",
        callback=_format_choice, show_default=False)],
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace DIR when an earlier `dataprep export` wrote it.")] = False,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: spec, format, path, rows and path per split."
    )] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only DIR.")] = False,
) -> None:
    """Write each split of a version into DIR as one clean view for the tools users train
    with: the chat fine-tuning JSONL (openai), ShareGPT, Alpaca, TRL's messages or
    prompt-completion datasets, every column as Parquet or a datasets folder."""
    output_mode(as_json, quiet)
    from .export import export_version

    done = export_version(ref, fmt, out, store, overwrite=overwrite)
    if as_json:
        print(json_line(done.as_dict()))
    elif quiet:
        print(printable(done.path))
    else:
        print(printable(f"{done.spec} exported as {done.format} to {done.path}"))
        for split, file in done.splits.items():
            where = done.path / file.path if file.path else "(empty: no file)"
            print(printable(f"  {split:<10} {file.rows:>8} rows  {where}"))
