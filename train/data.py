"""From a dataset version to token ids: the version's rows, rendered with the model's chat
template, tokenized with the loss on the answer only.

SFT rows come from `messages` rendered with the tokenizer's chat template, or else from the
version's own `prompt`/`completion`: one format for the whole version (`sft_format`). Every
assistant turn is trained (as TRL's `assistant_only_loss`); everything else, system and user
turns and the template's markup before each answer, has labels -100. The last answer always
ends in EOS (a model whose pad token is its EOS would otherwise never learn to stop, because
collators mask pad ids). Too-long rows lose the start of the conversation, then the end of their
last answer; every truncation is counted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np

from dataprep.store import SPLITS, Version

from .errors import TrainError

IGNORE = -100
#: The two ways an SFT row is rendered; one of them for every row of a version (`sft_format`).
CHAT_TEMPLATE, PROMPT_COMPLETION = "chat_template", "prompt_completion"


def check_method_fits(version: Version, method: str) -> None:
    """A classifier needs labelled text; SFT works on every kind (all carry `messages`)."""
    labelled_text = "text" in version.data["train"].column_names and bool(version.labels())
    if method == "classifier" and not labelled_text:
        raise TrainError(f"{version.spec} holds {version.kind} records; --method classifier "
                         "needs a classification version (text + label); use --method lora "
                         "or full for SFT")
    if version.data["train"].num_rows == 0:
        raise TrainError(f"{version.spec}: the train split is empty")


def chat_segments(tokenizer, messages: list[dict]) -> list[tuple[str, bool]] | None:
    """The rendered conversation as (text, is an assistant answer) segments, context and answer
    in turn: for each assistant turn, what the template adds before it (up to and including the
    generation prompt) and then the answer it renders. None when a template does not render each
    shorter conversation as a prefix of the longer one (some drop earlier reasoning)."""
    segments, rendered = [], ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = tokenizer.apply_chat_template(messages[:i], tokenize=False,
                                               add_generation_prompt=True)
        full = tokenizer.apply_chat_template(messages[:i + 1], tokenize=False)
        if not (prompt.startswith(rendered) and full.startswith(prompt)):
            return None
        segments += [(prompt[len(rendered):], False), (full[len(prompt):], True)]
        rendered = full
    if not segments:
        return None
    segments[-1] = (segments[-1][0].rstrip(), True)
    return segments


@dataclass(frozen=True)
class SFTFormat:
    """How every row of a version is rendered for SFT, and why."""

    name: str                               # CHAT_TEMPLATE or PROMPT_COMPLETION
    chat_template_failures: int | None      # rows the template failed on; None: no template

    def run_info(self) -> dict[str, Any]:
        return {"sft_format": self.name, "chat_template_failures": self.chat_template_failures}


def sft_format(version: Version, tokenizer) -> SFTFormat:
    """The chat template if it renders every row of every split as a prefix-consistent
    conversation (`chat_segments`), else prompt/completion for every row.

    Decided once for the whole version, before tokenizing: a choice per row or per batch would
    train on two prompt formats and evaluate on a mix of them, silently. The check renders each
    conversation once more than tokenizing does; the failures are counted for `run.json`."""
    if not getattr(tokenizer, "chat_template", None):
        return SFTFormat(PROMPT_COMPLETION, None)
    failures = 0
    for split in SPLITS:
        for batch in version.data[split].select_columns(["messages"]).iter(batch_size=1000):
            failures += sum(chat_segments(tokenizer, m) is None for m in batch["messages"])
    return SFTFormat(CHAT_TEMPLATE if failures == 0 else PROMPT_COMPLETION, failures)


def truncate(ids: list[int], labels: list[int], last_answer: int, max_length: int
             ) -> tuple[list[int], list[int]]:
    """Keep the end of the conversation; where the last answer (`last_answer` tokens, EOS
    included) alone does not fit, keep one token before it and the start of the answer."""
    if last_answer >= max_length:
        start = max(len(ids) - last_answer - 1, 0)
        return ids[start:start + max_length], labels[start:start + max_length]
    return ids[-max_length:], labels[-max_length:]


@dataclass
class SFTTokenizer:
    """Batched `datasets.map` function producing input_ids / labels for causal-LM SFT, in the
    format `sft_format` chose for the version (every row, whichever batch it falls in)."""

    tokenizer: Any
    max_length: int
    use_chat_template: bool

    def segments(self, batch: dict[str, list]) -> list[list[tuple[str, bool]]]:
        if self.use_chat_template:
            rows = [chat_segments(self.tokenizer, m) for m in batch["messages"]]
            if any(r is None for r in rows):
                raise ValueError("a conversation the chat template does not render "
                                 "prefix-consistently: choose the format with sft_format")
            return rows
        return [[(p, False), (c, True)] for p, c in zip(batch["prompt"], batch["completion"],
                                                        strict=True)]

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        rows = self.segments(batch)
        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        # two tokenizer calls per batch: the first segment of each row gets the special tokens
        # (BOS), the others none
        firsts = tok([r[0][0] for r in rows], add_special_tokens=True)["input_ids"]
        rests = iter(tok([text for r in rows for text, _ in r[1:]] or [""],
                         add_special_tokens=False)["input_ids"])
        out: dict[str, list] = {"input_ids": [], "labels": [], "truncated": []}
        for row, first in zip(rows, firsts, strict=True):
            pieces = [first] + [next(rests) for _ in row[1:]]
            if not pieces[-1] or pieces[-1][-1] != eos:
                pieces[-1] = pieces[-1] + [eos]
            ids = [t for piece in pieces for t in piece]
            labels = [t if answer else IGNORE for piece, (_, answer) in zip(pieces, row,
                                                                             strict=True)
                      for t in piece]
            truncated = len(ids) > self.max_length
            if truncated:
                ids, labels = truncate(ids, labels, len(pieces[-1]), self.max_length)
            labels[0] = IGNORE  # a row's first token has no prediction (see metrics)
            out["input_ids"].append(ids)
            out["labels"].append(labels)
            out["truncated"].append(truncated)
        return out


def truncation_counts(out: datasets.DatasetDict) -> tuple[datasets.DatasetDict, dict[str, int]]:
    """The splits without their `truncated` column, and its count per split. An empty split
    (a version made with a 0 ratio) never reaches the map function, so it has no column."""
    has = {s: "truncated" in out[s].column_names for s in SPLITS}
    counts = {s: int(np.sum(out[s]["truncated"])) if has[s] else 0 for s in SPLITS}
    return datasets.DatasetDict({s: out[s].remove_columns("truncated") if has[s] else out[s]
                                 for s in SPLITS}), counts


def tokenize_sft(version: Version, tokenizer, max_length: int, fmt: SFTFormat | None = None
                 ) -> tuple[datasets.DatasetDict, dict[str, int]]:
    """Every split tokenized for SFT in `fmt` (by default `sft_format`'s choice); returns the
    splits and truncated rows per split."""
    fmt = fmt or sft_format(version, tokenizer)
    fn = SFTTokenizer(tokenizer, max_length, fmt.name == CHAT_TEMPLATE)
    columns = version.data["train"].column_names
    return truncation_counts(version.data.map(fn, batched=True, remove_columns=columns,
                                              desc="tokenize"))


def tokenize_classification(version: Version, tokenizer, max_length: int, labels: list[str]
                            ) -> tuple[datasets.DatasetDict, dict[str, int]]:
    """Text -> input_ids (truncated at max_length, counted), label -> class index."""
    index = {name: i for i, name in enumerate(labels)}

    def fn(batch: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(batch["text"], truncation=False)
        ids = enc["input_ids"]
        truncated = [len(x) > max_length for x in ids]
        cut = tokenizer(batch["text"], truncation=True, max_length=max_length)
        return {**cut, "labels": [index[x] for x in batch["label"]], "truncated": truncated}

    columns = version.data["train"].column_names
    return truncation_counts(version.data.map(fn, batched=True, remove_columns=columns,
                                              desc="tokenize"))
