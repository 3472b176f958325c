"""Add the training view to every row: `messages`, `prompt` and `completion`.

`messages` (OpenAI format) is the template-free view a trainer renders with a model's own chat
template; `prompt`/`completion` is TRL's prompt-completion format rendered with the version's
template (`alpaca` or `chatml`). Classification rows become an instruction whose completion is the
label; instruction rows become a two-turn conversation. Rendering is vectorised: each message is
wrapped by its role's template pieces, then joined per row with Arrow list kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .validate import MESSAGE_TYPE

# Each role's text is "<before>{content}<after>". `generation` opens the assistant turn the model
# must complete; `completion` wraps the learned answer (it carries the end-of-turn marker).
TEMPLATES: dict[str, dict[str, str]] = {
    "alpaca": {
        "system": "{content}\n\n",
        "user": "### Instruction:\n{content}\n\n### Response:\n",
        "assistant": "{content}\n\n",
        "tool": "### Input:\n{content}\n\n",
        "generation": "",
        "completion": "{content}",
    },
    "chatml": {
        "system": "<|im_start|>system\n{content}<|im_end|>\n",
        "user": "<|im_start|>user\n{content}<|im_end|>\n",
        "assistant": "<|im_start|>assistant\n{content}<|im_end|>\n",
        "tool": "<|im_start|>tool\n{content}<|im_end|>\n",
        "generation": "<|im_start|>assistant\n",
        "completion": "{content}<|im_end|>",
    },
}
ROLES = ("system", "user", "assistant", "tool")


def _wrap(content: pa.Array, piece: str) -> pa.Array:
    before, after = piece.split("{content}")
    return pc.binary_join_element_wise(before, content, after, "")


def _fill(template: str, field: str, values: pa.Array) -> pa.Array:
    """Substitute a column into every `{field}` of a template, vectorised."""
    parts = template.split("{" + field + "}")
    pieces: list[Any] = [parts[0]]
    for part in parts[1:]:
        pieces += [values, part]
    return pc.binary_join_element_wise(*pieces, "")


def _two_turns(user: pa.Array, assistant: pa.Array) -> pa.Array:
    n = len(user)
    roles = pa.array(np.tile(np.array(["user", "assistant"], dtype=object), n), pa.string())
    contents = pc.take(
        pa.concat_arrays([user, assistant]),
        pa.array(np.column_stack([np.arange(n), np.arange(n) + n]).ravel()),
    )
    structs = pa.StructArray.from_arrays([roles, contents], names=["role", "content"])
    return pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), structs)


def to_messages(
    table: pa.Table, kind: str, recipe_format: dict[str, Any], labels: list[str]
) -> pa.Array:
    """The conversation view of any kind of row."""
    if kind == "chat":
        return table.column("messages").combine_chunks().cast(MESSAGE_TYPE)
    if kind == "instruction":
        return _two_turns(
            table.column("prompt").combine_chunks(), table.column("response").combine_chunks()
        )
    template = recipe_format["classification_prompt"].replace("{labels}", ", ".join(labels))
    prompt = _fill(template, "text", table.column("text").combine_chunks())
    return _two_turns(prompt, table.column("label").combine_chunks())


def render(messages: pa.Array, template_name: str) -> tuple[pa.Array, pa.Array]:
    """Render conversations to (prompt, completion): every turn before the last assistant turn,
    then that turn as the completion."""
    template = TEMPLATES[template_name]
    flat = messages.flatten()
    roles, contents = flat.field("role"), flat.field("content")
    parents = pc.list_parent_indices(messages).to_numpy()
    position = np.arange(len(flat)) - messages.offsets.to_numpy()[:-1][parents]
    is_assistant = pc.equal(roles, "assistant").to_numpy(zero_copy_only=False)

    n = len(messages)
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, parents[is_assistant], position[is_assistant])

    rendered = pa.nulls(len(flat), pa.string())
    for role in ROLES:
        mask = pc.equal(roles, role)
        rendered = pc.if_else(mask, _wrap(contents, template[role]), rendered)
    before_last = position < last[parents]
    kept = pc.filter(rendered, pa.array(before_last))
    counts = np.bincount(parents[before_last], minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), kept), "")
    prompt = pc.binary_join_element_wise(joined, template["generation"], "")

    starts = messages.offsets.to_numpy()[:-1]
    answer = pc.take(contents, pa.array(starts + np.maximum(last, 0)))
    completion = _wrap(answer, template["completion"])
    return prompt, completion


def format_table(
    table: pa.Table, kind: str, recipe_format: dict[str, Any], labels: list[str]
) -> pa.Table:
    """Replace the kind's source columns by the training view, keeping text/label for
    classification (the raw prompt and response of instruction rows live on in `messages`)."""
    messages = to_messages(table, kind, recipe_format, labels)
    prompt, completion = render(messages, recipe_format["template"])
    keep = ["id", "source"] + (["text", "label"] if kind == "classification" else [])
    extra = [
        c for c in table.column_names if c not in keep + ["meta", "messages", "prompt", "response"]
    ]
    columns = {name: table.column(name) for name in keep + extra}
    columns.update(
        messages=messages, prompt=prompt, completion=completion, meta=table.column("meta")
    )
    return pa.table(columns)
