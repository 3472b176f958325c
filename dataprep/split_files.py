"""The split files of a version being written: one Arrow stream a split, straight into the layout
`DatasetDict.save_to_disk` makes (so an empty split still loads), with the per-split counts and
lengths the report needs gathered as rows go by: the whole text's, each field's (`field_lengths`)
and, where the recipe names a tokenizer, tokens (`token_lengths`). Every row also gets its split
unit (`unit`, int64: the plan's connected component of near-duplicate cluster and `group_by`
group; an augmented row has its parent's), so k-fold cross-validation can keep each unit inside
one fold."""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import DataprepError
from .kinds import RecordKind
from .lineage import LINEAGE_DIR, SPLIT_INFO_FILE
from .report import RunCounts
from .settings import Report
from .store import SPLITS

SPLIT_DATA_FILE = "data-00000-of-00001.arrow"
UNIT_COLUMN = "unit"
DATASET_INFO = "dataset_info.json"


def label_counts(table: pa.Table, column: str) -> dict[str, int]:
    """Rows per label."""
    values, counts = np.unique(table.column(column).to_numpy(zero_copy_only=False),
                               return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def _lengths(values: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.utf8_length(values), 0).to_numpy(zero_copy_only=False).astype(np.int32)


def field_lengths(table: pa.Table, kind: RecordKind) -> dict[str, np.ndarray]:
    """Per formatted row, the lengths a person reads its kind by: a labelled row's `text` in
    characters; a conversation's (chat, and an instruction row's two turns) `prompt` (every turn
    before the last assistant turn) and `response` (that turn) in characters, as training splits
    them (`format.render`), and its `turns`."""
    if kind.label_column:
        return {"text": _lengths(table.column("text").combine_chunks())}
    messages = table.column("messages").combine_chunks()
    flat = messages.flatten()
    chars = _lengths(flat.field("content"))
    parents = pc.list_parent_indices(messages).to_numpy()
    offsets = messages.offsets.to_numpy()
    position = np.arange(len(flat)) - (offsets[:-1] - offsets[0])[parents]
    assistant = pc.equal(flat.field("role"), "assistant").to_numpy(zero_copy_only=False)
    n = len(messages)
    last = np.full(n, -1, np.int64)
    np.maximum.at(last, parents[assistant], position[assistant])
    answer, before = position == last[parents], position < last[parents]
    return {"prompt": np.bincount(parents[before], weights=chars[before], minlength=n)
            .astype(np.int32),
            "response": np.bincount(parents[answer], weights=chars[answer], minlength=n)
            .astype(np.int32),
            "turns": np.diff(offsets).astype(np.int32)}


def role_counts(table: pa.Table) -> dict[str, int]:
    """Messages per role of the rows' conversations."""
    roles = table.column("messages").combine_chunks().flatten().field("role")
    counted = pc.value_counts(roles)
    return dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(),
                    strict=True))


@cache
def load_tokenizer(name: str):
    """The tokenizer the recipe's `report.tokenizer` names, once a process and offline (a hub id
    must already be in the local cache): the report must not make a run reach the network."""
    from transformers import AutoTokenizer

    from common.errors import UserError
    from common.models import load_pretrained, resolve_model

    try:
        return load_pretrained(AutoTokenizer, resolve_model(name), local_files_only=True)
    except UserError as exc:
        raise DataprepError(f"recipe report.tokenizer: {exc}") from None


def token_lengths(tokenizer, table: pa.Table, kind: RecordKind) -> dict[str, np.ndarray]:
    """Tokens (no special tokens added) of what training reads of each formatted row: a labelled
    row's `text` (a classifier's input); otherwise its `prompt` and `completion` in the version's
    template, and their sum `total`."""
    def count(column: str) -> np.ndarray:
        texts = table.column(column).to_pylist()
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        return np.array([len(x) for x in ids], np.int32)

    if kind.label_column:
        return {"text": count("text")}
    prompt, completion = count("prompt"), count("completion")
    return {"prompt": prompt, "completion": completion, "total": prompt + completion}


