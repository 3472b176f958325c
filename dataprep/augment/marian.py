"""Back-translation through two Hugging Face translation models (MarianMT opus-mt-* pairs or any
seq2seq model), given by hub id or local directory.

Written on `transformers` directly rather than through nlpaug's `BackTranslationAug`: that one
pads every batch to the longest text of the whole input, starts a DataLoader worker process per
call, and offers neither beam width nor seeded sampling. Here each batch is a length-sorted slice
padded only to its own longest text, and generation runs on the GPU when there is one.
"""

from __future__ import annotations

from common.models import load_pretrained, pick_device, resolve_model

from ..errors import DataprepError
from ..settings import Augment
from .base import Augmenter


def _transformers():
    try:
        import torch
        import transformers
    except ImportError:
        raise DataprepError("augment backend marian needs torch and transformers: pip install "
                            "torch==2.13.0 transformers") from None
    return torch, transformers


class Seq2SeqTranslator:
    """One direction: tokenizer and model on a device, one `generate` call per batch."""

    def __init__(self, name: str, device: str, spec: Augment) -> None:
        torch, transformers = _transformers()
        self.torch = torch
        self.ref = resolve_model(name)
        self.tokenizer = load_pretrained(transformers.AutoTokenizer, self.ref)
        self.model = load_pretrained(transformers.AutoModelForSeq2SeqLM, self.ref)
        self.model.to(device).eval()
        self.device = device
        self.spec = spec

    def __call__(self, texts: list[str]) -> list[str]:
        """Translate a batch; empty texts (a failed first leg) stay empty."""
        todo = [i for i, t in enumerate(texts) if t.strip()]
        out = [""] * len(texts)
        for i, text in zip(todo, self._generate([texts[i] for i in todo]) if todo else [],
                           strict=True):
            out[i] = text
        return out

    def _generate(self, texts: list[str]) -> list[str]:
        spec = self.spec
        batch = self.tokenizer(texts, padding=True, truncation=True,
                               max_length=spec.max_length, return_tensors="pt").to(self.device)
        sample = spec.temperature > 0
        with self.torch.inference_mode():
            out = self.model.generate(
                **batch, max_new_tokens=spec.max_length, num_beams=1 if sample else
                spec.num_beams, do_sample=sample,
                **({"temperature": spec.temperature, "top_p": spec.top_p} if sample else {}))
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


class MarianBackTranslation(Augmenter):
    origin = "backtranslation"

    def __init__(self, spec: Augment, seed: int) -> None:
        super().__init__(spec, seed)
        if not spec.forward_model or not spec.backward_model:
            raise DataprepError("augment backtranslation/marian needs forward_model and "
                                "backward_model (hub ids or local directories, e.g. "
                                "Helsinki-NLP/opus-mt-en-de and Helsinki-NLP/opus-mt-de-en)")
        self.device = pick_device(spec.device)
        self.forward = Seq2SeqTranslator(spec.forward_model, self.device, spec)
        self.backward = Seq2SeqTranslator(spec.backward_model, self.device, spec)
        self.forward.torch.manual_seed(seed)

    @property
    def name(self) -> str:
        return f"marian:{self.spec.forward_model}+{self.spec.backward_model}"

    def transform_batch(self, texts: list[str]) -> list[str]:
        return self.backward(self.forward(texts))
