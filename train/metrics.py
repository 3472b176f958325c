"""Evaluation metrics computed from logits reduced on the device.

`Trainer` keeps every batch's predictions until the end of evaluation; full logits would be
examples x length x vocabulary floats. So `preprocess_logits_for_metrics` reduces each batch on
the device to one row per example, `[loss sum, loss tokens, predicted class, gold class]`, and
only those travel. In packed batches examples are told apart by their position ids, which the
SFT flow hands over next to the labels (`label_names`). Accuracy and macro-F1 are
scikit-learn's.

Why the loss is summed here and not taken from `Trainer`: `Trainer` reports the mean of per-batch
mean losses, so a batch of two short answers weighs as much as a batch of long ones, and under
DDP the examples `accelerate` repeats to even out the last batch are counted again (on the
2-process test this moved the test loss from 6.41 to 6.93). Per-example rows are exact: the loss
is summed over every answer token of the split and divided once, and `gather_for_metrics` drops
the repeated examples' rows.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score

from .data import IGNORE

#: Columns of the per-example rows every reducer returns.
LOSS_SUM, LOSS_TOKENS, PRED, GOLD = range(4)
#: Positions whose cross-entropy is computed at once: bounds the float32 copy of their logits.
LOSS_CHUNK = 2048


def accuracy_f1(pred: np.ndarray, gold: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-F1 over classes 0..n_classes-1. A class that is neither in the gold
    labels nor predicted (a rare label missing from a small split) has no F1 and is left out of
    the mean (`zero_division=nan`), rather than counted as 0; a class only one side has scores
    0."""
    if gold.size == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan")}
    f1 = f1_score(gold, pred, labels=np.arange(n_classes), average="macro",
                  zero_division=np.nan)
    return {"accuracy": float(accuracy_score(gold, pred)), "macro_f1": float(f1)}


def classifier_reduce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per example: cross-entropy, 1 token, predicted class, gold class (on the device)."""
    if isinstance(logits, tuple):
        logits = logits[0]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
    return torch.stack([loss, torch.ones_like(loss), logits.argmax(-1).float(),
                        labels.float()], dim=1)


def split_labels(labels) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`Trainer` hands over `(labels, position_ids)` when the flow names both as label names
    (packed batches: position ids are where examples start), else the labels alone."""
    if isinstance(labels, tuple | list):
        return labels[0], labels[1] if len(labels) > 1 else None
    return labels, None


def example_of_token(labels: torch.Tensor, position_ids: torch.Tensor | None
                     ) -> tuple[torch.Tensor, int]:
    """(example index of every token of the flattened batch, number of examples): a padded
    batch has one example a row; a packed row starts an example wherever its position ids
    restart at 0 (padding added across processes has position id -100 and no loss)."""
    if position_ids is None:
        rows, length = labels.shape
        return torch.arange(rows, device=labels.device).repeat_interleave(length), rows
    starts = position_ids.reshape(-1) == 0
    return torch.cumsum(starts.long(), 0) - 1, int(starts.sum())


class EvalBatch(NamedTuple):
    """A batch as the reducers need it, flattened to tokens once."""

    logits: torch.Tensor      # (tokens, vocabulary)
    labels: torch.Tensor      # (tokens,)
    example: torch.Tensor     # (tokens,) example index of every token
    n_examples: int
    answers: torch.Tensor     # flat indices of the answer tokens (labels != IGNORE), ascending


def unpack_batch(logits, labels) -> EvalBatch:
    """What `Trainer` hands a reducer, as an `EvalBatch`."""
    if isinstance(logits, tuple):
        logits = logits[0]
    labels, position_ids = split_labels(labels)
    example, n_examples = example_of_token(labels, position_ids)
    flat_labels = labels.reshape(-1)
    return EvalBatch(logits.reshape(-1, logits.shape[-1]), flat_labels, example, n_examples,
                     torch.nonzero(flat_labels != IGNORE).squeeze(1))


