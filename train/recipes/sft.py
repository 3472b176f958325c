"""Supervised fine-tuning of a causal LM (LoRA or full) on any kind of version.

Loss on every assistant answer and nothing else, EOS learned, padding-free packing where the
attention implementation supports it (position ids restart per example, so no token attends
across examples), and, on a classification-derived version, accuracy and macro-F1 of the label
the model ranks first. `prepare` / `make_flow` / `run` as in `classifier`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

from dataprep.store import Version

from ..config import TrainConfig
from ..data import IGNORE, sft_format, tokenize_sft
from ..loop import Flow, fit
from ..metrics import LabelScorer, eval_metrics, sft_reduce
from ..modeling import load_causal_lm, load_tokenizer, trainable_model

#: Attention implementations that honour packed position ids (block-diagonal attention).
PACKING_ATTENTION = {"sdpa", "flash_attention_2", "flash_attention_3", "flex_attention", "eager"}


def packing_collator(tokenizer) -> DataCollatorWithFlattening:
    """Examples of a batch laid end to end in one row with restarting position ids."""
    return DataCollatorWithFlattening(return_position_ids=True, separator_id=IGNORE)


def padding_collator(tokenizer) -> DataCollatorForSeq2Seq:
    """The fallback: each batch padded to its longest example (labels padded with -100)."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)


def label_first_tokens(version: Version, splits, labels: list[str]) -> list[int]:
    """The first answer token of each label, read off tokenized train rows of that label (in
    context, as the model sees it; -1 for a label with no train row)."""
    n = min(5000, splits["train"].num_rows)
    first: dict[str, int] = {}
    for gold, row in zip(version.data["train"]["label"][:n], splits["train"]["labels"][:n],
                         strict=True):
        answer = [t for t in row if t != IGNORE]
        if answer and gold not in first:
            first[gold] = answer[0]
    return [first.get(label, -1) for label in labels]


@dataclass
class Setup:
    """Loaded and tokenized once per version and process (see `classifier.Setup`)."""

    tokenizer: Any
    splits: Any
    truncated: dict[str, int]
    fmt: Any                         # data.SFTFormat
    base: Any
    packing: bool
    attention: str
    label_tokens: dict[str, int] | None   # label -> first answer token, where usable


def prepare(cfg: TrainConfig, version: Version) -> Setup:
    tokenizer = load_tokenizer(cfg)
    base = load_causal_lm(cfg, tokenizer)
    fmt = sft_format(version, tokenizer)
    splits, truncated = tokenize_sft(version, tokenizer, cfg.max_length, fmt)
    attention = getattr(base.config, "_attn_implementation", "eager")
    packing = cfg.packing if cfg.packing is not None else attention in PACKING_ATTENTION
    label_tokens = None
    labels = version.labels()
    if labels:
        first = label_first_tokens(version, splits, labels)
        if LabelScorer(first).usable:
            label_tokens = dict(zip(labels, first, strict=True))
    return Setup(tokenizer, splits, truncated, fmt, base, packing, attention, label_tokens)


def make_flow(cfg: TrainConfig, setup: Setup, splits: Any = None, copy: bool = False) -> Flow:
    """One training on `splits` (default: the version's); `copy` as in `classifier`."""
    tokenizer = setup.tokenizer
    collator = packing_collator(tokenizer) if setup.packing else padding_collator(tokenizer)
    flow = Flow(trainable_model(setup.base, cfg, copy), tokenizer,
                splits if splits is not None else setup.splits, collator, setup.truncated,
                preprocess_logits=sft_reduce,
                compute_metrics=lambda p: eval_metrics(p.predictions),
                extra_run_info={"packing": setup.packing, "attention": setup.attention,
                                **setup.fmt.run_info()},
                # packed rows: position ids tell the evaluation where each example starts
                label_names=["labels", "position_ids"] if setup.packing else None)
    if setup.label_tokens:
        n = len(setup.label_tokens)
        flow.preprocess_logits = LabelScorer(list(setup.label_tokens.values()))
        flow.compute_metrics = lambda p: eval_metrics(p.predictions, n)
        flow.extra_run_info["label_first_tokens"] = setup.label_tokens
    return flow


def run(cfg: TrainConfig, version: Version, output: Path) -> dict[str, Any]:
    return fit(cfg, version, make_flow(cfg, prepare(cfg, version)), output)
