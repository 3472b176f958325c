"""The split files of a version being written: one Arrow stream a split, straight into the layout
`DatasetDict.save_to_disk` makes (so an empty split still loads), with the per-split counts and
lengths the report needs gathered as rows go by. Every row also gets its split unit (`unit`, int64:
the plan's connected component of near-duplicate cluster and `group_by` group; an augmented row
has its parent's), so k-fold cross-validation can keep each unit inside one fold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .kinds import RecordKind
from .report import RunCounts
from .store import SPLITS

SPLIT_DATA_FILE = "data-00000-of-00001.arrow"
UNIT_COLUMN = "unit"


def label_counts(table: pa.Table, column: str) -> dict[str, int]:
    """Rows per label."""
    values, counts = np.unique(table.column(column).to_numpy(zero_copy_only=False),
                               return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


class SplitWriters:
    """The three split files being written, and the per-split counts the report needs."""

    def __init__(self, tmp: Path, schema: pa.Schema, kind: RecordKind, run: RunCounts):
        """`schema` is the formatted rows'; the files' schema adds the `unit` column."""
        schema = schema.append(pa.field(UNIT_COLUMN, pa.int64()))
        self.tmp, self.schema, self.kind, self.run = tmp, schema, kind, run
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


def _write_split_metadata(split_dir: Path, split: str, schema: pa.Schema, fingerprint: str
                          ) -> None:
    """`dataset_info.json` and `state.json` as `Dataset.save_to_disk` writes them, for the Arrow
    file written in place: saving through `datasets` would copy every split once more, reading it
    through a memory map whose pages all count as the run's memory."""
    info = datasets.DatasetInfo(features=datasets.Features.from_arrow_schema(schema))
    info.write_to_directory(str(split_dir))
    state = {"_data_files": [{"filename": SPLIT_DATA_FILE}],
             "_fingerprint": f"{fingerprint}-{split}", "_format_columns": None,
             "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False,
             "_split": split}
    (split_dir / "state.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
