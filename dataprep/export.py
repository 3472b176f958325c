"""`dataprep export NAME@VERSION --format FORMAT DIR`: a version's splits as the files the tools
users train with read, one clean view per split, rows in the split's order.

Why a view and not the split: a split holds every view of a row at once (`messages`, the
rendered `prompt`/`completion`, a classification row's `text` and `label`, provenance). Handed
the whole split, TRL's `SFTTrainer` chooses among them by the columns it finds: it puts the EOS
on `text`, so a classification answer is learned without one. A view holds only what one tool
reads. An empty split gets no file in the file formats (see `SplitFile`).

- `openai`: `<split>.jsonl` of `{"messages": [{"role", "content"}, ...]}`, the chat fine-tuning
  format; tool turns are refused (it takes a tool message only as the answer to an assistant's
  tool call, `tool_calls` and `tool_call_id`, which a version does not hold).
- `sharegpt`: `<split>.jsonl` of `{"id", "conversations": [{"from", "value"}, ...]}`, speakers
  `human`, `gpt`, `system`, `tool` (what `dataprep run` reads back as a chat).
- `alpaca`: `<split>.jsonl` of `{"instruction", "input", "output"}`, a chat version's with
  `system` and `history` (the earlier [user, assistant] pairs: LLaMA-Factory's Alpaca form);
  turns after the last answer are left out, as the version's `completion` leaves them.
- `trl-messages`: a `datasets` folder of `messages` only: TRL's conversational form (the
  model's chat template renders it).
- `trl-prompt-completion`: a `datasets` folder of `prompt` and `completion` only, the strings
  the version's template rendered: TRL's standard prompt-completion form, where TRL appends the
  EOS to the completion and trains on it alone (a classification row's is its label).
- `parquet` (`<split>.parquet`) and `datasets` (a folder): every column, a classification
  version's `label` a `ClassLabel` of its sorted labels (the class ids `train` gives them), so
  `train_test_split(stratify_by_column="label")` works. The store keeps label strings: its
  readers (`train`'s recipes, evaluation, folds, label issues, every version already written)
  compare strings, and class ids mean nothing across versions whose label sets differ.

DIR is built as a hidden folder beside it and renamed into place, so it never holds half an
export; its `.dataprep-export.json` says what wrote it, and only such a folder (or an empty
one) is ever replaced, with `overwrite`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import DataprepError
from .store import SPLITS, Version, open_version, store_root

#: Written into every export: what made it. Hidden, so `datasets.load_dataset(..., data_dir=DIR)`
#: does not take it for data.
MARKER_FILE = ".dataprep-export.json"
#: Rows converted to Python at a time for the JSON Lines formats.
BATCH_ROWS = 4096
#: ShareGPT's speaker of each role (`tool` has no ShareGPT name; it keeps its own).
SPEAKERS = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


@dataclass
class SplitFile:
    """One split as written: its rows and its path inside DIR (a file, or a folder); None for
    an empty split of a file format, which gets no file: `datasets.load_dataset` refuses a
    folder with an empty file ("corresponds to no data"), and OpenAI an empty upload."""

    rows: int
    path: str | None


@dataclass
class Exported:
    spec: str
    format: str
    path: Path
    splits: dict[str, SplitFile]

    def as_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "format": self.format, "path": str(self.path),
                "splits": {s: {"rows": f.rows,
                               "path": str(self.path / f.path) if f.path else None}
                           for s, f in self.splits.items()}}


def export_version(spec: str, fmt: str, out: Path, store: str | Path | None = None,
                   overwrite: bool = False) -> Exported:
    """Write `spec`'s splits in `fmt` into `out`; every check before anything is written."""
    if fmt not in FORMATS:
        raise DataprepError(f"unknown export format {fmt!r} (use one of: {', '.join(FORMATS)})")
    root = store_root(store)
    target = check_target(root, Path(out), overwrite)
    version = open_version(spec if "@" in spec else f"{spec}@latest", root)
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        with _no_progress_bars():
            splits = FORMATS[fmt](version, partial)
        _write_marker(partial, version, fmt, splits)
        _move_into_place(partial, target)
    except OSError as exc:
        raise DataprepError(f"{out}: cannot write the export "
                            f"({exc.strerror or type(exc).__name__})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return Exported(version.spec, fmt, Path(out), splits)


@contextmanager
def _no_progress_bars() -> Iterator[None]:
    """`datasets`' progress bars off while it writes: the command prints what it wrote, and a
    bar a split on stderr is noise (restored after, for a caller that wants them)."""
    from datasets import utils

    was_disabled = utils.are_progress_bars_disabled()
    utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            utils.enable_progress_bars()


def check_target(root: Path, out: Path, overwrite: bool) -> Path:
    """`out` resolved (a symbolic link's folder is written, not the link), refused when it lies
    inside the store or holds it (replacing it would delete versions), when it is a file, or
    when it holds files: an earlier export's (those its marker lists) only with `overwrite`,
    any other never."""
    target, store = out.resolve(), root.resolve()
    if target.is_relative_to(store) or store.is_relative_to(target):
        where = "inside" if target.is_relative_to(store) else "holding"
        raise DataprepError(f"{out}: {where} the store {root}, whose versions are never "
                            "rewritten; export elsewhere")
    if not target.exists():
        return target
    if not target.is_dir():
        raise DataprepError(f"{out}: is a file; give a folder to export into")
    if not any(target.iterdir()):
        return target
    foreign = sorted(_foreign_files(target))
    if foreign:
        raise DataprepError(f"{out}: holds files that no `dataprep export` wrote "
                            f"({', '.join(foreign[:3])}); remove them yourself or export into "
                            "another folder")
    if not overwrite:
        raise DataprepError(f"{out}: holds an earlier export; give --overwrite to replace it")
    return target


def _foreign_files(folder: Path) -> set[str]:
    """The entries of `folder` its export marker does not list (all of them without one): what
    replacing it would delete that no export wrote."""
    names = {p.name for p in folder.iterdir()}
    try:
        listed = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))["files"]
        return names - {MARKER_FILE, *listed}
    except (OSError, ValueError, KeyError, TypeError):  # no marker, or not one export wrote
        return names


