"""`dataprep diff A B`: what changed between two versions, computed on Arrow columns.

Rows are matched by a content key that survives re-runs: the row's `id` when each version's
ids are unique (input ids, or the content hash validation gives rows without one), else its id
and text together. A row is *added* (in B only), *removed* (in A only) or *kept*; a kept row
whose split differs is *moved*. Input rows and augmented rows (`origin` other than `original`)
are matched apart, and augmented rows only count as added or removed: they live in train by
construction.

Distributions (labels, languages) are compared per split with two labelled figures: the
population stability index (how far the shares moved, the usual drift measure) and the
p-value of a chi-square test of homogeneity (whether the difference is beyond chance at these
row counts; large splits make tiny shifts significant, small ones hide big shifts, hence both).
Lengths are histograms over bin edges shared by both versions and all splits. Every step is a
pyarrow compute kernel or a numpy array operation: a version can hold a million rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .distributions import stats
from .store import SPLITS, VersionRef

#: Joins id and text in the fallback key (a control character no cleaned text or id holds).
KEY_SEP = "\x1f"
#: The share a category absent from one version takes in the PSI, which divides by shares: the
#: usual floor (1e-4) of PSI implementations, so one new label reads as a large shift, not inf.
PSI_FLOOR = 1e-4
#: Length histogram bins (as the version report draws them).
LENGTH_BINS = 24
#: The label a row without a label or language is counted under.
NONE = "(none)"


def diff_versions(a: VersionRef, b: VersionRef) -> dict[str, Any]:
    """The whole comparison of version `a` (before) with `b` (after), as one JSON-ready dict."""
    data = [a.load_data(), b.load_data()]
    by_id = all(ids_unique([d[s].data.table.column("id") for s in SPLITS]) for d in data)
    sides = [split_tables(d, by_id) for d in data]
    reports = [a.read_report(), b.read_report()]
    return {
        "a": _describe(a, sides[0]),
        "b": _describe(b, sides[1]),
        "key": "id" if by_id else "id+text",
        **compare_rows(*sides),
        "labels": _distributions(sides, "label"),
        "languages": _distributions(sides, "lang"),
        "lengths": compare_lengths(sides),
        "counts": compare_counts(reports[0]["counts"], reports[1]["counts"]),
    }


def ids_unique(columns: list[pa.ChunkedArray]) -> bool:
    """Whether no id repeats across a version's splits (the `id` columns given)."""
    ids = pa.chunked_array([c.cast(pa.string()) for col in columns for c in col.chunks],
                           pa.string())
    return pc.count_distinct(ids).as_py() == len(ids)


def row_key(ids: pa.Array, text: pa.Array, by_id: bool) -> pa.Array:
    """The key a row is matched by: its id, or its id and text joined where ids repeat. The
    joined strings, not a hash of them: Arrow's lookups hash them in C++, and a numpy hash of
    every byte (`minhash.string_hashes`) costs more time and memory than the copy."""
    ids = ids.cast(pa.string())
    if by_id:
        return ids
    return pc.binary_join_element_wise(ids.cast(pa.large_string()),
                                       text.cast(pa.large_string()),
                                       pa.scalar(KEY_SEP, pa.large_string()))


def split_tables(data: Any, by_id: bool) -> dict[str, pa.Table]:
    """Per split of a version's `DatasetDict`, the columns the comparison reads: key (see
    `row_key`), augmented (bool), lang, label (when the version has one), and the characters
    and words of the row text. The text is the `text` column of a labelled version, else the
    conversation's contents joined by newlines: in both cases the row text the pipeline's
    language ID, filters, dedup and length figures saw. It is dropped once measured, so one
    split's text at a time is in memory (none of it, for a labelled version: a memory map)."""
    return {split: _columns(data[split].data.table, by_id) for split in SPLITS}


def _columns(table: pa.Table, by_id: bool) -> pa.Table:
    names = table.column_names
    n = table.num_rows
    if "text" in names:
        text = table.column("text").combine_chunks()
    else:
        messages = table.column("messages").combine_chunks()
        contents = pa.ListArray.from_arrays(messages.offsets,
                                            messages.flatten().field("content"))
        text = pc.binary_join(contents, "\n")
    text = pc.fill_null(text, "")
    origin = (table.column("origin") if "origin" in names
              else pa.array(np.full(n, "original", dtype=object), pa.string()))
    words = pc.list_value_length(pc.utf8_split_whitespace(text))
    columns = {"key": row_key(table.column("id").combine_chunks(), text, by_id),
               "augmented": pc.fill_null(pc.not_equal(origin, "original"), False),
               "lang": _category(table, "lang"),
               "chars": pc.utf8_length(text).cast(pa.int64()),
               "words": words.cast(pa.int64())}
    if "label" in names:
        columns["label"] = _category(table, "label")
    return pa.table(columns)


