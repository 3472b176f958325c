"""The record kinds, one module each; `get_kind(name)` is how the pipeline reaches them.

To add a kind: a module with a `RecordKind` subclass, its schema `schemas/<name>.schema.json`,
and one line in `_REGISTRY` below.
"""

from __future__ import annotations

from .base import MESSAGE_TYPE, RecordKind
from .chat import Chat
from .classification import Classification
from .instruction import Instruction

_REGISTRY: dict[str, RecordKind] = {k.name: k for k in (Classification(), Instruction(), Chat())}
#: Kind names in detection order (the first whose required fields a row has wins).
KINDS = tuple(_REGISTRY)


def get_kind(name: str) -> RecordKind:
    return _REGISTRY[name]


def canonical_fields() -> list[str]:
    """Field names a recipe's `fields:` may map: `id` and every kind's own and extra fields."""
    names = ["id"]
    for kind in _REGISTRY.values():
        names += [n for n in (*kind.columns, *kind.extra_mappable_fields) if n not in names]
    return names


__all__ = ["KINDS", "MESSAGE_TYPE", "RecordKind", "canonical_fields", "get_kind"]
