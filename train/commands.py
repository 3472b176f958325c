"""`train predict|evaluate|report|serve|export runs/<run> ...`: what a user does with a trained
model; `train search NAME@VERSION ...`, a hyperparameter search of runs (`search.py`). Each
subcommand lives in its own module; this one only registers them, so `train --help` stays fast
(torch and transformers are imported once a command runs)."""

from __future__ import annotations

import typer

from . import export, run_report, search
from .cli import CONTEXT
from .evaluate import evaluate
from .predict import predict
from .serve import serve

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, no_args_is_help=True,
                  context_settings=CONTEXT,
                  help="Use a trained run: predict, evaluate, report, serve, export.")

#: The subcommand names, which `cli.main` routes here (anything else is a training run).
SUBCOMMANDS = ("predict", "evaluate", "report", "serve", "export", "search")


@app.callback()
def use_a_run() -> None:
    """Use a trained run: predict, evaluate, report, serve, export."""


app.command("predict")(predict)
app.command()(evaluate)
app.command("report")(run_report.report)
app.command()(serve)
app.command("export")(export.command)
app.command("search")(search.search)