def _category(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        return pa.array(np.full(table.num_rows, NONE, dtype=object), pa.string())
    return pc.fill_null(table.column(name).combine_chunks().cast(pa.string()), NONE)


def compare_rows(a: dict[str, pa.Table], b: dict[str, pa.Table]) -> dict[str, Any]:
    """Added, removed, kept and moved rows per split, from per-split tables of `key` and
    `augmented`. Input rows: `rows` (per split) and `moved` (the from -> to matrix); augmented
    rows: `augmented` (added and removed per split)."""
    a_orig, a_aug = _stacked(a)
    b_orig, b_aug = _stacked(b)
    moves, removed, added = _match(a_orig, b_orig)
    rows = {}
    for code, split in enumerate(SPLITS):
        kept = int(moves[code, code])
        rows[split] = {"a": int(np.count_nonzero(a_orig[1] == code)),
                       "b": int(np.count_nonzero(b_orig[1] == code)),
                       "added": int(added[code]), "removed": int(removed[code]), "kept": kept,
                       "moved_out": int(moves[code].sum()) - kept,
                       "moved_in": int(moves[:, code].sum()) - kept}
    _, aug_removed, aug_added = _match(a_aug, b_aug)
    augmented = {split: {"a": int(np.count_nonzero(a_aug[1] == code)),
                         "b": int(np.count_nonzero(b_aug[1] == code)),
                         "added": int(aug_added[code]), "removed": int(aug_removed[code])}
                 for code, split in enumerate(SPLITS)}
    off_diagonal = moves - np.diag(np.diag(moves))
    return {"rows": rows, "augmented": augmented,
            "moved": {"total": int(off_diagonal.sum()),
                      "from_to": {src: {dst: int(off_diagonal[i, j])
                                        for j, dst in enumerate(SPLITS) if i != j}
                                  for i, src in enumerate(SPLITS)}}}


def _stacked(side: dict[str, pa.Table]) -> tuple[tuple[pa.Array, np.ndarray], ...]:
    """(keys, split codes) of the input rows and of the augmented rows of every split."""
    every = pa.concat_tables([side[s] for s in SPLITS])
    keys = every.column("key").combine_chunks()
    codes = np.concatenate([np.full(side[s].num_rows, i, np.int8) for i, s in enumerate(SPLITS)])
    augmented = np.asarray(every.column("augmented").to_numpy(), dtype=bool)
    mask = pa.array(augmented)
    original = (keys.filter(pc.invert(mask)), codes[~augmented])
    return original, (keys.filter(mask), codes[augmented])


def _match(a: tuple[pa.Array, np.ndarray], b: tuple[pa.Array, np.ndarray]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 3x3 split -> split matrix of rows in both, rows of A missing from B and rows of B
    missing from A, per split. One hash pass over both versions' keys (`dictionary_encode`
    numbers the distinct keys; two `index_in` / `is_in` lookups hashed them twice, ~1.7x
    slower on 1M ids), then numpy indexing on those numbers: no loop over rows."""
    (a_keys, a_codes), (b_keys, b_codes) = a, b
    both = pa.concat_arrays([a_keys, b_keys.cast(a_keys.type)])
    number = pc.dictionary_encode(both).indices.to_numpy(zero_copy_only=False)
    in_a, in_b = number[:len(a_keys)], number[len(a_keys):]
    distinct = int(number.max()) + 1 if number.size else 0
    split_in_b = np.full(distinct, -1, np.int64)
    split_in_b[in_b] = b_codes
    where = split_in_b[in_a]  # each A row's split in B, -1 where B lacks it
    found = where >= 0
    k = len(SPLITS)
    moves = np.bincount(a_codes[found].astype(np.int64) * k + where[found],
                        minlength=k * k).reshape(k, k)
    removed = np.bincount(a_codes[~found], minlength=k)
    seen_in_a = np.zeros(distinct, bool)
    seen_in_a[in_a] = True
    added = np.bincount(b_codes[~seen_in_a[in_b]], minlength=k)
    return moves, removed, added


def value_counts(values: pa.Array) -> dict[str, int]:
    """Rows per value, largest first (ties by value, so the same data prints the same)."""
    counted = pc.value_counts(values)
    pairs = zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(),
                strict=True)
    return dict(sorted(pairs, key=lambda p: (-p[1], str(p[0]))))


def _distributions(sides: list[dict[str, pa.Table]], column: str) -> dict[str, Any] | None:
    """Per split, both versions' counts of `column` and the shift between them; None when
    neither version has the column (labels of a chat version)."""
    if not any(column in t.column_names for side in sides for t in side.values()):
        return None
    out = {}
    for split in SPLITS:
        a, b = (value_counts(side[split].column(column)) if column in side[split].column_names
                else {} for side in sides)
        out[split] = {"a": a, "b": b, **shift(a, b)}
    return out


def shift(a: dict[str, int], b: dict[str, int]) -> dict[str, Any]:
    """The population stability index and the chi-square p-value of two count tables over the
    same categories; both None when a side has no rows (nothing to compare)."""
    categories = sorted(set(a) | set(b))
    p = np.array([a.get(c, 0) for c in categories], dtype=np.float64)
    q = np.array([b.get(c, 0) for c in categories], dtype=np.float64)
    if p.sum() == 0 or q.sum() == 0:
        return {"psi": None, "chi2": None, "chi2_p": None}
    ps = np.maximum(p / p.sum(), PSI_FLOOR)
    qs = np.maximum(q / q.sum(), PSI_FLOOR)
    psi = float(np.sum((qs - ps) * np.log(qs / ps)))
    from scipy.stats import chi2_contingency

    test = chi2_contingency(np.stack([p, q]))  # one category: dof 0, statistic 0, p 1
    return {"psi": round(psi, 6), "chi2": round(float(test.statistic), 6),
            "chi2_p": float(test.pvalue)}


def compare_lengths(sides: list[dict[str, pa.Table]]) -> dict[str, Any]:
    """Per measure (characters, words of the row text): the shared bin edges (0 to the 99th
    percentile of every row of both versions, the top bin holding the longer ones) and, per
    split and version, the quartiles and the histogram."""
    measured = [{s: {m: t.column(m).to_numpy() for m in ("chars", "words")}
                 for s, t in side.items()} for side in sides]
    out: dict[str, Any] = {}
    for measure in ("chars", "words"):
        every = np.concatenate([m[s][measure] for m in measured for s in SPLITS])
        hi = float(np.percentile(every, 99)) if every.size else 0.0
        edges = np.linspace(0, hi or 1.0, LENGTH_BINS + 1)
        out[measure] = {"edges": [round(float(e), 1) for e in edges], "splits": {
            s: {side: {"stats": stats(m[s][measure]),
                       "counts": np.histogram(np.clip(m[s][measure], 0, edges[-1]),
                                              edges)[0].tolist()}
                for side, m in zip("ab", measured, strict=True)}
            for s in SPLITS}}
    return out


def compare_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The two reports' `counts` side by side: the headline figures, then every reject and
    filter reason either version has (0 where the other has none)."""

    def headline(c: dict[str, Any]) -> dict[str, int]:
        return {"input": c["input"], "rejected": c["rejected"],
                "filtered": sum(c["filtered_by_reason"].values()),
                "duplicates_exact": c["duplicates"]["exact"],
                "duplicates_near": c["duplicates"]["near"],
                "augmented": sum(c["augmented"].values()),
                **{f"output_{s}": c["output"][s] for s in SPLITS}}

    def by_reason(field: str) -> dict[str, dict[str, int]]:
        reasons = sorted(set(a[field]) | set(b[field]))
        return {r: {"a": a[field].get(r, 0), "b": b[field].get(r, 0)} for r in reasons}

    ha, hb = headline(a), headline(b)
    return {"headline": {k: {"a": ha[k], "b": hb[k]} for k in ha},
            "rejected_by_reason": by_reason("rejected_by_reason"),
            "filtered_by_reason": by_reason("filtered_by_reason")}


def _describe(ref: VersionRef, side: dict[str, pa.Table]) -> dict[str, Any]:
    manifest = ref.read_manifest()
    return {"spec": f"{ref.name}@{ref.version}", "name": ref.name, "version": ref.version,
            "kind": manifest["kind"], "created_at": manifest["created_at"],
            "parent": manifest["parent"],
            "splits": {s: side[s].num_rows for s in SPLITS}}
