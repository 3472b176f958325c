"""Do two checkouts make the same version? Run `dataprep run` from this checkout and from another
(e.g. `git worktree add /tmp/base <commit>`) on the same inputs and compare what they wrote: every
split row for row (all columns), `rejected.jsonl`, `removed.jsonl` and the report's sections.

    python bench/same_rows.py --against /tmp/base --rows 200000        # a generated corpus
    python bench/same_rows.py --against /tmp/base fixtures/reviews.csv --recipe fixtures/r.yaml

Exit 0 when everything is the same, 1 otherwise (the first differences are printed). A tool for
refactors that must not change results, not a benchmark: it prints no timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import synthetic  # noqa: E402

SPLITS = ("train", "validation", "test")
REPORT_SECTIONS = ("counts", "splits", "cleaning", "languages", "lengths", "dedup", "leakage",
                   "rare_labels")


def run(code: Path, inputs: list[str], recipe: str | None, store: Path) -> Path:
    """`dataprep run` with `code` first on the path; returns the version directory."""
    cmd = [sys.executable, "-m", "dataprep", "run", *inputs, "--name", "same", "--store",
           str(store), "-q"] + (["--recipe", recipe] if recipe else [])
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(code)})
    if proc.returncode:
        raise SystemExit(f"{code}: {proc.stderr.strip().splitlines()[-1]}")
    return store / "same" / proc.stdout.strip().splitlines()[-1]


def split_rows(version: Path, split: str) -> pa.Table:
    (path,) = (version / split).glob("*.arrow")
    with pa.OSFile(str(path)) as source:
        return pa.ipc.open_stream(source).read_all()


def without_timing(entries: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in ("seconds", "candidates_per_second")}
            for e in entries]


def differences(a: Path, b: Path) -> list[str]:
    out = []
    for split in SPLITS:
        ta, tb = split_rows(a, split), split_rows(b, split)
        if ta.column_names != tb.column_names:
            out.append(f"{split}: columns {ta.column_names} != {tb.column_names}")
        elif ta.to_pylist() != tb.to_pylist():
            out.append(f"{split}: rows differ ({ta.num_rows} vs {tb.num_rows})")
    for name in ("rejected.jsonl", "removed.jsonl"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            out.append(f"{name} differs")
    ra, rb = (json.loads((v / "report.json").read_text()) for v in (a, b))
    out += [f"report.{key} differs" for key in REPORT_SECTIONS if ra[key] != rb[key]]
    if without_timing(ra["augmentation"]) != without_timing(rb["augmentation"]):
        out.append("report.augmentation differs")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", nargs="*", help="raw files (default: a generated corpus)")
    parser.add_argument("--against", type=Path, required=True, help="the other checkout")
    parser.add_argument("--recipe")
    parser.add_argument("--rows", type=int, default=200_000, help="generated corpus size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        inputs = args.inputs
        if not inputs:
            corpus = Path(tmp) / f"corpus-{args.rows}.jsonl"
            synthetic.write_jsonl(corpus, args.rows, seed=5)
            inputs = [str(corpus)]
        a = run(args.against, inputs, args.recipe, Path(tmp) / "a")
        b = run(ROOT, inputs, args.recipe, Path(tmp) / "b")
        found = differences(a, b)
        sizes = {s: split_rows(b, s).num_rows for s in SPLITS}
        removed = sum(1 for _ in (b / "removed.jsonl").open())
        print(f"splits {sizes}, removed {removed}: "
              + ("the same in every split, file and report section" if not found
                 else "; ".join(found)))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
