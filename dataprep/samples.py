"""Capped example lists: the first few items per reason, for the report.

The report shows a handful of examples per reason (rejected rows, removed rows, rejected
augmentation candidates); every row is already recorded in full in `rejected.jsonl` and
`removed.jsonl`, so the report keeps only the first `cap` it sees of each reason, in the order seen,
which keeps it small and the same from run to run. One helper, so every stage caps the same way.
"""

from __future__ import annotations

from typing import Any


def add_capped(bucket: dict[str, list], key: str, item: Any, cap: int) -> bool:
    """Append `item` to `bucket[key]` unless that list already holds `cap` items.

    Returns whether the item was kept; a caller whose item is costly to build can check
    `has_room` first and build it only then.
    """
    items = bucket.setdefault(key, [])
    if len(items) >= cap:
        return False
    items.append(item)
    return True


def has_room(bucket: dict[str, list], key: str, cap: int) -> bool:
    """Whether `add_capped(bucket, key, ..., cap)` would keep an item now."""
    return len(bucket.get(key, ())) < cap
