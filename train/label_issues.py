"""Rows whose given label is likely wrong, found by confident learning on the out-of-fold
probabilities of a k-fold run (cleanlab's `find_label_issues`): each prediction comes from a
model that never trained on the row, so a confident disagreement with the gold label points at
the label, not at memorisation.

`label_issues.jsonl` lists them worst first (cleanlab's self-confidence ranking): `id`,
`source` (`file:line` of the raw input), the given `label`, the `suggested_label` (the most
probable one), the `score` (cleanlab's label quality score: the probability of the given label;
low is suspect), the `fold` that predicted it and `reason: label_issue`. `dataprep run
--exclude label_issues.jsonl` matches rows by `source` and records them removed as
`excluded:<reason>`, so the next version says why they went.
"""

from __future__ import annotations

from typing import Any

import numpy as np

LABEL_ISSUES_FILE = "label_issues.jsonl"
REASON = "label_issue"


def find_issues(rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """The label issues among out-of-fold prediction rows (id, source, fold, label,
    probabilities), worst first."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if not rows:
        return []
    index = {name: i for i, name in enumerate(labels)}
    given = np.array([index[r["label"]] for r in rows], dtype=np.int64)
    probs = np.array([[r["probabilities"][name] for name in labels] for r in rows],
                     dtype=np.float64)
    # n_jobs=1: cleanlab would otherwise start a process per core for a few thousand rows
    ranked = find_label_issues(given, probs, return_indices_ranked_by="self_confidence",
                               n_jobs=1)
    scores = get_label_quality_scores(given, probs, method="self_confidence")
    return [{"id": rows[i]["id"], "source": rows[i]["source"], "label": rows[i]["label"],
             "suggested_label": labels[int(np.argmax(probs[i]))],
             "score": float(scores[i]), "fold": rows[i]["fold"], "reason": REASON}
            for i in ranked.tolist()]

