"""Quantized loading, `--load-in-8bit` / `--load-in-4bit`, through bitsandbytes: the base weights
stay quantized and frozen and a LoRA adapter trains on top (QLoRA for 4 bits: NF4 weights,
double quantization of their scales, bf16 compute, as in the QLoRA paper).

bitsandbytes is an optional dependency (`pip install dataprep-train[gpu]`): its kernels need
CUDA, so a machine without a GPU gets a one-line error before anything loads. The flags' own
contradictions (both at once, `--method full`, `--lora-r 0`) are caught with the settings
(`config.TrainConfig`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .config import TrainConfig
from .errors import TrainError


def flag(cfg: TrainConfig) -> str | None:
    """The quantization flag given, if any."""
    if cfg.load_in_4bit:
        return "--load-in-4bit"
    if cfg.load_in_8bit:
        return "--load-in-8bit"
    return None


def quantization_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """`from_pretrained` keyword arguments: a `BitsAndBytesConfig`, or nothing."""
    given = flag(cfg)
    if given is None:
        return {}
    import torch

    if not torch.cuda.is_available():
        raise TrainError(f"{given} needs a CUDA GPU (bitsandbytes quantizes on the GPU), and "
                         "this machine has none: leave the flag off to train in full "
                         "precision")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainError(f"{given} needs the bitsandbytes package: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    if cfg.load_in_4bit:
        config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                    bnb_4bit_use_double_quant=True,
                                    bnb_4bit_compute_dtype=torch.bfloat16)
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config}


def prepare_for_adapter(model, cfg: TrainConfig):
    """peft's preparation of a quantized model for LoRA (norms in float32, base frozen, input
    gradients on for checkpointing); a model loaded in full precision is returned as it is."""
    if flag(cfg) is None:
        return model
    from peft import prepare_model_for_kbit_training

    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=cfg.gradient_checkpointing)
