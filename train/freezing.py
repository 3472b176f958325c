"""Freezing the bottom of a model: `--freeze-layers N` (the embeddings and the first N transformer
blocks) or `--train-top-layers K` (the last K blocks and everything above them: final norm,
pooler, head), and the trainable-parameter count every run reports.

The blocks are found generically, as the model's one `torch.nn.ModuleList` whose children are
the classes transformers itself refuses to split across devices (`_no_split_modules`:
`LlamaDecoderLayer` under `model.layers`, `BertLayer` under `bert.encoder.layer`, ...);
transformers 5 has no public "the layers" accessor, and this is the list its device placement
already trusts. The embeddings are `get_input_embeddings()` and every parameter registered
before the first block (BERT's position and token-type embeddings and their LayerNorm, GPT-2's
`wpe`). A causal LM whose `lm_head` is tied to the input embeddings shares one tensor with
them, so freezing the embeddings freezes that head too (run.json says so: `tied_head_frozen`).

With a LoRA adapter (`--method lora`, or a classifier with `lora_r` > 0) the base weights are
frozen anyway; freezing then means the adapter goes on the top blocks only (peft's
`layers_to_transform`), and the head stays fully trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import TrainConfig
from .errors import TrainError


@dataclass
class Freezing:
    """Which blocks a run freezes: the first `frozen` of the `depth` blocks under `stack`."""

    stack: str          # the ModuleList's path, e.g. model.layers
    depth: int
    frozen: int

    @property
    def layers_pattern(self) -> str:
        """The list's own attribute name, which peft matches in front of a block's index."""
        return self.stack.rsplit(".", 1)[-1]

    @property
    def top_blocks(self) -> list[int]:
        return list(range(self.frozen, self.depth))


def requested(cfg: TrainConfig) -> bool:
    return cfg.freeze_layers is not None or cfg.train_top_layers is not None


def block_stack(model) -> tuple[str, Any]:
    """(path, ModuleList) of the model's transformer blocks; a one-line error where there is not
    exactly one such stack (an encoder-decoder has two)."""
    import torch

    blocks = set(getattr(model, "_no_split_modules", None) or ())
    lists = [(name, module) for name, module in model.named_modules()
             if isinstance(module, torch.nn.ModuleList) and len(module)]
    stacks = [(name, module) for name, module in lists
              if all(type(child).__name__ in blocks for child in module)]
    if not stacks and lists:
        # a model that names no unsplittable blocks: the list holding most of the weights
        stacks = [max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))]
    if len(stacks) != 1:
        found = ", ".join(name for name, _ in stacks) or "none"
        raise TrainError(f"freezing layers needs one stack of transformer blocks; "
                         f"{type(model).__name__} has {len(stacks)} ({found})")
    return stacks[0]


def plan(cfg: TrainConfig, model) -> Freezing | None:
    """What the flags ask of this model, checked against its depth (None: no freezing)."""
    if not requested(cfg):
        return None
    stack, blocks = block_stack(model)
    depth = len(blocks)
    if cfg.freeze_layers is not None:
        if cfg.freeze_layers > depth:
            raise TrainError(f"--freeze-layers {cfg.freeze_layers}: {cfg.model!r} has {depth} "
                             f"transformer blocks ({stack}); use at most {depth} (which trains "
                             "only what sits above them: final norm, pooler, head)")
        return Freezing(stack, depth, cfg.freeze_layers)
    if cfg.train_top_layers > depth:
        raise TrainError(f"--train-top-layers {cfg.train_top_layers}: {cfg.model!r} has "
                         f"{depth} transformer blocks ({stack}); use at most {depth}")
    return Freezing(stack, depth, depth - cfg.train_top_layers)


def embedding_parameters(model, stack: str) -> list:
    """The input embeddings and every parameter registered before the first block."""
    chosen = {id(p): p for p in model.get_input_embeddings().parameters()}
    for name, param in model.named_parameters():
        if name.startswith(stack + "."):
            break
        chosen[id(param)] = param
    return list(chosen.values())


def freeze(model, freezing: Freezing, gradient_checkpointing: bool = False) -> None:
    """Switch off the gradients of the embeddings and the first `frozen` blocks."""
    blocks = model.get_submodule(freezing.stack)
    for param in embedding_parameters(model, freezing.stack):
        param.requires_grad_(False)
    for block in list(blocks)[:freezing.frozen]:
        for param in block.parameters():
            param.requires_grad_(False)
    if gradient_checkpointing:
        # with frozen embeddings no checkpointed block's input needs a gradient, and reentrant
        # checkpointing would then skip the backward pass through the trained blocks
        model.enable_input_require_grads()


def block_linear_names(model, freezing: Freezing) -> list[str]:
    """The names of the blocks' linear layers: what `all-linear` means inside them. peft refuses
    `layers_to_transform` with its `all-linear` shorthand (a string), and its own expansion is
    private, so the names are read off the blocks here."""
    import torch
    from transformers.pytorch_utils import Conv1D

    blocks = model.get_submodule(freezing.stack)
    return sorted({name.rsplit(".", 1)[-1] for name, module in blocks.named_modules()
                   if isinstance(module, torch.nn.Linear | Conv1D)})


def lora_layers(freezing: Freezing, cfg: TrainConfig, model) -> dict[str, Any]:
    """LoraConfig arguments that put the adapter on the unfrozen blocks only."""
    if not freezing.top_blocks:
        raise TrainError(f"--freeze-layers {freezing.frozen} freezes every block of "
                         f"{cfg.model!r}, which leaves its LoRA adapter nowhere to go; freeze at "
                         f"most {freezing.depth - 1} (or, for a classifier, --lora-r 0 to train "
                         "the head alone)")
    layers: dict[str, Any] = {"layers_to_transform": freezing.top_blocks,
                              "layers_pattern": freezing.layers_pattern}
    if cfg.target_modules == ["all-linear"]:
        layers["target_modules"] = block_linear_names(model, freezing)
    return layers


def tied_head(model) -> bool:
    """Whether the output head is the input embedding's tensor (a tied causal LM)."""
    head = model.get_output_embeddings()
    return head is not None and head.weight is model.get_input_embeddings().weight


