"""Tokenizer and model for a run: any hub id, local directory or built-in offline name, on the
right device and dtype, wrapped in a LoRA adapter (peft) unless the method is `full`; with its
dropout settings (`--dropout`), quantized (`quantize.py`) or partly frozen (`freezing.py`) on
request.

GPU: bf16 where the card supports it, SDPA attention (FlashAttention 2 when `flash_attn` is
installed), fused AdamW; gradient checkpointing on request. CPU: fp32, plain AdamW.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from common.errors import first_line
from common.models import load_pretrained, resolve_model

from . import freezing, quantize
from .config import TrainConfig, classifier_plan
from .errors import TrainError

#: Config attributes that set a dropout probability, across the architectures transformers
#: ships (BERT's, Llama's attention, GPT-2's, BART's, DistilBERT's, T5's, ModernBERT's ...):
#: `--dropout` sets each one the model's config has. A classifier head's own (BERT's
#: `classifier_dropout`) is among them; a head without dropout (Llama's `score`) has none to set.
DROPOUT_SETTINGS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                    "attention_dropout", "hidden_dropout", "dropout", "activation_dropout",
                    "resid_pdrop", "embd_pdrop", "attn_pdrop", "summary_first_dropout",
                    "seq_classif_dropout", "dropout_rate", "classifier_dropout_prob",
                    "embedding_dropout", "mlp_dropout", "attention_probs_dropout",
                    "classifier_dropout_rate")


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


def dropout_kwargs(cfg: TrainConfig, ref) -> dict[str, float]:
    """`from_pretrained` config overrides for `--dropout`: every dropout setting the model's
    config has (from_pretrained passes a config attribute through, but hands an unknown one to
    the model's constructor, which fails), so the saved config records them too."""
    if cfg.dropout is None:
        return {}
    from transformers import AutoConfig

    config = load_pretrained(AutoConfig, ref, trust_remote_code=cfg.trust_remote_code)
    names = [name for name in DROPOUT_SETTINGS if hasattr(config, name)]
    if not names:
        raise TrainError(f"--dropout: the config of {cfg.model!r} ({type(config).__name__}) has "
                         "no dropout setting to change")
    return dict.fromkeys(names, cfg.dropout)


def load_kwargs(cfg: TrainConfig, ref) -> dict[str, Any]:
    """What `--dropout` and `--load-in-4bit/8bit` add to `from_pretrained`."""
    return {**dropout_kwargs(cfg, ref), **quantize.quantization_kwargs(cfg)}


def load_causal_lm(cfg: TrainConfig, tokenizer):
    from transformers import AutoModelForCausalLM

    ref = resolve_model(cfg.model)
    model = load_pretrained(AutoModelForCausalLM, ref, dtype=_dtype(),
                            attn_implementation=attention_implementation(),
                            trust_remote_code=cfg.trust_remote_code, **load_kwargs(cfg, ref))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    no_cache_for_training(model)
    freezing.plan(cfg, model)  # a depth the flags exceed fails now, before any tokenizing
    return model


def no_cache_for_training(model) -> None:
    """Training never needs the KV cache, and with it on, packing silently breaks: transformers
    builds the block-diagonal mask of a packed row from its position ids only when no cache is
    passed, and a model with `use_cache=True` makes one on every forward, so examples would
    attend to each other (a test pins this). The saved config gets `use_cache` back."""
    model.config.use_cache = False


def load_classifier(cfg: TrainConfig, tokenizer, labels: list[str]):
    from transformers import AutoModelForSequenceClassification

    ref = resolve_model(cfg.model)
    model = load_pretrained(
        AutoModelForSequenceClassification, ref, dtype=_dtype(),
        num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        trust_remote_code=cfg.trust_remote_code, **load_kwargs(cfg, ref))
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    freezing.plan(cfg, model)
    return model


def trainable_model(base, cfg: TrainConfig, copy: bool = False):
    """The model a run trains, from loaded base weights: a LoRA adapter on them unless every
    weight is trained, the bottom blocks frozen if asked (`freezing.py`). `copy` leaves `base`
    untouched (a fresh copy in memory for each fold or trial of one process, instead of
    reloading the weights from disk)."""
    import copy as copying

    model = copying.deepcopy(base) if copy else base
    if cfg.method == "classifier":
        if quantize.flag(cfg) and cfg.lora_r is None:
            cfg.lora_r = 16  # quantized weights train only through an adapter
        classifier_plan(cfg, sum(p.numel() for p in model.parameters()))
    frozen = freezing.plan(cfg, model)
    if frozen is not None and not _uses_lora(cfg):
        freezing.freeze(model, frozen, cfg.gradient_checkpointing)
    return _maybe_lora(model, cfg, "SEQ_CLS" if cfg.method == "classifier" else "CAUSAL_LM",
                       frozen)


def _uses_lora(cfg: TrainConfig) -> bool:
    return cfg.method != "full" and bool(cfg.lora_r)


def _maybe_lora(model, cfg: TrainConfig, task: str, frozen: freezing.Freezing | None = None):
    """LoRA for `lora`, and for `classifier` unless it trains every weight (`lora_r` 0): the new
    head is then trained in full and saved with the adapter (peft puts a SEQ_CLS model's
    classifier in `modules_to_save`). With frozen blocks, the adapter goes on the others."""
    if not _uses_lora(cfg):
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    targets: Any = cfg.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    layers = freezing.lora_layers(frozen, cfg, model) if frozen is not None else {}
    config = LoraConfig(**{"target_modules": targets, **layers}, r=cfg.lora_r,
                        lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        task_type=getattr(TaskType, task))
    model = quantize.prepare_for_adapter(model, cfg)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise TrainError(f"LoRA on {cfg.model!r}: {first_line(exc)}") from None
