"""`dataprep` command line: run, validate, versions, show, report, setup, and diff and export
(from `cli_versions`); the options they share are in `cli_options`.

Exit codes: 0 done; 1 an error the user can fix in the inputs, recipe or store; 2 a usage error
(an unknown option, a missing argument, a malformed value such as `-n -1` or `--name ../x`).
Either error is one line on stderr. Every flag is checked before any work starts. `run` prints
the version id last on stdout, so scripts can capture it. Every command that prints a result
takes `--json` (one JSON document on stdout, nothing else there) and `--quiet` (only the
essential result). What comes from the data is printed as text: never as rich markup, never as
the escape sequences it may hold (`common.terminal`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.errors import run_command
from common.terminal import json_line, plain, printable

from .cli_options import (
    ClickException,
    EngineOpt,
    JsonOpt,
    RayAddressOpt,
    RecipeOpt,
    SpecArg,
    StoreOpt,
    UsageError,
    checked,
    engine_options,
    output_mode,
    split_choice,
    stdout_console,
    write_page,
)
from .cli_versions import diff, export
from .errors import DataprepError
from .store import SPLITS, check_name, parse_spec

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Raw logs in, an audited, versioned Arrow dataset out.",
)
err = Console(stderr=True)
def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"dataprep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the package version and exit.")] = False,
) -> None:
    """Raw logs in, an audited, versioned Arrow dataset out."""


@app.command()
def run(
    inputs: Annotated[
        list[Path], typer.Argument(help="Raw files: .jsonl(.gz) .json .csv .tsv .parquet .txt")
    ],
    name: Annotated[str, typer.Option("--name", help="Dataset name in the store.",
                                      callback=checked(check_name))],
    recipe: RecipeOpt = None,
    store: StoreOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the version id.")
    ] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: name, version, path, created, report.")] = False,
    exclude: Annotated[
        list[Path] | None,
        typer.Option("--exclude", help="JSON Lines file naming rows to remove by source "
                     "(file:line) and/or id, e.g. a folds run's label_issues.jsonl; repeatable."),
    ] = None,
    parent: Annotated[str | None, typer.Option(
        "--from", metavar="NAME@VERSION", callback=checked(parse_spec),
        help="Make a child version of NAME@VERSION: its rows in their splits (never moved) plus "
        "the rows of INPUTS, put through its recipe and deduplicated against its rows.")] = None,
    recipe_change: Annotated[bool, typer.Option(
        "--recipe-change", help="With --from and --recipe: let the child's recipe differ from "
        "its parent's; the parent's rows are put through the new recipe's filters again "
        "(removed ones listed in removed.jsonl with inherited: true).")] = False,
    engine: EngineOpt = "local",
    address: RayAddressOpt = None,
) -> None:
    """Validate INPUTS, drop the rows --exclude files name, clean them (unicode, whitespace,
    PII), identify languages, filter, deduplicate, split, augment train and format them into a
    new version of NAME; prints the version id last."""
    output_mode(as_json, quiet)
    engine_options(engine, address)
    from .pipeline import run_pipeline
    from .report import print_report

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet or as_json,
    ) as bar:
        tasks: dict[str, int] = {}

        def tick(source: str, n: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(printable(source), total=None)
            bar.advance(tasks[source], n)

        result = run_pipeline(inputs, name, recipe, store,
                              progress=None if quiet or as_json else tick,
                              augment_progress=lambda who, n: tick(f"augment {who}", n),
                              exclude=exclude, parent=parent, recipe_change=recipe_change,
                              engine=engine, ray_address=address)
    for file in result.report.get("exclude", {}).get("files", []):
        if file["unmatched"]:
            err.print(plain(f"warning: {file['unmatched']} of {file['entries']} entries of "
                            f"{file['path']} match no input row"), highlight=False,
                      soft_wrap=True)
    if as_json:
        print(json_line({"name": result.name, "version": result.version,
                         "spec": f"{result.name}@{result.version}", "path": str(result.path),
                         "created": result.created, "report": result.report}))
        return
    if not quiet:
        print_report(result.report, stdout_console())
        state = "written" if result.created else "already in the store, nothing rewritten"
        print(printable(f"{result.name}@{result.version} {state}: {result.path}"))
    print(result.version)


@app.command()
def setup(
    what: Annotated[str, typer.Argument(help="What to set up: wordnet.")],
    target: Annotated[Path | None, typer.Option(
        "--dir", help="NLTK data dir (default: $DATAPREP_NLTK_DATA or "
        "~/.cache/dataprep/nltk_data).")] = None,
) -> None:
    """Set up offline resources: `wordnet` copies Debian's WordNet 3.0 into an NLTK data dir
    (for the synonym augmenter)."""
    if what != "wordnet":
        raise typer.BadParameter(f"nothing to set up called {what!r} (known: wordnet)")
    from .augment.wordnet import setup_wordnet

    print(printable(f"WordNet ready for NLTK in {setup_wordnet(target)}"))


@app.command()
def validate(
    inputs: Annotated[list[Path], typer.Argument(help="Raw files to check.")],
    recipe: RecipeOpt = None,
    examples: Annotated[int, typer.Option("--examples", min=0,
                                          help="Examples shown per reason.")] = 3,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print one JSON document: counts, rejects by reason, examples.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print only the counts line.")] = False,
) -> None:
    """Check INPUTS against the record schemas only; exit 1 if any row is rejected."""
    output_mode(as_json, quiet)
    from .sources import validate_only

    total, by_reason, first = validate_only(inputs, recipe, examples)
    bad = sum(by_reason.values())
    if as_json:
        print(json_line({
            "rows": total, "valid": total - bad, "rejected": bad,
            "rejected_by_reason": dict(by_reason.most_common()),
            "examples": {reason: [{"source": r.source, "line": r.line, "detail": r.detail,
                                   "raw": r.raw[:1000]} for r in first.get(reason, [])]
                         for reason in by_reason},
        }))
        raise typer.Exit(1 if bad else 0)
    out = Console()
    out.print(f"{total} rows read, {total - bad} valid, {bad} rejected", highlight=False)
    if not quiet:
        _print_rejects(out, by_reason, first)
    raise typer.Exit(1 if bad else 0)


def _print_rejects(out: Console, by_reason, first) -> None:
    """Each reason with its first rejects, as text: a reject's detail and raw line are data."""
    for reason, n in by_reason.most_common():
        out.print()
        out.print(plain(reason), f": {n}", style="bold", highlight=False, sep="")
        for r in first.get(reason, []):
            out.print(plain(f"  {r.source}:{r.line}: {r.detail}"), highlight=False,
                      soft_wrap=True)
            out.print(plain(f"    {r.raw[:160]!r}"), highlight=False, style="dim",
                      soft_wrap=True)


