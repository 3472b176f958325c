"""From a dataset version to token ids: the version's rows, rendered with the model's chat
template, tokenized with the loss on the answer only.

SFT rows come from `messages` (rendered with the tokenizer's chat template when it has one) or
else from the version's own `prompt`/`completion`. Everything before the last assistant turn is
the prompt (labels -100); the last assistant turn is the completion, which always ends in EOS (a
model whose pad token is its EOS would otherwise never learn to stop, because collators mask pad
ids). Too-long rows lose the start of their prompt, then the end of their completion; every
truncation is counted and reported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np

from dataprep.errors import DataprepError
from dataprep.store import VersionRef, resolve, store_root

SPLITS = ("train", "validation", "test")
IGNORE = -100


@dataclass
class Version:
    ref: VersionRef
    data: datasets.DatasetDict
    manifest: dict[str, Any]
    report: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def spec(self) -> str:
        return f"{self.ref.name}@{self.ref.version}"

    def labels(self) -> list[str]:
        """The label names of a classification version, sorted (the class index order)."""
        if self.kind != "classification":
            return []
        names = set()
        for split in SPLITS:
            names.update(self.data[split].unique("label"))
        return sorted(names)


def load_version(spec: str, store: str | None = None) -> Version:
    """A version from the store by `name@latest`, `name@<id>` or a unique id prefix."""
    if "@" not in spec:
        raise DataprepError(f"{spec!r}: give a dataset version as NAME@VERSION (or NAME@latest)")
    ref = resolve(store_root(store), spec)
    path = ref.path
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    report = json.loads((path / "report.json").read_text(encoding="utf-8"))
    return Version(ref, datasets.load_from_disk(str(path)), manifest, report)


def check_method_fits(version: Version, method: str) -> None:
    """A classifier needs labelled text; SFT works on every kind (all carry `messages`)."""
    if method == "classifier" and version.kind != "classification":
        raise DataprepError(f"{version.spec} holds {version.kind} records; --method classifier "
                            "needs a classification version (text + label); use --method lora "
                            "or full for SFT")
    if version.data["train"].num_rows == 0:
        raise DataprepError(f"{version.spec}: the train split is empty")


def _completion_split(tokenizer, messages: list[dict]) -> tuple[str, str] | None:
    """(prompt text, completion text) via the chat template: the template applied to the turns
    before the last assistant turn with a generation prompt, and what the full conversation adds
    to it. None when the template does not render the prompt as a prefix of the whole."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    prompt = tokenizer.apply_chat_template(messages[:last], tokenize=False,
                                           add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages[:last + 1], tokenize=False)
    if not full.startswith(prompt):
        return None
    return prompt, full[len(prompt):].rstrip()


@dataclass
class SFTTokenizer:
    """Batched `datasets.map` function producing input_ids / labels for causal-LM SFT."""

    tokenizer: Any
    max_length: int
    use_chat_template: bool

    def texts(self, batch: dict[str, list]) -> tuple[list[str], list[str]]:
        if self.use_chat_template:
            pairs = [_completion_split(self.tokenizer, m) for m in batch["messages"]]
            if all(p is not None for p in pairs):
                return [p[0] for p in pairs], [p[1] for p in pairs]
        return list(batch["prompt"]), list(batch["completion"])

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        prompts, completions = self.texts(batch)
        tok = self.tokenizer
        prompt_ids = tok(prompts, add_special_tokens=True)["input_ids"]
        completion_ids = tok(completions, add_special_tokens=False)["input_ids"]
        eos = tok.eos_token_id
        out: dict[str, list] = {"input_ids": [], "labels": [], "truncated": []}
        for p, c in zip(prompt_ids, completion_ids, strict=True):
            if not c or c[-1] != eos:
                c = c + [eos]
            truncated = len(p) + len(c) > self.max_length
            if truncated:
                c = c[: self.max_length - 1] if len(c) >= self.max_length else c
                keep = self.max_length - len(c)
                p = p[len(p) - keep:] if keep > 0 else []
            out["input_ids"].append(p + c)
            out["labels"].append([IGNORE] * len(p) + c)
            out["truncated"].append(truncated)
        return out


def tokenize_sft(version: Version, tokenizer, max_length: int) -> tuple[datasets.DatasetDict,
                                                                         dict[str, int]]:
    """Every split tokenized for SFT; returns the splits and truncated rows per split."""
    fn = SFTTokenizer(tokenizer, max_length, bool(getattr(tokenizer, "chat_template", None)))
    columns = version.data["train"].column_names
    out = version.data.map(fn, batched=True, remove_columns=columns, desc="tokenize")
    truncated = {s: int(np.sum(out[s]["truncated"])) for s in SPLITS}
    return out.remove_columns("truncated"), truncated


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
    out = version.data.map(fn, batched=True, remove_columns=columns, desc="tokenize")
    truncated = {s: int(np.sum(out[s]["truncated"])) for s in SPLITS}
    return out.remove_columns("truncated"), truncated
