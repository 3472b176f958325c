"""The run's append-only outputs, rejected.jsonl and removed.jsonl, and how every row written to
them is counted: the one place a reject or a removal becomes a line and a count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .report import RunCounts
from .stage import EXAMPLE_KEY
from .store import REJECTED_FILE, REMOVED_FILE
from .validate import Reject


def _jsonl(fh, record: dict[str, Any]) -> None:
    fh.write(json.dumps(record, ensure_ascii=False) + "\n")


class RunFiles:
    """The run's append-only outputs and how every row written to them is counted."""

    def __init__(self, tmp: Path, run: RunCounts) -> None:
        self.run = run
        self.rejected = open(tmp / REJECTED_FILE, "w", encoding="utf-8")  # noqa: SIM115
        self.removed = open(tmp / REMOVED_FILE, "w", encoding="utf-8")  # noqa: SIM115

    def reject(self, rejects: list[Reject]) -> None:
        for r in rejects:
            record = r.as_dict()
            self.run.rejected[r.reason] += 1
            _jsonl(self.rejected, record)
            self.run.add_example(self.run.examples_rejected, r.reason, record)

    def remove(self, records: list[dict], counter: Counter | None = None) -> None:
        """Append removal records and count them (default: as filtered, by reason)."""
        counter = self.run.filtered if counter is None else counter
        for record in records:
            example = record.pop(EXAMPLE_KEY, None)  # the row's text, for the report only
            counter[record["reason"]] += 1
            _jsonl(self.removed, record)
            self.run.add_example(self.run.examples_removed, record["reason"],
                                 {**record, **example} if example else record)

    def close(self) -> None:
        self.rejected.close()
        self.removed.close()
