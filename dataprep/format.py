"""Add the training view to every row: `messages`, `prompt` and `completion`.

`messages` (OpenAI format) is the template-free view a trainer renders with a model's own chat
template; `prompt`/`completion` is TRL's prompt-completion format rendered with the version's
template (`alpaca` or `chatml`). Classification rows become an instruction whose completion is the
label; instruction rows become a two-turn conversation. Rendering is vectorised: each message is
wrapped by its role's template pieces, then joined per row with Arrow list kernels.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import settings
from .kinds import RecordKind

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


def format_table(table: pa.Table, kind: RecordKind, opts: settings.Format, labels: list[str]
                 ) -> pa.Table:
    """Replace the kind's source columns by the training view, keeping the ones the kind keeps
    (classification: text and label; the raw prompt and response of instruction rows live on in
    `messages`)."""
    messages = kind.to_messages(table, opts.classification_prompt, labels)
    prompt, completion = render(messages, opts.template)
    keep = ["id", "source", *kind.kept_columns]
    dropped = {*keep, "meta", *kind.columns}
    columns = {name: table.column(name) for name in keep}
    columns.update({name: table.column(name) for name in table.column_names
                    if name not in dropped})
    columns.update(
        messages=messages, prompt=prompt, completion=completion, meta=table.column("meta")
    )
    return pa.table(columns)
