"""The recipe's (kind, backend) pairs and the class that serves each."""

from __future__ import annotations

from ..errors import DataprepError
from ..settings import Augment
from .base import Augmenter

#: (kind, backend) -> "module:Class", imported only when used (torch and nlpaug are heavy).
BACKENDS = {
    ("backtranslation", "apertium"): "apertium:ApertiumBackTranslation",
    ("backtranslation", "marian"): "marian:MarianBackTranslation",
    ("paraphrase", "llm"): "llm:LLMParaphrase",
    ("synonym", "wordnet"): "synonym:SynonymSwap",
}


def make_augmenter(spec: Augment, seed: int) -> Augmenter:
    """The configured augmenter for one recipe entry."""
    target = BACKENDS.get((spec.kind, spec.backend))
    if target is None:
        usable = ", ".join(f"{k}/{b}" for k, b in BACKENDS)
        raise DataprepError(f"augment: no backend {spec.backend!r} for kind {spec.kind!r} "
                            f"(available: {usable})")
    module, name = target.split(":")
    from importlib import import_module

    cls = getattr(import_module(f"{__package__}.{module}"), name)
    return cls(spec, seed)
