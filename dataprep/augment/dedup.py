"""Augmented candidates against the train split: exact and near duplicates are dropped.

The train rows' keys (exact hashes and MinHash signatures) were computed in the first pass, so
only the candidates are hashed here. Near-duplicate candidates come from LSH band keys shared
with a train row or an earlier candidate, are pre-screened by their MinHash estimate and then
verified by exact shingle Jaccard, as in the run's own dedup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..dedup import (
    CANDIDATE_MARGIN,
    ESTIMATE_MARGIN,
    ShingleSets,
    exact_duplicates,
    jaccard,
    shingle_sets_of,
)
from ..keys import Keys
from ..minhash import (
    BASES,
    band_keys,
    candidate_pairs,
    lsh_params,
    sequence_hashes,
    signatures,
    words_of,
)


@dataclass
class TrainIndex:
    """The kept train rows (staging row numbers) and how to read their shingle sets."""

    rows: np.ndarray
    keys: Keys
    load_sets: ShingleSets


def duplicate_reasons(texts: pa.Array, train: TrainIndex, dedup: dict) -> np.ndarray:
    """`duplicate:exact` / `duplicate:near` / None per candidate (`texts` normalised, in the
    order candidates are accepted: an earlier candidate wins over a later one)."""
    n, n_train = len(texts), len(train.rows)
    reasons = np.full(n, None, dtype=object)
    if n == 0:
        return reasons
    words = words_of(texts)
    if dedup["exact"]:
        mine = np.stack([sequence_hashes(words, b) for b in BASES], axis=1)
        owner = exact_duplicates(np.concatenate([train.keys.exact[train.rows], mine]))[n_train:]
        reasons[owner >= 0] = "duplicate:exact"
    if dedup["near"]:
        sigs = signatures(words, dedup["num_perm"], dedup["ngram"])
        threshold = dedup["near_threshold"]
        pairs = _near_pairs(sigs, train, threshold)
        sets = train.load_sets(train.rows[pairs[:, 0][pairs[:, 0] < n_train]])
        sets = {("t", k): v for k, v in sets.items()}
        mine_sets = shingle_sets_of(texts, dedup["ngram"], np.arange(n))
        sets.update({("c", k): v for k, v in mine_sets.items()})
        named = [(("t", int(train.rows[a])) if a < n_train else ("c", int(a - n_train)),
                  ("c", int(b - n_train))) for a, b in pairs]
        sims = _jaccard_named(sets, named)
        for (a, _), (_, cand), sim in zip(pairs, named, sims, strict=True):
            if sim < threshold or reasons[cand[1]] is not None:
                continue
            if a < n_train or reasons[a - n_train] is None:
                reasons[cand[1]] = "duplicate:near"
    return reasons


def _near_pairs(sigs: np.ndarray, train: TrainIndex, threshold: float) -> np.ndarray:
    """(a, b) index pairs, b a candidate (offset by the train size), a a train row or an earlier
    candidate, that share an LSH band and whose MinHash estimate is close enough to verify."""
    n_train = len(train.rows)
    bands, rows = lsh_params(max(threshold - CANDIDATE_MARGIN, 0.3), sigs.shape[1], 0.9)
    keys = np.concatenate([band_keys(train.keys.sigs, bands, rows, train.rows),
                           band_keys(sigs, bands, rows)])
    pairs = candidate_pairs(keys)
    pairs = pairs[pairs[:, 1] >= n_train] if len(pairs) else np.zeros((0, 2), np.int64)
    if len(pairs) == 0:
        return pairs

    def sig(i: np.ndarray) -> np.ndarray:
        out = np.empty((len(i), sigs.shape[1]), np.uint32)
        old = i < n_train
        out[old] = train.keys.sigs[train.rows[i[old]]] if old.any() else out[old]
        out[~old] = sigs[i[~old] - n_train]
        return out

    estimate = (sig(pairs[:, 0]) == sig(pairs[:, 1])).mean(axis=1)
    pairs = pairs[estimate >= threshold - ESTIMATE_MARGIN]
    return pairs[np.lexsort((pairs[:, 0], pairs[:, 1]))]


def _jaccard_named(sets: dict, named: list[tuple]) -> np.ndarray:
    """`dedup.jaccard` over pairs of set names (train and candidate rows share no index)."""
    index = {name: i for i, name in enumerate(sets)}
    by_index = {index[name]: s for name, s in sets.items()}
    pairs = np.array([[index[a], index[b]] for a, b in named], dtype=np.int64).reshape(-1, 2)
    return jaccard(by_index, pairs)
