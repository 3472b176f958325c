"""Error analysis of one split: where a trained model goes wrong, row by row, with each row's
`source` line so a mistake can be traced back to the raw log.

Written for validation and test at the end of every training run (`analysis.json` in the run)
and by `train evaluate` for any version's split. One analysis holds the split's metrics
(token-weighted loss as training reports it, perplexity, accuracy, macro-F1), how many of its
rows were in the run's training split (by content, not id: a re-made version gives rows new ids),
and, for labelled data, the confusion matrix, per-label scores and the most confident mistakes;
for every run the highest-loss rows; for SFT the per-example loss distribution and generated
answers beside the references with exact match, chrF (sacrebleu) and ROUGE-L (rouge-score).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.store import Version

from .errors import TrainError
from .run_dir import TrainedRun

Row = dict[str, Any]
#: The splits the end of training analyses (train is what the model saw).
TRAINING_SPLITS = ("validation", "test")
HISTOGRAM_BINS = 20
ANALYSIS_FILE = "analysis.json"


@dataclass
class AnalysisSettings:
    """How much of a split the analysis lists and generates."""

    top: int = 10                 # confident mistakes and highest-loss rows listed
    generate_rows: int = 8        # SFT rows answered by generation (0: none)
    max_new_tokens: int = 64


# --- rows ---------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Case and whitespace folded: two rows that differ only there are the same content."""
    return " ".join(str(text).split()).casefold()


def content_key(row: Row, by_text: bool) -> str:
    """A hash of the row's normalised content: its text for labelled kinds, else its
    conversation (roles and folded contents, keys sorted)."""
    if by_text:
        content = fold(row["text"])
    else:
        content = json.dumps([{"role": m["role"], "content": fold(m["content"])}
                              for m in row["messages"]], sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(content.encode("utf-8"), digest_size=16).hexdigest()


def by_text(*splits) -> bool:
    """Compare by text when every side has it (labelled kinds), else by conversation."""
    return all("text" in split.column_names for split in splits)


def overlap_with_training(run: TrainedRun, version: Version, split: str) -> int:
    """Rows of `version`'s split whose content is in the train split of the run's own version
    (the rows the model was trained on, augmented ones included)."""
    train, rows = run.version.data["train"], version.data[split]
    text = by_text(train, rows)
    columns = ["text"] if text else ["messages"]
    seen = {content_key(r, text) for r in iter_rows(train.select_columns(columns))}
    return sum(content_key(r, text) in seen for r in iter_rows(rows.select_columns(columns)))


def iter_rows(split, batch_size: int = 1000) -> Iterable[Row]:
    for batch in split.iter(batch_size=batch_size):
        columns = list(batch)
        yield from (dict(zip(columns, values, strict=True))
                    for values in zip(*batch.values(), strict=True))


def input_text(row: Row) -> str:
    """What the model was asked: a labelled row's text, else the last user message."""
    if row.get("text"):
        return row["text"]
    users = [m["content"] for m in row.get("messages") or [] if m["role"] == "user"]
    return users[-1] if users else row.get("prompt") or ""


def number(value: Any) -> float | None:
    """A float for JSON: NaN and infinity (no answer tokens, an empty split) become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def progress_bar(desc: str, total: int) -> Callable[[int], None]:
    """A progress bar on stderr when it is a terminal (stdout may carry `--json`)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=False)
    return bar.update


# --- metrics ------------------------------------------------------------------------------


def split_loss(losses: np.ndarray, tokens: np.ndarray) -> float:
    """The token-weighted mean, as training's: the loss summed over every answer token of the
    split, divided once (a mean of per-example means would weigh short answers up)."""
    known = np.isfinite(losses) & (tokens > 0)
    if not known.any():
        return math.nan
    return float((losses[known] * tokens[known]).sum() / tokens[known].sum())


