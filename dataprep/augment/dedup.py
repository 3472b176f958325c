"""Augmented candidates against the train split: exact and near duplicates are dropped.

The train rows' keys (exact hashes and MinHash signatures) were computed in the first pass, so
only the candidates are hashed here. Train rows and candidates are searched as one stacked
signature matrix in the run's near-duplicate index (`neardup`): band-key candidates, the MinHash
screen, then exact shingle Jaccard, as in the run's own dedup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..dedup import exact_duplicates
from ..keys import Keys
from ..minhash import BASES, sequence_hashes, signatures, words_of
from ..neardup import DEDUP, NearDupIndex, ShingleSets, StackedSignatures, shingle_sets_of
from ..settings import Dedup


@dataclass
class TrainIndex:
    """The kept train rows (staging row numbers) and how to read their shingle sets."""

    rows: np.ndarray
    keys: Keys
    load_sets: ShingleSets


def duplicate_reasons(texts: pa.Array, train: TrainIndex, dedup: Dedup) -> np.ndarray:
    """`duplicate:exact` / `duplicate:near` / None per candidate (`texts` normalised, in the
    order candidates are accepted: an earlier candidate wins over a later one)."""
    n, n_train = len(texts), len(train.rows)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return reasons
    words = words_of(texts)
    if dedup.exact:
        mine = np.stack([sequence_hashes(words, b) for b in BASES], axis=1)
        owner = exact_duplicates(np.concatenate([train.keys.exact[train.rows], mine]))[n_train:]
        reasons[owner >= 0] = "duplicate:exact"
    if dedup.near:
        sigs = StackedSignatures(train.keys.sigs, train.rows,
                                 signatures(words, dedup.num_perm, dedup.ngram))
        index = NearDupIndex(sigs, dedup.near_threshold, DEDUP)
        pairs = index.candidates()
        pairs = index.screen(pairs[pairs[:, 1] >= n_train])
        pairs = pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]
        # one index space for the shingle sets: train rows first, then the candidates
        old = np.unique(pairs[:, 0][pairs[:, 0] < n_train])
        loaded = train.load_sets(train.rows[old])
        sets = {int(i): loaded[int(train.rows[i])] for i in old}
        sets.update(shingle_sets_of(texts, dedup.ngram, np.arange(n) + n_train))
        sims = index.verify(sets, pairs)
        for (a, b), sim in zip(pairs, sims, strict=True):
            cand = int(b - n_train)
            if sim < dedup.near_threshold or reasons[cand] is not None:
                continue
            if a < n_train or reasons[a - n_train] is None:
                reasons[cand] = "duplicate:near"
    return reasons