def _move_into_place(partial: Path, target: Path) -> None:
    """Rename the finished export to `target`. An empty folder is replaced in one rename; an
    earlier export is first renamed aside (two renames: POSIX has no portable exchange), put
    back if the second fails, and removed once the new one is in place."""
    if not target.exists() or not any(target.iterdir()):
        os.rename(partial, target)
        return
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    os.rename(target, old)
    try:
        os.rename(partial, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_marker(folder: Path, version: Version, fmt: str, splits: dict[str, SplitFile]
                  ) -> None:
    from . import __version__

    files = sorted(p.name for p in folder.iterdir())
    record = {"spec": version.spec, "name": version.ref.name, "version": version.ref.version,
              "kind": version.kind, "format": fmt, "dataprep": __version__,
              "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "splits": {s: {"rows": f.rows, "path": f.path} for s, f in splits.items()},
              "files": files}
    (folder / MARKER_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


# --- the formats -------------------------------------------------------------------------------

Writer = Callable[[Version, Path], dict[str, SplitFile]]


def _arrow(version: Version, split: str) -> Any:
    """A split as one `pyarrow.Table` (memory-mapped, not copied)."""
    data = version.data[split]
    return data.with_format("arrow")[0:len(data)]


def _messages_parts(table: Any) -> tuple[Any, Any]:
    """(offsets from 0, flat turns) of the `messages` column: a slice's offsets do not start
    at 0, and `ListArray.from_arrays` wants them to."""
    import pyarrow as pa

    messages = table.column("messages").combine_chunks()
    offsets = messages.offsets.to_numpy()
    return pa.array(offsets - offsets[0], pa.int32()), messages.flatten()


def _write_jsonl(path: Path, table: Any, record: Callable[[dict], dict] | None = None) -> int:
    """Each row of `table` (through `record`, if given) as one line of JSON; returns the rows
    (orjson: fast, and non-ASCII text kept as it is)."""
    import orjson

    rows = 0
    with path.open("wb") as file:
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            lines = [orjson.dumps(record(row) if record else row) for row in batch.to_pylist()]
            file.write(b"".join(line + b"\n" for line in lines))
            rows += len(lines)
    return rows


def _jsonl_format(view: Callable[[Version, str, Any], tuple[Any, Callable | None]]) -> Writer:
    """A writer of `<split>.jsonl` files from `view(version, split, table)`: the columns to
    write and an optional per-row function."""

    def write(version: Version, folder: Path) -> dict[str, SplitFile]:
        out = {}
        for split in SPLITS:
            table = _arrow(version, split)
            if table.num_rows == 0:
                out[split] = SplitFile(0, None)
                continue
            rows = _write_jsonl(folder / f"{split}.jsonl", *view(version, split, table))
            out[split] = SplitFile(rows, f"{split}.jsonl")
        return out

    return write


def _openai_view(version: Version, split: str, table: Any) -> tuple[Any, None]:
    """Only `messages`, refused where a row has a tool turn (see the module's docstring)."""
    import numpy as np
    import pyarrow.compute as pc

    offsets, flat = _messages_parts(table)
    tool = pc.equal(flat.field("role"), "tool").to_numpy(zero_copy_only=False)
    if tool.any():
        owners = np.searchsorted(offsets.to_numpy(), np.flatnonzero(tool), side="right") - 1
        first = int(owners[0])
        raise DataprepError(
            f"openai: {np.unique(owners).size} row(s) of {split} have tool turns, which the chat "
            "fine-tuning format takes only as answers to an assistant's tool call (tool_calls, "
            "tool_call_id) that a version does not hold; the first is id "
            f"{table.column('id')[first].as_py()!r} ({table.column('source')[first].as_py()}); "
            "export as sharegpt or trl-messages")
    return table.select(["messages"]), None


def _sharegpt_view(version: Version, split: str, table: Any) -> tuple[Any, None]:
    """`id` and `conversations` of from/value turns, built with Arrow kernels."""
    import pyarrow as pa
    import pyarrow.compute as pc

    offsets, flat = _messages_parts(table)
    roles = flat.field("role")
    speaker = roles
    for role, name in SPEAKERS.items():
        speaker = pc.if_else(pc.equal(roles, role), name, speaker)
    turns = pa.StructArray.from_arrays([speaker, flat.field("content")], names=["from", "value"])
    return pa.table({"id": table.column("id"),
                     "conversations": pa.ListArray.from_arrays(offsets, turns)}), None


def alpaca_record(messages: list[dict[str, str]], with_context: bool) -> dict[str, Any] | None:
    """One conversation as Alpaca's instruction/input/output (the last answer and the user turn
    before it; with `with_context`, a leading system turn and the earlier user/assistant pairs
    as `system` and `history`), or None when its turns are not of that shape."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    turns = messages[:last + 1]
    system = turns[0]["content"] if turns and turns[0]["role"] == "system" else ""
    turns = turns[1:] if system else turns
    if not turns or [m["role"] for m in turns] != ["user", "assistant"] * (len(turns) // 2):
        return None
    record = {"instruction": turns[-2]["content"], "input": "", "output": turns[-1]["content"]}
    if not with_context:
        return record if len(turns) == 2 and not system else None
    history = [[turns[i]["content"], turns[i + 1]["content"]] for i in range(0, len(turns) - 2, 2)]
    return {**record, "system": system, "history": history}


def _alpaca_view(version: Version, split: str, table: Any) -> tuple[Any, Callable]:
    """Each row's messages through `alpaca_record`; a row Alpaca cannot hold is a one-line
    error naming it (the partial export is then removed)."""
    with_context = version.kind == "chat"

    def record(row: dict[str, Any]) -> dict[str, Any]:
        found = alpaca_record(row["messages"], with_context)
        if found is None:
            roles = ", ".join(m["role"] for m in row["messages"])
            raise DataprepError(
                f"alpaca: row {row['id']!r} ({row['source']}) of {split} has turns ({roles}) "
                "that are not an optional system turn then user/assistant pairs; export as "
                "sharegpt or openai")
        return found

    return table.select(["id", "source", "messages"]), record


def _dataset_format(columns: tuple[str, ...] | None) -> Writer:
    """A writer of a `datasets` folder (`DatasetDict.save_to_disk`) with only `columns`, or
    every column with a classification version's label as a `ClassLabel`."""

    def write(version: Version, folder: Path) -> dict[str, SplitFile]:
        from datasets import DatasetDict

        views = DatasetDict({s: _view(version, s, columns) for s in SPLITS})
        views.save_to_disk(str(folder))
        for split in SPLITS:
            if len(views[split]) == 0:
                _fill_empty_split(folder / split, views[split].features.arrow_schema)
        return {s: SplitFile(len(views[s]), s) for s in SPLITS}

    return write


def _fill_empty_split(split_dir: Path, schema: Any) -> None:
    """Give a saved empty split an Arrow file. `save_to_disk` writes none for a dataset without
    rows, and `load_from_disk` then fails on the folder (an IndexError in `concat_tables`, in
    datasets 5.2); an empty stream of the split's schema, named in its `state.json`, loads, as
    the store's own empty splits do (`split_files.py` writes them so)."""
    import pyarrow as pa

    name = "data-00000-of-00001.arrow"
    with pa.ipc.new_stream(str(split_dir / name), schema):
        pass
    state_file = split_dir / "state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    state["_data_files"] = [{"filename": name}]
    state_file.write_text(json.dumps(state, indent=2), encoding="utf-8")


def _view(version: Version, split: str, columns: tuple[str, ...] | None) -> Any:
    data = version.data[split]
    return data.select_columns(list(columns)) if columns else with_class_label(version, split)


def with_class_label(version: Version, split: str) -> Any:
    """The split with its `label` column a `ClassLabel` of the version's labels (sorted: the
    class ids `train` uses), where the version is labelled; else the split as it is.

    Built on the Arrow table (class ids by `pyarrow.compute.index_in`), not by
    `Dataset.cast_column`: that runs a `map` whose cache file would be written into the
    version's own folder, which is never rewritten."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from datasets import ClassLabel, Dataset, DatasetInfo

    data, labels = version.data[split], version.labels()
    if "label" not in data.column_names or not labels:
        return data
    table = _arrow(version, split).replace_schema_metadata(None)
    ids = pc.index_in(table.column("label"), value_set=pa.array(labels, pa.string()))
    table = table.set_column(table.schema.get_field_index("label"), "label",
                             ids.cast(pa.int64()))
    features = data.features.copy()
    features["label"] = ClassLabel(names=labels)
    return Dataset(table, info=DatasetInfo(features=features), split=split,
                   fingerprint=f"{version.ref.version}-{split}-class-label")


def _write_parquet(version: Version, folder: Path) -> dict[str, SplitFile]:
    """`<split>.parquet` of every column, through `datasets` so the file's schema metadata
    carries the features (`load_dataset("parquet", ...)` gives the `ClassLabel` back)."""
    out = {}
    for split in SPLITS:
        data = with_class_label(version, split)
        if len(data) == 0:
            out[split] = SplitFile(0, None)
            continue
        data.to_parquet(str(folder / f"{split}.parquet"))
        out[split] = SplitFile(len(data), f"{split}.parquet")
    return out


#: Each format's writer: (version, folder) -> what it wrote per split.
FORMATS: dict[str, Writer] = {
    "openai": _jsonl_format(_openai_view),
    "sharegpt": _jsonl_format(_sharegpt_view),
    "alpaca": _jsonl_format(_alpaca_view),
    "trl-messages": _dataset_format(("messages",)),
    "trl-prompt-completion": _dataset_format(("prompt", "completion")),
    "parquet": _write_parquet,
    "datasets": _dataset_format(None),
}