def label_scores(pred: np.ndarray, gold: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (as training's), the confusion matrix (row = gold, column =
    predicted, in `labels` order) and per-label precision, recall, F1 and support (scikit-learn;
    a label never predicted has precision 0, its default)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from .metrics import accuracy_f1

    index = np.arange(len(labels))
    p, r, f, support = precision_recall_fscore_support(gold, pred, labels=index,
                                                       zero_division=0.0)
    return {"metrics": {k: number(v) for k, v in accuracy_f1(pred, gold, len(labels)).items()},
            "confusion_matrix": confusion_matrix(gold, pred, labels=index).tolist(),
            "per_label": {name: {"precision": float(p[i]), "recall": float(r[i]),
                                 "f1": float(f[i]), "support": int(support[i])}
                          for i, name in enumerate(labels)}}


class UnicodeWords:
    """ROUGE-L's tokenizer: lower-cased Unicode words. rouge-score's default keeps only
    [a-z0-9], so an answer in Spanish accents or in Chinese would score on fragments or not at
    all; `tokenize` is the interface its `RougeScorer(tokenizer=...)` calls."""

    def tokenize(self, text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())


def generation_scores(predictions: list[str], references: list[str]) -> dict[str, Any]:
    """Exact match (stripped), chrF (sacrebleu, 0-100) and mean ROUGE-L F1 (rouge-score)."""
    from rouge_score.rouge_scorer import RougeScorer
    from sacrebleu.metrics import CHRF

    if not predictions:
        return {"exact_match": None, "chrf": None, "rouge_l": None, "rows": 0}
    exact = np.mean([p.strip() == r.strip() for p, r in zip(predictions, references,
                                                            strict=True)])
    scorer = RougeScorer(["rougeL"], tokenizer=UnicodeWords())
    rouge = np.mean([scorer.score(r, p)["rougeL"].fmeasure
                     for p, r in zip(predictions, references, strict=True)])
    return {"exact_match": float(exact),
            "chrf": float(CHRF().corpus_score(predictions, [references]).score),
            "rouge_l": float(rouge), "rows": len(predictions)}


def loss_distribution(losses: np.ndarray) -> dict[str, Any]:
    """Per-example losses summarised: a few with a huge loss read very differently from many
    with a middling one, which the split's mean alone cannot tell apart."""
    known = losses[np.isfinite(losses)]
    if known.size == 0:
        return {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None,
                "histogram": {"edges": [], "counts": []}}
    counts, edges = np.histogram(known, bins=HISTOGRAM_BINS)
    p50, p90, p99 = np.percentile(known, [50, 90, 99])
    return {"count": int(known.size), "mean": float(known.mean()), "p50": float(p50),
            "p90": float(p90), "p99": float(p99), "max": float(known.max()),
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()}}


# --- the analysis -------------------------------------------------------------------------


def row_ref(row: Row) -> dict[str, Any]:
    return {"id": row.get("id"), "source": row.get("source"), "text": input_text(row)}


def highest_loss(rows: list[Row], losses: np.ndarray, references: list[str | None],
                 top: int) -> list[dict[str, Any]]:
    known = np.flatnonzero(np.isfinite(losses))
    order = known[np.argsort(-losses[known], kind="stable")][:top]
    return [{**row_ref(rows[i]), "reference": references[i], "loss": float(losses[i])}
            for i in order]


def confident_mistakes(rows: list[Row], probs: np.ndarray, pred: np.ndarray,
                       gold: np.ndarray, labels: list[str], top: int) -> list[dict[str, Any]]:
    """The wrong predictions the model was surest of (by the predicted label's probability):
    often a mislabelled row rather than a model error, which is worth knowing either way."""
    confidence = probs[np.arange(len(pred)), pred]
    wrong = np.flatnonzero(pred != gold)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:top]
    return [{**row_ref(rows[i]), "label": labels[gold[i]], "predicted": labels[pred[i]],
             "confidence": float(confidence[i])} for i in order]


def labelled_part(predictor, rows: list[Row], top: int, split: str
                  ) -> tuple[dict[str, Any], np.ndarray | None]:
    """For labelled rows: the label analysis and each row's label probabilities (None rows
    were dropped: their gold label is not one the run knows)."""
    labels = predictor.run.labels
    known = [i for i, r in enumerate(rows) if r["label"] in labels]
    if len(known) < len(rows):
        print(f"warning: {len(rows) - len(known)} rows of {split} have a label the run was "
              f"not trained on ({', '.join(labels)}); left out of the label scores",
              file=sys.stderr)
    if not known:
        raise TrainError(f"{split}: no row has a label the run was trained on "
                         f"({', '.join(labels)})")
    kept = [rows[i] for i in known]
    probs = predictor.probabilities(kept, progress_bar(f"{split}: labels", len(kept)))
    pred = probs.argmax(1)
    gold = np.array([labels.index(r["label"]) for r in kept], np.int64)
    part = label_scores(pred, gold, labels)
    part["confident_mistakes"] = confident_mistakes(kept, probs, pred, gold, labels, top)
    full = np.full((len(rows), len(labels)), np.nan)
    full[known] = probs
    return part, full


