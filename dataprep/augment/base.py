"""What every augmenter is: a batch of texts in, one candidate per text out, same order.

Augmenters never see rows, only the text units the stage hands them (a review, an instruction's
prompt, a user turn), so one interface serves every record kind. Each backend does its work one
batch at a time (one subprocess call or one `generate` call per batch, never per row).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator

import numpy as np

from ..settings import Augment

#: Called with the number of texts finished after each batch (progress bars, benchmarks).
Progress = Callable[[int], None]


class Augmenter(ABC):
    """One configured augmenter (an entry of the recipe's `augment` list)."""

    #: `paraphrase`, `backtranslation` or `synonym`: the `origin` written on augmented rows.
    origin: str = ""
    #: Texts per call when the recipe leaves `batch_size` unset: large for a subprocess (each
    #: call starts one), moderate for a model (memory grows with the batch).
    default_batch_size: int = 32

    def __init__(self, spec: Augment, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        self.batch_size = int(spec.batch_size or self.default_batch_size)

    @property
    @abstractmethod
    def name(self) -> str:
        """Backend and model, as recorded in the `augmenter` column (e.g. `apertium:eng-spa`)."""

    @abstractmethod
    def transform_batch(self, texts: list[str]) -> list[str]:
        """One candidate per text, in order; the backend's one call for this batch."""

    def transform(self, texts: list[str], progress: Progress | None = None) -> list[str]:
        """Candidates for all texts, batch by batch. Texts are batched in length order so a batch
        pads little; results come back in input order."""
        out: list[str] = [""] * len(texts)
        for idx in length_batches(texts, self.batch_size):
            results = self.transform_batch([texts[i] for i in idx])
            if len(results) != len(idx):
                raise RuntimeError(f"{self.name}: {len(results)} outputs for {len(idx)} inputs")
            for i, text in zip(idx, results, strict=True):
                out[i] = text
            if progress:
                progress(len(idx))
        return out


def length_batches(texts: list[str], batch_size: int) -> Iterator[list[int]]:
    """Indices of `texts` in batches of similar length (stable for equal lengths)."""
    order = np.argsort(np.fromiter((len(t) for t in texts), np.int64, len(texts)), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size].tolist()
