"""Augmentation of the train split: back-translation, paraphrase and synonym swaps, each
candidate checked for fidelity and deduplicated against train (see `stage`)."""

from .stage import AugmenterStats, augment_train, augmented_schema

__all__ = ["AugmenterStats", "augment_train", "augmented_schema"]
