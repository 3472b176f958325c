"""The text dedup compares: what "the same text" means for exact and near duplicates.

Each kind's whole text (`RecordKind.row_text`) is case- and punctuation-folded here; whitespace
is folded by splitting into words afterwards (dedup hashes word sequences).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def normalise_for_dedup(texts: pa.Array) -> pa.Array:
    """Case and punctuation folded, so trivially different copies compare equal."""
    return pc.replace_substring_regex(pc.utf8_lower(texts), r"[^\p{L}\p{N}\s]+", "")
