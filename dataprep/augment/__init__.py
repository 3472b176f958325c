"""Augmentation of the train split: back-translation, paraphrase and synonym swaps, each
candidate checked for fidelity and deduplicated against train (see `stage`)."""

from .stage import AUGMENTED_FILE, AugmentOutcome, augment_train

__all__ = ["AUGMENTED_FILE", "AugmentOutcome", "augment_train"]
