"""The causal LM's training loss without its logits tensor.

Why: a causal LM's forward returns logits at every position of the batch, and its loss takes a
float32 copy of them and a log-softmax of the same size, which backward keeps. For SmolLM2 (a
49k vocabulary) on a packed batch of 16 support chats that is several GB, twenty times the
model's weights, and almost all of it is spent on prompt tokens whose label is -100 anyway.

Here the model runs for its final hidden states only (`logits_to_keep=1`: one position of
logits), the hidden states are cut down to the positions whose next-token label is a real
label, and those go through the output embedding in chunks of `CHUNK` positions, each chunk's
cross-entropy under activation checkpointing: the forward keeps no chunk's logits and the
backward recomputes one chunk at a time. The result is the model's own loss (the same shift,
the same sum over `num_items_in_batch` or mean, bf16 logits upcast as transformers does);
`tests/test_train.py` pins it against `model(**batch).loss`, packed and padded.

The model is called through whatever wraps it (peft, DDP, torch.compile), so gradient
synchronisation and adapters behave as in a plain forward; the output embedding is the
unwrapped model's `get_output_embeddings()` (a LoRA-wrapped `lm_head` included). A model whose
logits are not simply the output embedding of its last hidden state (logit scaling or soft
capping, a loss other than transformers' causal LM loss) keeps the plain loss.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from .data import IGNORE

#: Positions whose logits exist at once, in forward and backward: 1024 x a 49k vocabulary in
#: float32 is 200 MB, and at 152k (Qwen) 620 MB; large enough for the GPU to stay busy.
CHUNK = 1024
#: Config fields through which a model changes its logits after the output embedding.
LOGIT_CHANGES = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def base_model(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def chunkable(model) -> bool:
    """Whether the chunked loss equals this model's own: a causal LM whose loss is
    transformers' causal LM loss over `lm_head(last hidden state)` and whose forward takes
    `logits_to_keep`."""
    from transformers.loss.loss_utils import ForCausalLMLoss

    base = base_model(model)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if head is None or "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return False
    if getattr(base, "loss_function", None) is not ForCausalLMLoss:
        return False
    config = base.config
    return all(getattr(config, name, None) in (None, 1, 1.0) for name in LOGIT_CHANGES)


def next_token_labels(labels: torch.Tensor) -> torch.Tensor:
    """The label each position predicts (the next one; -100 after the last), as transformers
    shifts them. Packed rows carry -100 at each example's first token, so no prediction
    crosses examples."""
    return torch.nn.functional.pad(labels, (0, 1), value=IGNORE)[..., 1:]


def _chunk_nll(head, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(head(hidden).float(), labels, reduction="sum")


def chunked_loss(hidden: torch.Tensor, labels: torch.Tensor, head,
                 num_items: torch.Tensor | int | None = None, chunk: int = CHUNK
                 ) -> torch.Tensor:
    """Cross-entropy of `head(hidden)` against the next-token labels, summed over the labelled
    positions only and divided by `num_items` (when given, as transformers does under
    gradient accumulation) or by their count."""
    targets = next_token_labels(labels)
    keep = targets != IGNORE
    picked, wanted = hidden[keep], targets[keep]
    total = hidden.new_zeros((), dtype=torch.float32)
    for h, y in zip(picked.split(chunk), wanted.split(chunk), strict=True):
        # checkpointed: the chunk's logits are freed after its loss and rebuilt in backward
        total = total + torch.utils.checkpoint.checkpoint(_chunk_nll, head, h, y,
                                                          use_reentrant=False)
    if not picked.numel():  # no label in the batch: zero, still attached to the graph
        total = total + hidden.sum() * 0
    if num_items is None:
        return total / keep.sum().clamp(min=1)
    if torch.is_tensor(num_items):
        num_items = num_items.to(total.device)
    return total / num_items


class ChunkedLoss:
    """`Trainer.compute_loss` for a causal LM, minus the logits: see the module docstring.

    `__call__` returns None where the plain loss must be used (no labels, a model the chunked
    loss does not fit, or a model whose last hidden state turns out not to give its logits:
    checked once, on the first batch, against the one position of logits the model returns)."""

    def __init__(self, model) -> None:
        self.usable = chunkable(model)
        self.checked = False

    def __call__(self, model, inputs: dict[str, Any], head, num_items, full_logits: bool):
        if not self.usable or "labels" not in inputs:
            return None
        rest = {k: v for k, v in inputs.items() if k != "labels"}
        outputs = model(**rest, output_hidden_states=True, logits_to_keep=0 if full_logits else 1)
        hidden = outputs.hidden_states[-1]
        if not self.checked:
            self.checked = True
            with torch.no_grad():
                mine = head(hidden[:, -1:]).float()
            # loose enough for bf16 kernels, far tighter than any logit scaling or capping
            if not torch.allclose(mine, outputs.logits[:, -1:].float(), rtol=2e-2, atol=2e-2):
                self.usable = False
                return None
        loss = chunked_loss(hidden, inputs["labels"], head, num_items)
        return loss, outputs