def _count(param) -> int:
    # bitsandbytes packs two 4-bit values per byte: numel() of its storage is half the weights
    # (peft's own count does the same)
    if type(param).__name__ == "Params4bit":
        return param.numel() * 2
    return param.numel()


def parameter_counts(model) -> dict[str, int]:
    """`trainable_parameters` and `total_parameters` (shared tensors counted once)."""
    params = list(model.parameters())
    return {"trainable_parameters": sum(_count(p) for p in params if p.requires_grad),
            "total_parameters": sum(_count(p) for p in params)}


def frozen_info(model, cfg: TrainConfig) -> dict[str, Any]:
    """run.json's account of a frozen run (empty where nothing was asked)."""
    if not requested(cfg):
        return {}
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    stack, blocks = block_stack(base)
    frozen = 0
    for block in blocks:
        if any(p.requires_grad for p in block.parameters()):
            break
        frozen += 1
    embeddings = base.get_input_embeddings().weight
    return {"freezing": {"blocks": stack, "depth": len(blocks), "frozen_blocks": frozen,
                         "embeddings_frozen": not embeddings.requires_grad,
                         "tied_head_frozen": tied_head(base) and not embeddings.requires_grad}}


def _short(n: int) -> str:
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def progress_line(counts: dict[str, int]) -> str:
    """'trainable 1.2M of 22.7M parameters (5.3%)'."""
    trainable, total = counts["trainable_parameters"], counts["total_parameters"]
    share = 100 * trainable / total if total else 0.0
    return f"trainable {_short(trainable)} of {_short(total)} parameters ({share:.1f}%)"
