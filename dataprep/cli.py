"""`dataprep` command line: run, validate, versions, show, report.

Errors a user can fix are printed as one line on stderr with exit code 1; usage errors exit 2.
The last line `run` prints on stdout is the version id, so scripts can capture it.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.errors import run_command

from .errors import DataprepError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Raw logs in, an audited, versioned Arrow dataset out.",
)
err = Console(stderr=True)

StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default: $DATAPREP_STORE or ./store)."),
]
RecipeOpt = Annotated[Path | None, typer.Option("--recipe", help="Recipe YAML file.")]


@app.command()
def run(
    inputs: Annotated[
        list[Path], typer.Argument(help="Raw files: .jsonl(.gz) .json .csv .tsv .parquet .txt")
    ],
    name: Annotated[str, typer.Option("--name", help="Dataset name in the store.")],
    recipe: RecipeOpt = None,
    store: StoreOpt = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the version id.")
    ] = False,
    exclude: Annotated[
        list[Path] | None,
        typer.Option("--exclude", help="JSON Lines file naming rows to remove by source "
                     "(file:line) and/or id, e.g. a folds run's label_issues.jsonl; repeatable."),
    ] = None,
) -> None:
    """Validate INPUTS, drop the rows --exclude files name, clean them (unicode, whitespace,
    PII), identify languages, filter, deduplicate, split, augment train and format them into a
    new version of NAME; prints the version id last."""
    from .pipeline import run_pipeline
    from .report import print_report

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    ) as bar:
        tasks: dict[str, int] = {}

        def tick(source: str, n: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(source, total=None)
            bar.advance(tasks[source], n)

        result = run_pipeline(inputs, name, recipe, store, progress=tick,
                              augment_progress=lambda who, n: tick(f"augment {who}", n),
                              exclude=exclude)
    for file in result.report.get("exclude", {}).get("files", []):
        if file["unmatched"]:
            err.print(f"warning: {file['unmatched']} of {file['entries']} entries of "
                      f"{file['path']} match no input row", markup=False, highlight=False,
                      soft_wrap=True)
    if not quiet:
        print_report(result.report, _stdout())
        state = "written" if result.created else "already in the store, nothing rewritten"
        print(f"{result.name}@{result.version} {state}: {result.path}")
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
        raise DataprepError(f"nothing to set up called {what!r} (known: wordnet)")
    from .augment.wordnet import setup_wordnet

    print(f"WordNet ready for NLTK in {setup_wordnet(target)}")


@app.command()
def validate(
    inputs: Annotated[list[Path], typer.Argument(help="Raw files to check.")],
    recipe: RecipeOpt = None,
    examples: Annotated[int, typer.Option("--examples", help="Examples shown per reason.")] = 3,
) -> None:
    """Check INPUTS against the record schemas only; exit 1 if any row is rejected."""
    from .sources import validate_only

    total, by_reason, first = validate_only(inputs, recipe, examples)
    out = Console()
    bad = sum(by_reason.values())
    out.print(f"{total} rows read, {total - bad} valid, {bad} rejected")
    for reason, n in by_reason.most_common():
        out.print(f"\n[bold]{reason}[/bold]: {n}")
        for r in first[reason]:
            out.print(
                f"  {r.source}:{r.line}: {r.detail}", markup=False, highlight=False, soft_wrap=True
            )
            out.print(
                f"    {r.raw[:160]!r}", markup=False, highlight=False, style="dim", soft_wrap=True
            )
    raise typer.Exit(1 if bad else 0)


@app.command()
def versions(
    name: Annotated[str, typer.Argument(help="Dataset name.")], store: StoreOpt = None
) -> None:
    """List the versions of NAME, oldest first; `*` marks latest."""
    from rich.table import Table

    from .store import SPLITS, find_version, list_versions

    current = find_version(name + "@latest", store)
    table = Table(show_header=True, header_style="bold")
    for col in ("", "version", "created", "kind", "input", *SPLITS, "parent"):
        table.add_column(col)
    for m in list_versions(current.root, name):
        table.add_row(
            "*" if m["version"] == current.version else "",
            m["version"],
            m["created_at"],
            m["kind"],
            str(m["counts"]["input"]),
            *(str(m["splits"][s]) for s in SPLITS),
            m["parent"] or "",
        )
    _stdout().print(table)


def _stdout() -> Console:
    """Stdout console; when piped, wide enough that tables keep whole ids instead of '…'."""
    return Console() if sys.stdout.isatty() else Console(width=200)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME@latest, NAME@<id> or NAME@<id prefix>.")],
    split: Annotated[str, typer.Option("--split", help="train, validation or test.")] = "train",
    n: Annotated[int, typer.Option("-n", help="Rows to show.")] = 5,
    store: StoreOpt = None,
) -> None:
    """Print the first N rows of a split as JSON lines."""
    from .store import SPLITS, find_version

    version = find_version(ref, store)
    if split not in SPLITS:
        raise DataprepError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    data = version.load_data()[split]
    for row in data.select(range(min(n, len(data)))):
        print(json.dumps(row, ensure_ascii=False))


@app.command()
def report(
    ref: Annotated[str, typer.Argument(help="NAME@latest, NAME@<id> or NAME@<id prefix>.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print report.json.")] = False,
    html_path: Annotated[
        Path | None, typer.Option("--html", help="Copy report.html to PATH.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Show a version's data-quality report (terminal table, --json or --html PATH)."""
    from .report import print_report
    from .store import find_version

    version = find_version(ref, store)
    data = version.read_report()
    if html_path:
        shutil.copyfile(version.report_html, html_path)
        print(html_path)
    elif as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print_report(data, _stdout())


def main() -> None:
    run_command(app)