def answer_losses(batch: EvalBatch) -> torch.Tensor:
    """(loss sum, answer tokens) per example: the cross-entropy of each answer token given the
    logits one position earlier (labels are not shifted; an example's first token never carries
    a label, so no prediction crosses rows or packed examples)."""
    nll = [torch.nn.functional.cross_entropy(batch.logits[chunk - 1].float(),
                                             batch.labels[chunk], reduction="none")
           for chunk in batch.answers.split(LOSS_CHUNK)]
    nll = torch.cat(nll) if nll else batch.logits.new_zeros(0, dtype=torch.float32)
    owner = batch.example[batch.answers]
    sums = torch.zeros(batch.n_examples, device=nll.device).index_add_(0, owner, nll)
    counts = torch.zeros_like(sums).index_add_(0, owner, torch.ones_like(nll))
    return torch.stack([sums, counts], dim=1)


def first_answer_token(batch: EvalBatch) -> torch.Tensor:
    """Flat index of each example's first answer token (-1 for an example without one)."""
    none = batch.labels.numel()
    first = torch.full((batch.n_examples,), none, device=batch.labels.device)
    first.scatter_reduce_(0, batch.example[batch.answers], batch.answers, "amin")
    first[first == none] = -1
    return first


def sft_reduce(logits, labels) -> torch.Tensor:
    """Per example: answer loss sum, answer tokens, and no class (-1, -1)."""
    losses = answer_losses(unpack_batch(logits, labels))
    return torch.cat([losses, torch.full_like(losses, -1.0)], dim=1)


class LabelScorer:
    """For SFT on a classification version: which label's first token does the model rank
    highest at the start of the answer? Labels whose first answer tokens are not distinct cannot
    be told apart this way; then no accuracy is reported."""

    def __init__(self, first_tokens: list[int]) -> None:
        self.first_tokens = first_tokens
        self.usable = (len(set(first_tokens)) == len(first_tokens) > 1
                       and min(first_tokens) >= 0)

    def __call__(self, logits, labels) -> torch.Tensor:
        """Per example: answer loss sum, answer tokens, predicted label, gold label (-1 where
        the gold answer starts with no label's first token)."""
        batch = unpack_batch(logits, labels)
        first = first_answer_token(batch)
        ids = torch.tensor(self.first_tokens, device=batch.logits.device)
        scores = batch.logits[(first - 1).clamp(min=0)][:, ids]
        gold_token = batch.labels[first.clamp(min=0)]
        is_label = (gold_token[:, None] == ids[None, :]) & (first >= 0)[:, None]
        gold = is_label.float().argmax(1)
        gold[~is_label.any(1)] = -1
        return torch.cat([answer_losses(batch),
                          torch.stack([scores.argmax(1), gold], dim=1).float()], dim=1)


def eval_metrics(rows: np.ndarray, n_classes: int = 0) -> dict[str, float]:
    """The split's loss (summed over every loss token, divided once) and, with classes,
    accuracy and macro-F1 over the examples whose gold class is known.

    The key `loss` replaces `Trainer`'s own average: `evaluation_loop` moves unprefixed keys
    onto `eval_<key>` after it has written `eval_loss` (the DDP test pins this)."""
    rows = np.asarray(rows, dtype=np.float64).reshape(-1, 4)
    rows = rows[rows[:, LOSS_TOKENS] > 0]  # padding rows added when batches are concatenated
    metrics = {"loss": float(rows[:, LOSS_SUM].sum() / max(rows[:, LOSS_TOKENS].sum(), 1))}
    if n_classes:
        known = rows[rows[:, GOLD] >= 0]
        metrics |= accuracy_f1(known[:, PRED].astype(np.int64), known[:, GOLD].astype(np.int64),
                               n_classes)
    return metrics


def perplexity(loss: float | None) -> float | None:
    if loss is None or not math.isfinite(loss):
        return None
    return float(math.exp(min(loss, 50.0)))
