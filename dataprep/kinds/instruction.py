"""`instruction`: a prompt and the response to learn. Both are cleaned and make the row's text;
only the prompt is augmented (an answer is never rewritten)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import RecordKind, empty_reasons, set_column, single_column, two_turns


class Instruction(RecordKind):
    name = "instruction"
    columns = {"prompt": pa.string(), "response": pa.string()}

    def row_text(self, table):
        return pc.binary_join_element_wise(table.column("prompt").combine_chunks(),
                                           table.column("response").combine_chunks(), "\n")

    def clean(self, table, clean_text):
        for name in ("prompt", "response"):
            table = set_column(table, name, clean_text(single_column(table, name)))
        return table

    def empty_after_clean(self, table):
        return empty_reasons(table, ["prompt", "response"])

    def text_units(self, table):
        return table.column("prompt").combine_chunks(), np.arange(table.num_rows)

    def with_units(self, table, units):
        return set_column(table, "prompt", units)

    def to_messages(self, table, classification_prompt, labels):
        return two_turns(table.column("prompt").combine_chunks(),
                         table.column("response").combine_chunks())
