"""Evaluation metrics computed from logits reduced on the device.

`Trainer` keeps every batch's predictions until the end of evaluation; full logits would be
examples x length x vocabulary floats. So `preprocess_logits_for_metrics` reduces each batch on
the device to two integers per example (predicted class, gold class) and only those travel.
Accuracy and macro-F1 are a few lines of numpy (scikit-learn is not otherwise needed).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .data import IGNORE


def accuracy_f1(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 (classes absent from both gold and predictions are skipped)."""
    if gold.size == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (gold, np.clip(pred, 0, n_classes - 1)), 1)
    tp = np.diag(confusion).astype(np.float64)
    support, predicted = confusion.sum(1), confusion.sum(0)
    present = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros(n_classes), where=present)
    return {"accuracy": float((pred == gold).mean()), "macro_f1": float(f1[present].mean())}


def classifier_reduce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(predicted class, gold class) per example, on the device."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return torch.stack([logits.argmax(-1), labels], dim=1)


class LabelScorer:
    """For SFT on a classification version: which label's first token does the model rank
    highest at the start of the answer? Labels whose first answer tokens are not distinct cannot
    be told apart this way; then no accuracy is reported."""

    def __init__(self, first_tokens: list[int]) -> None:
        self.first_tokens = first_tokens
        self.usable = (len(set(first_tokens)) == len(first_tokens) > 1
                       and min(first_tokens) >= 0)

    def __call__(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if isinstance(logits, tuple):
            logits = logits[0]
        flat_labels = labels.reshape(-1)
        answer = flat_labels != IGNORE
        before = torch.zeros_like(answer)
        before[1:] = answer[:-1]
        row_start = torch.zeros_like(answer)
        row_start.view(labels.shape)[:, 0] = True
        starts = torch.nonzero(answer & (~before | row_start)).squeeze(1)
        ids = torch.tensor(self.first_tokens, device=logits.device)
        scores = logits.reshape(-1, logits.shape[-1])[starts - 1][:, ids]
        gold_token = flat_labels[starts]
        gold = (gold_token[:, None] == ids[None, :]).float().argmax(1)
        gold[~(gold_token[:, None] == ids[None, :]).any(1)] = -1
        return torch.stack([scores.argmax(1), gold], dim=1)


def pairs_metrics(pred_gold: np.ndarray, n_classes: int) -> dict[str, float]:
    pairs = np.asarray(pred_gold).reshape(-1, 2)
    pairs = pairs[pairs[:, 1] >= 0]  # padding rows added when batches are concatenated
    return accuracy_f1(pairs[:, 0], pairs[:, 1], n_classes)


def perplexity(loss: float | None) -> float | None:
    if loss is None or not math.isfinite(loss):
        return None
    return float(math.exp(min(loss, 50.0)))
