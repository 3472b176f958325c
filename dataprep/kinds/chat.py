"""`chat`: a conversation in the OpenAI messages format. Every turn's content is cleaned and the
whole conversation is the row's text; augmentation rewrites the user turns only; speaker names
and ShareGPT-style message keys are mapped onto role/content on the way in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..schemas import load_schema
from .base import MESSAGE_TYPE, RecordKind, set_column, single_column


def _rebuild(messages: pa.Array, roles: pa.Array, contents: pa.Array) -> pa.Array:
    structs = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.ListArray.from_arrays(messages.offsets, structs, mask=messages.is_null())


class Chat(RecordKind):
    name = "chat"
    columns = {"messages": MESSAGE_TYPE}
    extra_mappable_fields = ("role", "content")

    def canonicalise(self, record, mapping):
        if isinstance(record.get("messages"), list):
            record["messages"], extras = _canonical_messages(record["messages"], mapping)
            if extras:
                record["messages_extra"] = extras
        return record

    def row_text(self, table):
        messages = table.column("messages").combine_chunks()
        contents = pa.ListArray.from_arrays(messages.offsets, messages.flatten().field("content"))
        return pc.binary_join(contents, "\n")

    def clean(self, table, clean_text):
        messages = single_column(table, "messages")
        flat = messages.flatten()
        return set_column(table, "messages",
                          _rebuild(messages, flat.field("role"), clean_text(flat.field("content"))))

    def empty_after_clean(self, table):
        messages = table.column("messages").combine_chunks()
        empty = pc.equal(pc.utf8_length(messages.flatten().field("content")), 0)
        parents = pc.list_parent_indices(messages).to_numpy()
        reasons = np.full(table.num_rows, None, dtype=object)
        reasons[np.unique(parents[empty.to_numpy(zero_copy_only=False)])] = \
            "empty_after_clean:messages.content"
        return pa.array(reasons, pa.string())

    def text_units(self, table):
        messages = table.column("messages").combine_chunks()
        flat = messages.flatten()
        user = pc.equal(flat.field("role"), "user")
        owners = pc.list_parent_indices(messages).to_numpy()
        return flat.field("content").filter(user), owners[user.to_numpy(zero_copy_only=False)]

    def with_units(self, table, units):
        messages = table.column("messages").combine_chunks()
        flat = messages.flatten()
        user = pc.equal(flat.field("role"), "user").to_numpy(zero_copy_only=False)
        contents = flat.field("content").to_numpy(zero_copy_only=False).copy()
        contents[user] = units.to_numpy(zero_copy_only=False)
        structs = pa.StructArray.from_arrays([flat.field("role"), pa.array(contents, pa.string())],
                                             names=["role", "content"])
        rebuilt = pa.ListArray.from_arrays(messages.offsets, structs).cast(MESSAGE_TYPE)
        return set_column(table, "messages", rebuilt)

    def to_messages(self, table, classification_prompt, labels):
        return table.column("messages").combine_chunks().cast(MESSAGE_TYPE)


def apply_aliases(obj: dict[str, Any], aliases: dict[str, list[str]]) -> None:
    """Rename the first alias present to its canonical name (a schema's `x-aliases`)."""
    for canonical, names in aliases.items():
        if canonical not in obj:
            for name in names:
                if name in obj:
                    obj[canonical] = obj.pop(name)
                    break


def _canonical_messages(messages: list[Any], mapping) -> tuple[list[Any], list[Any]]:
    """Map message keys and speaker names onto role/content; keep other message keys aside."""
    aliases = load_schema("chat").get("x-message-aliases", {})
    role_field, content_field = mapping.fields.get("role"), mapping.fields.get("content")
    out, extras = [], []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        msg = dict(message)
        if role_field and role_field in msg:
            msg["role"] = msg.pop(role_field)
        if content_field and content_field in msg:
            msg["content"] = msg.pop(content_field)
        apply_aliases(msg, aliases)
        if isinstance(msg.get("role"), str):
            role = msg["role"].strip().lower()
            msg["role"] = mapping.roles.get(role, role)
        rest = {k: msg.pop(k) for k in list(msg) if k not in ("role", "content")}
        out.append(msg)
        extras.append(rest)
    return out, extras if any(extras) else []
