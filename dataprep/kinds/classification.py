"""`classification`: a text and its label. The text is cleaned, augmented and classified; the
label is a string, NFC-normalised and trimmed; the conversation view asks for the label."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .base import RecordKind, empty_reasons, set_column, single_column, two_turns


class Classification(RecordKind):
    name = "classification"
    columns = {"text": pa.string(), "label": pa.string()}
    label_column = "label"
    kept_columns = ("text", "label")

    def row_text(self, table):
        return table.column("text").combine_chunks()

    def clean(self, table, clean_text):
        table = set_column(table, "text", clean_text(single_column(table, "text")))
        label = pc.utf8_normalize(table.column("label"), "NFC")
        return set_column(table, "label", pc.utf8_trim_whitespace(label))

    def empty_after_clean(self, table):
        return empty_reasons(table, ["text"])

    def text_units(self, table):
        return table.column("text").combine_chunks(), np.arange(table.num_rows)

    def with_units(self, table, units):
        return set_column(table, "text", units)

    def to_messages(self, table, classification_prompt, labels):
        template = classification_prompt.replace("{labels}", ", ".join(labels))
        text = table.column("text").combine_chunks()
        first, *rest = template.split("{text}")
        pieces = [first]
        for part in rest:  # every {text} of the template gets the row's text
            pieces += [text, part]
        prompt = pc.binary_join_element_wise(*pieces, "")
        return two_turns(prompt, table.column("label").combine_chunks())
