"""Batched inference with a finished run's model: what predict, evaluate, serve and the error
analysis share.

- `classify(texts)`: a classifier's probability of every label.
- `score_labels(rows)`: for an SFT run on a classification version, the probability of every
  label as the model's next-token distribution over the labels' first answer tokens at the
  start of the answer (the same reading as training's accuracy, `metrics.LabelScorer`).
- `generate(rows)`: the answer an SFT model writes, greedy by default, with the prompt rendered
  as in training (the model's chat template, or the version's prompt/completion format).
- `losses(rows)`: each example's answer loss (mean over its answer tokens), or a classifier's
  cross-entropy of the gold label.

Every method batches rows sorted by length (less padding), pads on the left for generation (so
every row's next token sits in the last column), keeps the KV cache on, and returns results in
the input order. A LoRA adapter is merged into the weights once at load (same outputs, no
adapter overhead per token).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .data import CHAT_TEMPLATE, IGNORE, SFTTokenizer
from .errors import TrainError
from .metrics import EvalBatch, answer_losses
from .run_dir import TrainedRun

Row = dict[str, Any]
Progress = Callable[[int], None]


@dataclass
class GenerationSettings:
    """Sampling settings of `generate`; temperature 0 is greedy decoding."""

    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p}


def prompt_messages(row: Row) -> list[dict[str, str]]:
    """The conversation the model answers: the row's messages without a final assistant turn
    (that turn is the reference answer)."""
    messages = list(row["messages"])
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return messages


def reference_of(row: Row) -> str | None:
    """The answer the data holds for the row (its final assistant turn), if any."""
    messages = row.get("messages") or []
    if messages and messages[-1]["role"] == "assistant":
        return messages[-1]["content"]
    return None


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Row indices, longest first (the first batch shows at once whether memory suffices)."""
    return np.argsort(-np.asarray(lengths), kind="stable")


def batches_by_length(lengths: Sequence[int], batch_size: int) -> Iterable[np.ndarray]:
    order = length_order(lengths)
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


