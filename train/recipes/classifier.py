"""A sequence-classification head on an encoder or decoder, on a classification version; labels
are the version's, in sorted order. A model under 300M parameters trains every weight; a larger
one gets a LoRA adapter and a fully trained head, saved together (`config.classifier_plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import DataCollatorWithPadding

from dataprep.store import Version

from ..config import TrainConfig
from ..data import tokenize_classification
from ..loop import Flow, fit
from ..metrics import classifier_reduce, eval_metrics
from ..modeling import load_classifier, load_tokenizer


def run(cfg: TrainConfig, version: Version, output: Path) -> dict[str, Any]:
    labels = version.labels()
    tokenizer = load_tokenizer(cfg)
    model = load_classifier(cfg, tokenizer, labels)
    splits, truncated = tokenize_classification(version, tokenizer, cfg.max_length, labels)
    flow = Flow(model, tokenizer, splits, DataCollatorWithPadding(tokenizer), truncated,
                preprocess_logits=classifier_reduce,
                compute_metrics=lambda p: eval_metrics(p.predictions, len(labels)),
                extra_run_info={"labels": labels}, best_metric="macro_f1")
    return fit(cfg, version, flow, output)
