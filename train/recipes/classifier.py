"""A sequence-classification head on an encoder or decoder, on a classification version; labels
are the version's, in sorted order. A model under 300M parameters trains every weight; a larger
one gets a LoRA adapter and a fully trained head, saved together (`config.classifier_plan`).

`prepare` does what every fold or trial of one version shares (tokenizer, tokenized splits,
base weights in memory); `make_flow` builds one training of it; `run` is one plain run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import DataCollatorWithPadding

from dataprep.store import Version

from ..config import TrainConfig
from ..data import tokenize_classification
from ..errors import TrainError
from ..loop import Flow, fit
from ..metrics import classifier_reduce, eval_metrics
from ..modeling import load_classifier, load_tokenizer, trainable_model


@dataclass
class Setup:
    """Loaded and tokenized once per version and process."""

    tokenizer: Any
    splits: Any                  # DatasetDict: input_ids, attention_mask, labels per split
    truncated: dict[str, int]
    labels: list[str]
    base: Any                    # the loaded model, before any adapter


def check_labels(version: Version) -> list[str]:
    """The version's labels, at least two of them: with one, transformers builds a regression
    head (num_labels 1) and the run reports accuracy 1.0 on data it cannot get wrong. Refused
    rather than trained as a one-class check, which would measure nothing."""
    labels = version.labels()
    if len(labels) < 2:
        what = f"a single label {labels[0]!r}" if labels else "no labels"
        raise TrainError(f"{version.spec}: the version has {what}: a classifier needs at "
                         "least two")
    return labels


def prepare(cfg: TrainConfig, version: Version) -> Setup:
    labels = check_labels(version)
    tokenizer = load_tokenizer(cfg)
    base = load_classifier(cfg, tokenizer, labels)
    splits, truncated = tokenize_classification(version, tokenizer, cfg.max_length, labels)
    return Setup(tokenizer, splits, truncated, labels, base)


def make_flow(cfg: TrainConfig, setup: Setup, splits: Any = None, copy: bool = False) -> Flow:
    """One training on `splits` (default: the version's); `copy` trains a fresh copy of the
    base weights, leaving `setup.base` as loaded for the next fold or trial."""
    n = len(setup.labels)
    return Flow(trainable_model(setup.base, cfg, copy), setup.tokenizer,
                splits if splits is not None else setup.splits,
                DataCollatorWithPadding(setup.tokenizer), setup.truncated,
                preprocess_logits=classifier_reduce,
                compute_metrics=lambda p: eval_metrics(p.predictions, n),
                extra_run_info={"labels": setup.labels}, best_metric="macro_f1")


def run(cfg: TrainConfig, version: Version, output: Path) -> dict[str, Any]:
    return fit(cfg, version, make_flow(cfg, prepare(cfg, version)), output)
