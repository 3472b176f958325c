"""Tokenizer and model for a run: any hub id, local directory or built-in offline name, on the
right device and dtype, wrapped in a LoRA adapter (peft) unless the method is `full`.

GPU: bf16 where the card supports it, SDPA attention (FlashAttention 2 when `flash_attn` is
installed), fused AdamW; gradient checkpointing on request. CPU: fp32, plain AdamW.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from common.models import load_pretrained, resolve_model

from .config import TrainConfig, classifier_plan
from .errors import TrainError


def attention_implementation() -> str:
    if torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def use_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def load_tokenizer(cfg: TrainConfig):
    from transformers import AutoTokenizer

    ref = resolve_model(cfg.model)
    tokenizer = load_pretrained(AutoTokenizer, ref, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if cfg.method != "classifier" and tokenizer.eos_token_id is None:
        raise TrainError(f"model {cfg.model!r}: its tokenizer has no EOS token, so a "
                         "fine-tuned model could not learn to stop")
    return tokenizer


def _dtype() -> torch.dtype:
    return torch.bfloat16 if use_bf16() else torch.float32


def load_causal_lm(cfg: TrainConfig, tokenizer):
    from transformers import AutoModelForCausalLM

    model = load_pretrained(AutoModelForCausalLM, resolve_model(cfg.model), dtype=_dtype(),
                            attn_implementation=attention_implementation(),
                            trust_remote_code=cfg.trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    no_cache_for_training(model)
    return model


def no_cache_for_training(model) -> None:
    """Training never needs the KV cache, and with it on, packing silently breaks: transformers
    builds the block-diagonal mask of a packed row from its position ids only when no cache is
    passed, and a model with `use_cache=True` makes one on every forward, so examples would
    attend to each other (a test pins this). The saved config gets `use_cache` back."""
    model.config.use_cache = False


def load_classifier(cfg: TrainConfig, tokenizer, labels: list[str]):
    from transformers import AutoModelForSequenceClassification

    model = load_pretrained(
        AutoModelForSequenceClassification, resolve_model(cfg.model), dtype=_dtype(),
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        trust_remote_code=cfg.trust_remote_code)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model


def trainable_model(base, cfg: TrainConfig, copy: bool = False):
    """The model a run trains, from loaded base weights: a LoRA adapter on them unless every
    weight is trained. `copy` leaves `base` untouched (a fresh copy in memory for each fold or
    trial of one process, instead of reloading the weights from disk)."""
    import copy as copying

    model = copying.deepcopy(base) if copy else base
    if cfg.method == "classifier":
        classifier_plan(cfg, sum(p.numel() for p in model.parameters()))
    return _maybe_lora(model, cfg, "SEQ_CLS" if cfg.method == "classifier" else "CAUSAL_LM")


def _maybe_lora(model, cfg: TrainConfig, task: str):
    """LoRA for `lora`, and for `classifier` unless it trains every weight (`lora_r` 0): the new
    head is then trained in full and saved with the adapter (peft puts a SEQ_CLS model's
    classifier in `modules_to_save`)."""
    if cfg.method == "full" or not cfg.lora_r:
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    targets: Any = cfg.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=targets, task_type=getattr(TaskType, task))
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise TrainError(f"LoRA on {cfg.model!r}: {str(exc).splitlines()[0]}") from None
