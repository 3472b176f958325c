"""Augmented candidates against the train split: exact and near duplicates are dropped.

The train rows' keys (exact hashes and MinHash signatures) were computed in the first pass, so
only the candidates are hashed here. Train rows and candidates are searched as one stacked
signature matrix in the run's near-duplicate index (`neardup`): band-key candidates, the MinHash
screen, then exact shingle Jaccard, as in the run's own dedup.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from ..dedup import exact_duplicates
from ..keys import Keys
from ..minhash import BASES, sequence_hashes, signatures, words_of
from ..neardup import DEDUP, NearDupIndex, ShingleSets, StackedSignatures, shingle_sets_of
from ..settings import Dedup


@dataclass
class TrainIndex:
    """The kept train rows (staging row numbers) and how to read their shingle sets; in a child
    version also its parent's train rows (`parent`, a lineage, and `parent_rows`, its train row
    numbers), numbered first: an augmented row must not copy a train row of any generation."""

    rows: np.ndarray
    keys: Keys
    load_sets: ShingleSets
    parent: Any = None
    parent_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.parent_rows) + len(self.rows)

    @property
    def exact(self) -> np.ndarray:
        own = self.keys.exact[self.rows]
        return own if self.parent is None else np.concatenate(
            [self.parent.exact[self.parent_rows], own])

    @property
    def sigs(self) -> TrainSignatures:
        return TrainSignatures(self)

    def sets(self, train: np.ndarray, ngram: int) -> dict[int, np.ndarray]:
        """Shingle sets of train rows (numbered as here: the parent's first)."""
        p = len(self.parent_rows)
        old, new = train[train < p], train[train >= p]
        out: dict[int, np.ndarray] = {}
        if old.size:
            loaded = self.parent.shingle_sets(self.parent_rows[old], ngram)
            out.update({int(i): loaded[int(self.parent_rows[i])] for i in old})
        if new.size:
            loaded = self.load_sets(self.rows[new - p])
            out.update({int(i): loaded[int(self.rows[i - p])] for i in new})
        return out


class TrainSignatures:
    """The train rows' signatures as one matrix (the parent's, then this run's), read through
    their row numbers, never copied."""

    def __init__(self, train: TrainIndex) -> None:
        self.train = train
        self.shape = (len(train), train.keys.sigs.shape[1])

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        p = len(self.train.parent_rows)
        out = np.empty((len(idx), self.shape[1]), np.uint32)
        old = idx < p
        if old.any():
            out[old] = self.train.parent.sigs[self.train.parent_rows[idx[old]]]
        if (~old).any():
            out[~old] = self.train.keys.sigs[self.train.rows[idx[~old] - p]]
        return out


def duplicate_reasons(texts: pa.Array, train: TrainIndex, dedup: Dedup) -> np.ndarray:
    """`duplicate:exact` / `duplicate:near` / None per candidate (`texts` normalised, in the
    order candidates are accepted: an earlier candidate wins over a later one)."""
    n, n_train = len(texts), len(train)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return reasons
    words = words_of(texts)
    if dedup.exact:
        mine = np.stack([sequence_hashes(words, b) for b in BASES], axis=1)
        owner = exact_duplicates(np.concatenate([train.exact, mine]))[n_train:]
        reasons[owner >= 0] = "duplicate:exact"
    if dedup.near:
        sigs = StackedSignatures(train.sigs, np.arange(n_train),
                                 signatures(words, dedup.num_perm, dedup.ngram))
        index = NearDupIndex(sigs, dedup.near_threshold, DEDUP)
        pairs = index.candidates()
        pairs = index.screen(pairs[pairs[:, 1] >= n_train])
        pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]
        # one index space for the shingle sets: train rows first, then the candidates
        sets = train.sets(np.unique(pairs[:, 0][pairs[:, 0] < n_train]), dedup.ngram)
        sets.update(shingle_sets_of(texts, dedup.ngram, np.arange(n) + n_train))
        sims = index.verify(sets, pairs)
        for (a, b), sim in zip(pairs, sims, strict=True):
            cand = int(b - n_train)
            if sim < dedup.near_threshold or reasons[cand] is not None:
                continue
            if a < n_train or reasons[a - n_train] is None:
                reasons[cand] = "duplicate:near"
    return reasons