@app.command()
def versions(
    name: Annotated[str, typer.Argument(help="Dataset name.", callback=checked(check_name))],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print only the version ids, oldest first.")] = False,
) -> None:
    """List the versions of NAME, oldest first; `*` marks latest."""
    output_mode(as_json, quiet)
    from rich.table import Table

    from .store import latest, list_versions, resolve, store_root

    root = store_root(store)
    if not (root / name).is_dir():
        resolve(root, name)  # the error that names the datasets there are
    found = list_versions(root, name)
    if not found:
        raise DataprepError(f"{name}: no version has been written yet in {root}")
    current = latest(root, name)
    if as_json:
        print(json_line([{"version": m["version"], "latest": m["version"] == current,
                          "created_at": m["created_at"], "kind": m["kind"],
                          "input": m["counts"]["input"], "splits": m["splits"],
                          "parent": m["parent"]} for m in found]))
        return
    if quiet:
        print("\n".join(m["version"] for m in found))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("", "version", "created", "kind", "input", *SPLITS, "parent"):
        table.add_column(col)
    for m in found:
        cells = ["*" if m["version"] == current else "", m["version"], m["created_at"],
                 m["kind"], m["counts"]["input"], *(m["splits"][s] for s in SPLITS),
                 m["parent"] or ""]
        table.add_row(*(plain(c) for c in cells))
    stdout_console().print(table)


@app.command()
def show(
    ref: SpecArg,
    split: Annotated[str, typer.Option("--split", help="train, validation or test.",
                                       callback=split_choice)] = "train",
    n: Annotated[int, typer.Option("-n", min=0, help="Rows to show.")] = 5,
    store: StoreOpt = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the rows as one JSON array instead of JSON lines.")] = False,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print only the rows' ids.")] = False,
) -> None:
    """Print the first N rows of a split as JSON lines."""
    output_mode(as_json, quiet)
    from .store import find_version

    data = find_version(ref, store).load_data()[split]
    rows = data.select(range(min(n, len(data))))
    if as_json:
        print(json_line(list(rows)))
    elif quiet:
        for row in rows:
            print(printable(row["id"]))
    else:
        for row in rows:
            print(json_line(row))


@app.command()
def report(
    ref: SpecArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Copy report.html to PATH (outside the store; "
                                  "its folder must exist).")
    ] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", "-q", help="Print one line: counts per stage and split, accounting.")] = False,
    store: StoreOpt = None,
) -> None:
    """Show a version's data-quality report (terminal table, --json, --quiet or --html PATH)."""
    if sum((as_json, quiet, html_path is not None)) > 1:
        raise UsageError("--json, --quiet and --html exclude each other")
    from .report import print_report
    from .store import check_outside_store, find_version, store_root

    if html_path is not None:
        check_outside_store(store_root(store), html_path)
    version = find_version(ref, store)
    data = version.read_report()
    if html_path is not None:
        write_page(html_path, version.report_html.read_text(encoding="utf-8"))
        print(printable(html_path))
    elif as_json:
        print(json_line(data, indent=2))
    elif quiet:
        print(_summary_line(data))
    else:
        print_report(data, stdout_console())


def _summary_line(data: dict[str, Any]) -> str:
    """The report in one line: what `--quiet` prints."""
    c = data["counts"]
    splits = " / ".join(f"{s} {c['output'][s]}" for s in SPLITS)
    return (f"{data['name']}@{data['version']}: {c['input']} in, {c['rejected']} rejected, "
            f"{sum(c['filtered_by_reason'].values())} filtered, "
            f"{c['duplicates']['exact'] + c['duplicates']['near']} duplicates; {splits}; "
            f"accounting {'holds' if data['accounting_ok'] else 'BROKEN'}")


app.command()(diff)
app.command()(export)


def _invoke() -> None:
    """The app with usage errors as one line on stderr (exit 2), like every other error: click's
    own form is a usage line, a hint and a box, which scripts and logs read badly."""
    try:
        code = app(standalone_mode=False)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare `dataprep`: typer printed help
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
        print(f"error: {printable(exc.format_message())}{hint}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


def main() -> None:
    run_command(_invoke)