def generated_part(predictor, rows: list[Row], settings: AnalysisSettings
                   ) -> dict[str, Any]:
    """Answers generated for a fixed sample of rows with a reference (seed 0: the same rows
    every time for the same split), beside the references, and their scores."""
    from .inference import GenerationSettings, reference_of

    with_reference = [i for i, r in enumerate(rows) if reference_of(r) is not None]
    n = min(settings.generate_rows, len(with_reference))
    picked = sorted(np.random.default_rng(0).choice(with_reference, n, replace=False).tolist()
                    ) if n else []
    sample = [rows[i] for i in picked]
    predictions = predictor.generate(sample, GenerationSettings(settings.max_new_tokens),
                                     progress_bar("generate", n))
    references = [reference_of(r) for r in sample]
    return {"generations": [{"id": r.get("id"), "source": r.get("source"),
                             "input": input_text(r), "reference": ref, "prediction": p}
                            for r, ref, p in zip(sample, references, predictions,
                                                 strict=True)],
            "generation_metrics": generation_scores(predictions, references)}


def check_fits(run: TrainedRun, version: Version) -> bool:
    """Whether the run's labels are scored on `version` (a labelled version and a run that
    reads labels); a classifier on a version without labels is a one-line error."""
    labelled = bool(run.labels) and "label" in version.data["train"].column_names
    if run.is_classifier and not labelled:
        raise TrainError(f"{version.spec} holds {version.kind} records without labels; a "
                         "classifier run is evaluated on a classification version")
    return labelled


def analyse_split(predictor, version: Version, split: str, settings: AnalysisSettings,
                  overlap: int) -> dict[str, Any]:
    """The analysis of one split of `version` with the run's model (see the module doc)."""
    from .inference import reference_of
    from .metrics import perplexity

    run = predictor.run
    rows = list(iter_rows(version.data[split]))
    labelled = check_fits(run, version)
    out: dict[str, Any] = {"dataset": version.spec, "split": split, "rows": len(rows),
                           "metrics": {}, "overlap_with_training": overlap,
                           "labels": list(run.labels) if labelled else []}
    probs = None
    if labelled:
        part, probs = labelled_part(predictor, rows, settings.top, split)
        out.update(part)
    if run.is_classifier:
        # the classifier's loss is the gold label's cross-entropy: read off the probabilities
        # just computed rather than running the model over the split a second time
        gold = [run.labels.index(r["label"]) if r["label"] in run.labels else -1 for r in rows]
        chosen = np.array([probs[i, g] if g >= 0 else np.nan for i, g in enumerate(gold)])
        losses, tokens = -np.log(np.clip(chosen, 1e-12, None)), np.ones(len(rows), np.int64)
        references: list[str | None] = [r["label"] for r in rows]
    else:
        losses, tokens = predictor.losses_with_tokens(rows, progress_bar(f"{split}: loss",
                                                                         len(rows)))
        references = [reference_of(r) for r in rows]
    loss = split_loss(losses, tokens)
    metrics: dict[str, Any] = {"loss": number(loss)}
    if not run.is_classifier:
        metrics["perplexity"] = perplexity(loss)
    out["metrics"] = {**metrics, **out["metrics"]}
    out["highest_loss"] = highest_loss(rows, losses, references, settings.top)
    if not run.is_classifier:
        out["loss_distribution"] = loss_distribution(losses)
        out.update(generated_part(predictor, rows, settings))
    return out


def training_analysis(output: Path, version: Version, store: str | None, device: str,
                      batch_size: int, settings: AnalysisSettings | None = None) -> Path:
    """`analysis.json` of a finished run: validation and test (splits with rows), read back
    from the saved run as `train evaluate` reads it."""
    from .inference import Predictor
    from .outputs import write_json
    from .run_dir import open_run

    run = open_run(output, store)
    run.__dict__["version"] = version  # fills the cached property: the version in hand
    settings = settings or AnalysisSettings()
    predictor = Predictor(run, device, batch_size)
    analysis = {split: analyse_split(predictor, version, split, settings,
                                     overlap_with_training(run, version, split))
                for split in TRAINING_SPLITS if version.data[split].num_rows}
    write_json(output / ANALYSIS_FILE, analysis)
    return output / ANALYSIS_FILE