class Predictor:
    """A run's model and tokenizer on a device, with the run's prompt format."""

    def __init__(self, run: TrainedRun, device: str = "auto", batch_size: int = 16,
                 merge: bool = True) -> None:
        self.run = run
        self.batch_size = batch_size
        self.model, self.tokenizer = run.load(device)
        if merge and hasattr(self.model, "merge_and_unload"):
            with warnings.catch_warnings():  # peft's merge calls a deprecated transformers API
                warnings.simplefilter("ignore", FutureWarning)
                self.model = self.model.merge_and_unload().eval()
        self.device = next(self.model.parameters()).device
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.use_chat_template = run.info.get("sft_format") == CHAT_TEMPLATE
        self.max_length = run.max_length

    # --- prompts --------------------------------------------------------------------------

    def prompt_texts(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        """Conversations (ending before the answer) rendered as training rendered prompts: the
        chat template with its generation prompt, or the version's prompt template."""
        if self.use_chat_template:
            return [self.tokenizer.apply_chat_template(c, tokenize=False,
                                                       add_generation_prompt=True)
                    for c in conversations]
        return self.run.version.render_prompts(conversations)

    def prompts_of(self, rows: list[Row]) -> list[str]:
        return self.prompt_texts([prompt_messages(r) for r in rows])

    def encode_prompts(self, prompts: list[str]) -> list[list[int]]:
        """Token ids of each prompt (BOS as in training), keeping the end of a prompt longer
        than the run's max length (training kept the end of a conversation too)."""
        ids = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        return [x[-self.max_length:] for x in ids]

    def left_padded(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        return input_ids.to(self.device), mask.to(self.device)

    # --- classification -------------------------------------------------------------------

    def classify(self, texts: list[str], progress: Progress | None = None) -> np.ndarray:
        """(rows, labels) probabilities from a classifier's head."""
        if not self.run.is_classifier:
            raise TrainError(f"{self.run.path} is a {self.run.method} run, not a classifier")
        enc = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        out = np.zeros((len(texts), len(self.run.labels)), np.float32)
        for rows in batches_by_length([len(x) for x in enc], self.batch_size):
            batch = self.tokenizer.pad({"input_ids": [enc[i] for i in rows]},
                                       return_tensors="pt").to(self.device)
            with torch.inference_mode():
                logits = self.model(**batch).logits
            out[rows] = torch.softmax(logits.float(), -1).cpu().numpy()
            if progress:
                progress(len(rows))
        return out

    def label_token_ids(self) -> list[int]:
        first = self.run.info.get("label_first_tokens") or {}
        ids = [first.get(label, -1) for label in self.run.labels]
        if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
            raise TrainError(f"{self.run.path}: this SFT run cannot score labels (its labels' "
                             "first answer tokens are not distinct); use generation")
        return ids

    def score_labels(self, rows: list[Row], progress: Progress | None = None) -> np.ndarray:
        """(rows, labels) probabilities: the next-token distribution at the start of the
        answer, renormalised over the labels' first tokens."""
        label_ids = torch.tensor(self.label_token_ids(), device=self.device)
        ids = self.encode_prompts(self.prompts_of(rows))
        out = np.zeros((len(rows), len(label_ids)), np.float32)
        for batch in batches_by_length([len(x) for x in ids], self.batch_size):
            input_ids, mask = self.left_padded([ids[i] for i in batch])
            with torch.inference_mode():
                logits = self.model(input_ids=input_ids, attention_mask=mask).logits[:, -1]
            out[batch] = torch.softmax(logits[:, label_ids].float(), -1).cpu().numpy()
            if progress:
                progress(len(batch))
        return out

    def probabilities(self, rows: list[Row], progress: Progress | None = None) -> np.ndarray:
        """Label probabilities of labelled rows, by whichever way this run reads labels."""
        if self.run.is_classifier:
            return self.classify([r["text"] for r in rows], progress)
        return self.score_labels(rows, progress)

    # --- generation -----------------------------------------------------------------------

    def generate(self, rows: list[Row], settings: GenerationSettings | None = None,
                 progress: Progress | None = None) -> list[str]:
        """The answer to each row's prompt, stopping at EOS or `max_new_tokens`."""
        if self.run.is_classifier:
            raise TrainError(f"{self.run.path} is a classifier run: it predicts labels and "
                             "cannot generate text")
        settings = settings or GenerationSettings()
        ids = self.encode_prompts(self.prompts_of(rows))
        return self.generate_ids(ids, settings, progress)

    def generate_ids(self, ids: list[list[int]], settings: GenerationSettings,
                     progress: Progress | None = None) -> list[str]:
        """Generation from token ids (the server encodes its own prompts)."""
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        out: list[str] = [""] * len(ids)
        eos = self.tokenizer.eos_token_id
        for batch in batches_by_length([len(x) for x in ids], self.batch_size):
            input_ids, mask = self.left_padded([ids[i] for i in batch])
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=input_ids, attention_mask=mask,
                    max_new_tokens=settings.max_new_tokens, use_cache=True,
                    eos_token_id=eos, pad_token_id=self.tokenizer.pad_token_id,
                    **settings.kwargs())
            new = generated[:, input_ids.shape[1]:].cpu().tolist()
            for i, tokens in zip(batch, new, strict=True):
                if eos in tokens:
                    tokens = tokens[:tokens.index(eos)]
                out[i] = self.tokenizer.decode(tokens, skip_special_tokens=True)
            if progress:
                progress(len(batch))
        return out

    # --- losses ---------------------------------------------------------------------------

    def losses(self, rows: list[Row], progress: Progress | None = None) -> np.ndarray:
        """Per example: the mean answer-token loss (SFT) or the gold label's cross-entropy
        (classifier; rows need `label`). NaN for a row with no answer tokens."""
        return self.losses_with_tokens(rows, progress)[0]

    def losses_with_tokens(self, rows: list[Row], progress: Progress | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
        """`losses` and each example's answer tokens (1 for a classifier's row): a split's
        loss is their token-weighted mean, as training's (`metrics.eval_metrics`)."""
        if self.run.is_classifier:
            probs = self.classify([r["text"] for r in rows], progress)
            gold = np.array([self.run.labels.index(r["label"]) for r in rows])
            losses = -np.log(np.clip(probs[np.arange(len(rows)), gold], 1e-12, None))
            return losses, np.ones(len(rows), np.int64)
        tokenizer = SFTTokenizer(self.tokenizer, self.max_length, self.use_chat_template)
        columns = {k: [r[k] for r in rows] for k in ("messages", "prompt", "completion")}
        encoded = tokenizer(columns)
        out = np.full(len(rows), np.nan)
        tokens = np.zeros(len(rows), np.int64)
        pad = self.tokenizer.pad_token_id
        for batch in batches_by_length([len(x) for x in encoded["input_ids"]], self.batch_size):
            rows_ids = [encoded["input_ids"][i] for i in batch]
            width = max(len(x) for x in rows_ids)
            ids = torch.tensor([x + [pad] * (width - len(x)) for x in rows_ids],
                               device=self.device)
            mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in rows_ids],
                                device=self.device)
            labels = torch.tensor([encoded["labels"][i] + [IGNORE] * (width - len(x))
                                   for i, x in zip(batch, rows_ids, strict=True)],
                                  device=self.device)
            with torch.inference_mode():
                logits = self.model(input_ids=ids, attention_mask=mask).logits
            flat = labels.reshape(-1)
            example = torch.arange(len(batch), device=self.device).repeat_interleave(width)
            sums = answer_losses(EvalBatch(logits.reshape(-1, logits.shape[-1]), flat, example,
                                           len(batch),
                                           torch.nonzero(flat != IGNORE).squeeze(1)))
            mean = (sums[:, 0] / sums[:, 1]).cpu().numpy()
            counts = sums[:, 1].cpu().numpy()
            out[batch] = np.where(counts > 0, mean, np.nan)
            tokens[batch] = counts.astype(np.int64)
            if progress:
                progress(len(batch))
        return out, tokens
