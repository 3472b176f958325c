"""One text per row, whatever the kind: what language ID, filters and dedup look at.

classification: the text; instruction: prompt and response; chat: every turn of the whole
conversation. Built with Arrow list kernels, no per-row Python.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def row_text(table: pa.Table, kind: str) -> pa.Array:
    """The row's whole text, turns or fields joined by newlines."""
    if kind == "classification":
        return table.column("text").combine_chunks()
    if kind == "instruction":
        return pc.binary_join_element_wise(table.column("prompt").combine_chunks(),
                                           table.column("response").combine_chunks(), "\n")
    messages = table.column("messages").combine_chunks()
    contents = pa.ListArray.from_arrays(messages.offsets, messages.flatten().field("content"))
    return pc.binary_join(contents, "\n")


def normalise_for_dedup(texts: pa.Array) -> pa.Array:
    """Case and punctuation folded; whitespace is folded by splitting into words afterwards
    (dedup hashes word sequences), so trivially different copies compare equal."""
    return pc.replace_substring_regex(pc.utf8_lower(texts), r"[^\p{L}\p{N}\s]+", "")
