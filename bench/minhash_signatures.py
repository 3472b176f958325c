"""MinHash signatures from the same 64-bit shingle hashes: rensa (what runs use) against our numpy
implementation, and the estimates of both (and datasketch's) on planted near-duplicate pairs.

    python bench/minhash_signatures.py [--rows 20000] [--repeats 3]

Rows come from fixtures/synthetic.py (~100 words, planted exact and near copies); texts are
normalised and shingled once (word 5-grams, our hashing), then each implementation turns the same
hashes into 128-slot signatures, best of --repeats. rensa's time includes getting its matrix
into numpy (it returns Python lists).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import rensa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))

import synthetic  # noqa: E402
from dataprep_throughput import best_of  # noqa: E402  (this folder: the same timing rule)

from dataprep.minhash import (  # noqa: E402
    shingles,
    signatures_from_shingles,
    signatures_numpy,
    words_of,
)
from dataprep.textview import normalise_for_dedup  # noqa: E402


def planted_pairs(rows: list[dict]) -> np.ndarray:
    index = {r["id"]: i for i, r in enumerate(rows)}
    return np.array([(index[r["planted"]["of"]], i) for i, r in enumerate(rows)
                     if r["planted"] and r["planted"]["kind"] == "near"
                     and r["planted"]["of"] in index])


def of_row(hashes: np.ndarray, owner: np.ndarray, row: int) -> np.ndarray:
    lo, hi = np.searchsorted(owner, [row, row + 1])
    return hashes[lo:hi]


def true_jaccard(hashes: np.ndarray, owner: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    out = []
    for a, b in pairs:
        x, y = set(of_row(hashes, owner, a).tolist()), set(of_row(hashes, owner, b).tolist())
        out.append(len(x & y) / len(x | y))
    return np.array(out)


def datasketch_estimates(hashes: np.ndarray, owner: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    from datasketch import MinHash

    def sketch(row):
        m = MinHash(num_perm=128, hashfunc=lambda x: x)
        for h in of_row(hashes, owner, row):
            m.update(int(h) & 0xFFFFFFFF)  # datasketch's hash values are 32-bit
        return m

    return np.array([sketch(a).jaccard(sketch(b)) for a, b in pairs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = list(synthetic.generate_rows(args.rows, seed=3))
    texts = normalise_for_dedup(pa.array([r["text"] for r in rows]))
    hashes, owner = shingles(words_of(texts))
    n = len(rows)
    t_np, ours = best_of(args.repeats, lambda: signatures_numpy(hashes, owner, n))
    t_rs, theirs = best_of(args.repeats, lambda: signatures_from_shingles(hashes, owner, n))
    offsets = np.searchsorted(owner, np.arange(n + 1)).astype(np.uint64)
    t_raw, _ = best_of(args.repeats, lambda: rensa.RMinHash.digest_matrix_from_flat_token_hashes(
        hashes, offsets, 128, 1))
    pairs = planted_pairs(rows)
    true = true_jaccard(hashes, owner, pairs)
    est_np = (ours[pairs[:, 0]] == ours[pairs[:, 1]]).mean(axis=1)
    est_rs = (theirs[pairs[:, 0]] == theirs[pairs[:, 1]]).mean(axis=1)
    est_ds = datasketch_estimates(hashes, owner, pairs)
    print(f"## MinHash signatures: {n:,} rows (~100 words), 128 permutations, "
          f"{hashes.size:,} shingles, best of {args.repeats}")
    print(f"numpy (signatures_numpy)        : {n / t_np:10.0f} docs/s")
    print(f"rensa (signatures_from_shingles): {n / t_rs:10.0f} docs/s "
          f"({t_np / t_rs:.1f}x), numpy copy included")
    print(f"rensa, its matrix alone         : {n / t_raw:10.0f} docs/s "
          f"({t_np / t_raw:.1f}x): the rest is rensa's Python lists into numpy")
    print(f"planted near pairs              : {len(pairs)} "
          f"(true Jaccard {true.min():.2f}-{true.max():.2f}, mean {true.mean():.3f})")
    for name, est in (("numpy", est_np), ("rensa", est_rs), ("datasketch", est_ds)):
        err = est - true
        print(f"{name:<11} estimate - true       : mean {err.mean():+.3f}, "
              f"mean |.| {np.abs(err).mean():.3f}, sd {err.std():.3f}, "
              f"max |.| {np.abs(err).max():.3f}")


if __name__ == "__main__":
    main()
