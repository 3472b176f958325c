"""Memory of `dataprep run` on inputs built to exhaust it: one huge row among normal ones.

    python bench/hostile_memory.py [--big-gb 2] [--line-mb 50] [--item-mb 80] [--code PATH]

1. a `.jsonl.gz` of a few MB holding one 2 GB line (written streaming, gzip level 9, from one
   repeated chunk, so it is cheap to build);
2. a plain `.jsonl` with one 50 MB line;
3. a `.json` array with one 80 MB item (its read buffer once grew by re-copying: quadratic).

Each file has a few normal rows around the big one, and each run is `dataprep run` in a child
process under a 3 GiB limit (RLIMIT_AS on each process, and the tree killed when its summed
memory passes it), so a run that would hold the row whole ends as "exceeded" instead of taking
the machine's memory. Printed: exit
status, wall time, peak memory (the process tree's summed PSS, sampled, and the largest
process's max RSS), whether that is under the 500 MiB target, and what became of the big row:
rejected as `too_large` (and how large its rejected.jsonl record is: a bounded prefix, never the
row), or kept, or lost. `--code` runs the dataprep of another checkout.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataprep_throughput import ROOT, Measured, machine, measure, synthetic  # noqa: E402

#: Each process of the run may map at most this much (RLIMIT_AS): well under the machine's
#: memory, well over what a correct run needs.
LIMIT_BYTES = 3 << 30
TARGET_MIB = 500
#: Normal rows before and after the big one.
NORMAL_BEFORE, NORMAL_AFTER = 3, 3
#: The big row's text is this chunk repeated: long enough to be a plausible text, short enough
#: (under deflate's 32 KiB window) that gzip turns each repeat into a few back-references.
CHUNK = ("The parcel arrived late and the box was crushed, so I would like a refund. " * 200)


def normal_rows(n: int, seed: int) -> list[dict]:
    return [{"id": r["id"], "text": r["text"], "label": r["label"]}
            for r in synthetic.generate_rows(n, seed=seed, exact_dup_fraction=0.0,
                                             near_dup_fraction=0.0, foreign_fraction=0.0)]


def big_row_pieces(text_bytes: int):
    """The big row as JSON, in pieces: '{"id": ..., "text": "' + chunks + '", ...}'."""
    chunk = CHUNK.encode()
    yield b'{"id": "BIG-1", "label": "negative", "text": "'
    left = text_bytes
    while left > 0:
        piece = chunk[:left] if left < len(chunk) else chunk
        yield piece
        left -= len(piece)
    yield b'"}'


def write_lines(path: Path, text_bytes: int, opener=open, **kwargs) -> None:
    """JSON Lines: normal rows, the big row, normal rows."""
    before, after = normal_rows(NORMAL_BEFORE, 1), normal_rows(NORMAL_AFTER, 2)
    with opener(path, "wb", **kwargs) as fh:
        for row in before:
            fh.write(json.dumps(row).encode() + b"\n")
        for piece in big_row_pieces(text_bytes):
            fh.write(piece)
        fh.write(b"\n")
        for row in after:
            fh.write(json.dumps(row).encode() + b"\n")


def write_array(path: Path, text_bytes: int) -> None:
    """A JSON array: normal items, the big item, normal items."""
    before, after = normal_rows(NORMAL_BEFORE, 1), normal_rows(NORMAL_AFTER, 2)
    with open(path, "wb") as fh:
        fh.write(b"[\n")
        for row in before:
            fh.write(json.dumps(row).encode() + b",\n")
        for piece in big_row_pieces(text_bytes):
            fh.write(piece)
        for row in after:
            fh.write(b",\n" + json.dumps(row).encode())
        fh.write(b"\n]\n")


def outcome(measured: Measured, store: Path) -> str:
    """What became of the big row, from the published version's files (its rejected.jsonl
    record is found by the bounded prefix of the row it keeps, which starts with the id); or
    how the run failed."""
    err = measured.stderr
    if measured.killed or measured.returncode < 0 or "MemoryError" in err or "bad_alloc" in err:
        return (f"exceeded the {LIMIT_BYTES >> 30} GiB limit (exit {measured.returncode}): "
                f"{last_line(err)}")
    if measured.returncode:
        return f"failed (exit {measured.returncode}): {last_line(err)}"
    version = store / "bench" / measured.stdout.strip().splitlines()[-1]
    with open(version / "rejected.jsonl", "rb") as fh:
        for line in fh:
            record = json.loads(line)
            if "BIG-1" in str(record.get("raw", ""))[:200]:
                return (f"rejected as {record['reason']} (its rejected.jsonl record: "
                        f"{len(line):,} bytes)")
    with open(version / "removed.jsonl", "rb") as fh:
        for line in fh:
            if json.loads(line).get("id") == "BIG-1":
                return f"removed ({json.loads(line)['reason']}), not rejected as too_large"
    return "kept in the output: not rejected as too_large"


def last_line(text: str) -> str:
    """The error's own line (a traceback's last line names the exception), else the last."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\w(Error|Exception)\b|Abort|Killed", line)]
    found = errors or lines
    return found[-1].strip()[:200] if found else "(nothing on stderr)"


def run_case(title: str, path: Path, code: Path, tmp: Path) -> None:
    store = tmp / f"store-{path.name}"
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "dataprep", "run", str(path), "--name", "bench", "--store",
           str(store), "-q"]
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    measured = measure(cmd, env=env, cwd=tmp, limit_bytes=LIMIT_BYTES)
    peak = max(measured.tree_mib, measured.rss_mib)
    verdict = "under" if peak < TARGET_MIB else "OVER"
    print(f"\n## {title} ({path.stat().st_size / 1e6:,.1f} MB on disk)")
    print(f"exit status                     : {measured.returncode}")
    print(f"wall time                       : {measured.seconds:8.1f} s")
    print(f"peak memory, process tree PSS   : {measured.tree_mib:8.0f} MiB")
    print(f"peak memory, largest process RSS: {measured.rss_mib:8.0f} MiB  ({verdict} the "
          f"{TARGET_MIB} MiB target)")
    print(f"the big row                     : {outcome(measured, store)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--big-gb", type=float, default=2.0, help="the .gz line's size, GB")
    parser.add_argument("--line-mb", type=float, default=50.0, help="the .jsonl line, MB")
    parser.add_argument("--item-mb", type=float, default=80.0, help="the .json item, MB")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose dataprep runs")
    args = parser.parse_args()
    print(f"# dataprep run on hostile inputs, {machine()}; each process limited to "
          f"{LIMIT_BYTES >> 30} GiB of address space")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        gz = tmp_path / "one-huge-line.jsonl.gz"
        write_lines(gz, int(args.big_gb * 1e9), opener=gzip.open, compresslevel=9)
        run_case(f"one {args.big_gb:g} GB line in a .jsonl.gz", gz, args.code, tmp_path)
        gz.unlink()
        plain = tmp_path / "one-long-line.jsonl"
        write_lines(plain, int(args.line_mb * 1e6))
        run_case(f"one {args.line_mb:g} MB line in a .jsonl", plain, args.code, tmp_path)
        plain.unlink()
        array = tmp_path / "one-big-item.json"
        write_array(array, int(args.item_mb * 1e6))
        run_case(f"one {args.item_mb:g} MB item in a .json array", array, args.code, tmp_path)


if __name__ == "__main__":
    main()
