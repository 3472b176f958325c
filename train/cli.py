"""`train NAME@VERSION --model M [--method lora|full|classifier] ...`: fine-tune on a version."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from dataprep.errors import run_command

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def train(
    dataset: Annotated[str | None, typer.Argument(help="Dataset version: NAME@VERSION or "
                                                       "NAME@latest.")] = None,
    model: Annotated[str | None, typer.Option(help="Hub id, local directory, or built-in: "
                                                   "smollm2-135m-instruct, minilm-l6.")] = None,
    method: Annotated[str | None, typer.Option(help="lora (default), full, classifier.")] = None,
    output: Annotated[str | None, typer.Option(help="Run directory (default runs/<name>-"
                                                    "<version>-<time>/).")] = None,
    store: Annotated[str | None, typer.Option(help="Dataset store (default $DATAPREP_STORE "
                                                   "or ./store).")] = None,
    epochs: Annotated[float | None, typer.Option()] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    grad_accum: Annotated[int | None, typer.Option()] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per example.")] = None,
    lora_r: Annotated[int | None, typer.Option()] = None,
    lora_alpha: Annotated[int | None, typer.Option()] = None,
    target_modules: Annotated[str | None, typer.Option(help="Comma-separated module names, "
                                                            "or all-linear.")] = None,
    eval_steps: Annotated[int | None, typer.Option()] = None,
    early_stopping_patience: Annotated[int | None, typer.Option()] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last "
                                                          "checkpoint.")] = False,
    merge: Annotated[bool, typer.Option("--merge", help="Also write merged weights.")] = False,
    packing: Annotated[bool | None, typer.Option("--packing/--no-packing")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    trust_remote_code: Annotated[bool, typer.Option("--trust-remote-code")] = False,
    device: Annotated[str | None, typer.Option(help="auto or cpu.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with the same keys.")] = None,
) -> None:
    """Fine-tune a model on a dataset version and write adapter/model, metrics and a card."""
    flags = {k: v for k, v in locals().items() if k != "config"}
    from .config import resolve_config
    from .runner import run_training

    for key in ("resume", "merge", "gradient_checkpointing", "trust_remote_code"):
        flags[key] = flags[key] or None  # a flag left off does not override the config file
    cfg = resolve_config(flags, config)
    result = run_training(cfg)
    if os.environ.get("RANK", "0") != "0":
        return
    test = result.metrics.get("test", {})
    summary = ", ".join(f"{k} {v:.4f}" for k, v in test.items()
                        if k in ("loss", "perplexity", "accuracy", "macro_f1")
                        and isinstance(v, float))
    print(f"{cfg.method} on {result.dataset}: test {summary or 'not evaluated'}; "
          f"written to {result.output}")


def main() -> None:
    run_command(app)