class SplitWriters:
    """The three split files being written, and the per-split counts the report needs."""

    def __init__(self, tmp: Path, schema: pa.Schema, kind: RecordKind, run: RunCounts,
                 report: Report | None = None):
        """`schema` is the formatted rows'; the files' schema adds the `unit` column. Token
        lengths are measured when `report` names a tokenizer."""
        schema = schema.append(pa.field(UNIT_COLUMN, pa.int64()))
        self.tmp, self.schema, self.kind, self.run = tmp, schema, kind, run
        self.tokenizer = load_tokenizer(report.tokenizer) if report and report.tokenizer else None
        self.writers: dict[str, Any] = {}
        for split in SPLITS:
            (tmp / split).mkdir()
            self.writers[split] = pa.ipc.new_stream(str(tmp / split / SPLIT_DATA_FILE), schema)
        self.chars: dict[str, list] = {s: [] for s in SPLITS}
        self.words: dict[str, list] = {s: [] for s in SPLITS}

    def write(self, table: pa.Table, texts: pa.Array, split: np.ndarray, unit: np.ndarray
              ) -> None:
        """Route formatted rows (with their whole texts) to the split of each row (0/1/2),
        each with its split unit."""
        table = table.append_column(UNIT_COLUMN, pa.array(unit, pa.int64()))
        for code, name in enumerate(SPLITS):
            mask = pa.array(split == code)
            part = table.filter(mask)
            if part.num_rows == 0:
                continue
            self.writers[name].write_table(part.cast(self.schema))
            self.run.output[name] += part.num_rows
            if self.kind.label_column:
                self.run.labels[name].update(label_counts(part, self.kind.label_column))
            self.run.output_langs[name].update(part.column("lang").to_pylist())
            body = texts.filter(mask)
            self.chars[name].append(pc.utf8_length(body).to_numpy(zero_copy_only=False))
            self.words[name].append(pc.list_value_length(
                pc.utf8_split_whitespace(body)).to_numpy(zero_copy_only=False))
            self._measure(name, part)

    def _measure(self, split: str, part: pa.Table) -> None:
        """Each field's lengths, roles and tokens of the split's new rows, into the run's
        counts (int32 arrays: the report's quartiles and drift tests need the values), and which
        of them are input rows (drift is tested on those: augmented rows join train by design)."""
        original = pc.equal(part.column("origin"), "original").to_numpy(zero_copy_only=False)
        self.run.original_rows[split].append(original)
        if self.kind.label_column and not original.all():
            self.run.augmented_labels[split].update(
                label_counts(part.filter(pa.array(~original)), self.kind.label_column))
        for measure, values in field_lengths(part, self.kind).items():
            self.run.field_lengths[split].setdefault(measure, []).append(values)
        if not self.kind.label_column:
            self.run.roles[split].update(role_counts(part))
        if self.tokenizer is not None:
            for measure, values in token_lengths(self.tokenizer, part, self.kind).items():
                self.run.token_lengths[split].setdefault(measure, []).append(values)

    def close(self, fingerprint: str) -> dict[str, dict[str, np.ndarray]]:
        """Close the files, write the metadata `load_from_disk` reads; returns the lengths."""
        for writer in self.writers.values():
            writer.close()
        for split in SPLITS:
            _write_split_metadata(self.tmp / split, split, self.schema, fingerprint)
        (self.tmp / "dataset_dict.json").write_text(json.dumps({"splits": list(SPLITS)}),
                                                    encoding="utf-8")

        def cat(parts: list) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, np.int64)

        return {s: {"chars": cat(self.chars[s]), "words": cat(self.words[s])} for s in SPLITS}


def _write_dataset_info(split_dir: Path, schema: pa.Schema) -> None:
    """The `dataset_info.json` `datasets` writes for split files of `schema`, remembered by
    schema (and `datasets` version) in the version's lineage, whose children link the file: a
    child's rows have its parent's columns, so it writes the same bytes without importing
    `datasets` (about 1 s, a fifth of a small child's run)."""
    path, target = split_dir.parent / LINEAGE_DIR / SPLIT_INFO_FILE, split_dir / DATASET_INFO
    key = hashlib.sha256(schema.serialize().to_pybytes()
                         + version("datasets").encode()).hexdigest()
    known = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if key in known:
        target.write_text(known[key], encoding="utf-8")
        return
    import datasets  # ~1 s of imports: only where no lineage remembers this schema

    datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(schema)
                         ).write_to_directory(str(split_dir))
    if path.parent.is_dir():  # a new file, never written through a link to the parent's
        spare = path.with_name(f".{SPLIT_INFO_FILE}")
        spare.write_text(json.dumps({**known, key: target.read_text(encoding="utf-8")}),
                         encoding="utf-8")
        os.replace(spare, path)


def _write_split_metadata(split_dir: Path, split: str, schema: pa.Schema, fingerprint: str
                          ) -> None:
    """`dataset_info.json` and `state.json` as `Dataset.save_to_disk` writes them, for the Arrow
    file written in place: saving through `datasets` would copy every split once more, reading it
    through a memory map whose pages all count as the run's memory."""
    _write_dataset_info(split_dir, schema)
    state = {"_data_files": [{"filename": SPLIT_DATA_FILE}],
             "_fingerprint": f"{fingerprint}-{split}", "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": split}
    (split_dir / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
