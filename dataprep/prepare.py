"""Raw rows prepared as a version's rows, for a model trained on that version to predict on.

`train predict --input FILE` must show the model what it was trained on: the same validation,
cleaning (PII included) and formatting as `dataprep run` with the version's own recipe, through
the same functions (`sources.raw_batches`, `validate.validate_rows`, `clean.CleanStage`,
`format.format_table`), not a second copy. The corpus-wide steps (language and quality filters,
custom stages, dedup, split, augmentation) are not applied: a user asks for a prediction of
every valid row, and a filter's verdict on a row is no reason to withhold one. What validation
rejects and what cleaning empties are returned with their reasons, as `dataprep` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .clean import CleanStage
from .errors import DataprepError
from .format import format_table, render
from .ingest import RawRow, check_inputs, read_batches
from .kinds import RecordKind, get_kind
from .recipe import resolve_recipe
from .settings import Recipe
from .sources import source_label
from .stage import Batch, run_stages
from .validate import Mapping, canonicalise, detect_kind, validate_rows

#: Stands in for the label of an unlabelled row of a labelled kind while it is validated and
#: formatted (new rows to predict on have no label); the prepared row's label is then null.
NO_LABEL = "\ue000no label\ue000"  # private use: survives the label cleaning, never a real label


@dataclass
class Prepared:
    """Prepared rows (the version's columns: id, source, messages, prompt, completion, and the
    kind's kept columns such as text and label, null where the input had none), and every row
    that did not make it, with why."""

    table: pa.Table
    rejected: list[dict[str, Any]] = field(default_factory=list)   # validation, as rejected.jsonl
    removed: list[dict[str, Any]] = field(default_factory=list)    # cleaning, as removed.jsonl
    rows_read: int = 0


def version_recipe(manifest: dict[str, Any]) -> Recipe:
    """The recipe a version was made with, from its manifest, with the kind fixed to the
    version's."""
    recorded = {k: v for k, v in manifest["recipe"].items()
                if k not in ("custom_stage_sources", "exclude_sources", "decontaminate_sources")}
    return resolve_recipe({**recorded, "kind": manifest["kind"]}, "the version's recipe")


def with_placeholder_labels(rows: list[RawRow], kind: RecordKind, mapping: Mapping) -> None:
    """Give unlabelled rows of a labelled kind the `NO_LABEL` stand-in (in place)."""
    if kind.label_column is None:
        return
    source_name = mapping.fields.get(kind.label_column, kind.label_column)
    for row in rows:
        if isinstance(row.obj, dict) and kind.label_column not in canonicalise(row.obj, mapping):
            row.obj[source_name] = NO_LABEL


def check_kind(rows: list[RawRow], kind: RecordKind, recipe: Recipe, source: str) -> None:
    """A file whose rows carry another kind's fields is a one-line error, not all-rejects."""
    sample = [r.obj for r in rows[:200] if isinstance(r.obj, dict)]
    detect = recipe.model_copy(update={"kind": None})
    found = detect_kind(sample, detect) if sample else None
    if found is not None and found != kind.name:
        raise DataprepError(f"{source}: holds {found} records, but the model was trained on "
                            f"{kind.name} records")


def prepare_inputs(inputs: list[str | Path], manifest: dict[str, Any], labels: list[str]
                   ) -> Prepared:
    """Validate, clean and format raw input files with the recipe recorded in a version's
    manifest; an input of another record kind than the version's is a one-line error."""
    recipe = version_recipe(manifest)
    kind = get_kind(manifest["kind"])
    mapping = Mapping.for_kind(kind.name, recipe)
    out, parts = Prepared(pa.table({})), []
    for path in check_inputs(inputs):
        source = source_label(path)
        for i, rows in enumerate(read_batches(path, max_row_bytes=recipe.max_row_bytes)):
            with_placeholder_labels(rows, kind, mapping)
            if i == 0:
                check_kind(rows, kind, recipe, source)
            out.rows_read += len(rows)
            table, rejects = validate_rows(rows, source, mapping)
            out.rejected += [r.as_dict() for r in rejects]
            if not table.num_rows:
                continue
            done = run_stages([CleanStage(recipe.clean)], Batch(table, kind))
            out.removed += done.removed
            if done.batch.table.num_rows:
                parts.append(format_table(done.batch.table, kind, recipe.format, labels))
    if parts:
        out.table = unlabel(pa.concat_tables(parts, promote_options="permissive"), kind)
    return out


def unlabel(table: pa.Table, kind: RecordKind) -> pa.Table:
    """The stand-in label back to null, with no reference answer for those rows: no
    `completion`, and the conversation ends at the user's turn."""
    if kind.label_column is None or kind.label_column not in table.column_names:
        return table
    missing = pc.equal(table.column(kind.label_column), NO_LABEL)
    if not pc.any(missing).as_py():
        return table
    for name in (kind.label_column, "completion"):
        values = table.column(name)
        table = table.set_column(table.column_names.index(name), name,
                                 pc.if_else(missing, pa.scalar(None, values.type), values))
    messages = table.column("messages")
    trimmed = [m[:-1] if gone else m for m, gone in zip(messages.to_pylist(),
                                                        missing.to_pylist(), strict=True)]
    return table.set_column(table.column_names.index("messages"), "messages",
                            pa.array(trimmed, messages.type))


def render_prompts(conversations: list[list[dict[str, str]]], manifest: dict[str, Any]
                   ) -> list[str]:
    """Prompts in the version's template: `format.render` takes the last assistant turn as the
    completion, so an empty one is appended to each conversation and its prompt kept."""
    template = version_recipe(manifest).format.template
    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    closed = [[*c, {"role": "assistant", "content": ""}] for c in conversations]
    prompts, _ = render(pa.array(closed, pa.list_(message)), template)
    return prompts.to_pylist()
