"""Throughput of dataprep's hot stages against named baselines, measured in one run.

    python bench/dataprep_throughput.py [--rows 200000] [--rows-large 1000000] [--skip-large]

1. MinHash signatures (128 permutations, word 5-gram shingles), both from the same normalised
   text: dataprep's batch implementation (splitting into words and shingling included) against
   datasketch.MinHash(num_perm=128).update_batch per document on the same shingles (built in
   advance, its best case); and the agreement of the two Jaccard estimates on planted pairs.
2. Language ID: the default backend (fastText lid.176, one batched call) against langdetect on
   the same sentences, and the accuracy of both on the labelled set in bench/langid_sentences.py.
3. End to end `dataprep run` on a generated corpus (~100 words a row, 5% other languages, planted
   duplicates): rows per second at --rows, and peak memory (max RSS) at --rows and --rows-large.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT / "bench"))

import synthetic  # noqa: E402
from langid_sentences import SENTENCES  # noqa: E402

from dataprep.langid import detect_languages  # noqa: E402
from dataprep.minhash import signatures  # noqa: E402
from dataprep.textview import normalise_for_dedup  # noqa: E402


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def best_of(repeats: int, fn):
    """The fastest of `repeats` timed calls (and the last result): both sides get the same."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def word_shingles(text: str, n: int = 5) -> list[bytes]:
    words = text.split()
    if len(words) < n:
        return [" ".join(words).encode()]
    return [" ".join(words[i:i + n]).encode() for i in range(len(words) - n + 1)]


def bench_minhash(docs: int = 3000) -> None:
    from datasketch import MinHash

    rows = list(synthetic.generate_rows(docs, seed=11, near_dup_fraction=0.25,
                                        exact_dup_fraction=0.0, foreign_fraction=0.0))
    texts = pa.array([r["text"] for r in rows])
    norm = normalise_for_dedup(texts)
    shingles = [word_shingles(t) for t in norm.to_pylist()]

    def datasketch_all():
        out = []
        for sh in shingles:
            m = MinHash(num_perm=128)
            m.update_batch(sh)
            out.append(m)
        return out

    t_theirs, theirs = best_of(3, datasketch_all)
    t_ours, ours = best_of(3, lambda: signatures(norm))

    index = {r["id"]: i for i, r in enumerate(rows)}
    pairs = [(index[r["planted"]["of"]], i) for i, r in enumerate(rows)
             if r["planted"] and r["planted"]["kind"] == "near"]
    est_ours = np.array([(ours[a] == ours[b]).mean() for a, b in pairs])
    est_theirs = np.array([theirs[a].jaccard(theirs[b]) for a, b in pairs])
    true = np.array([len(set(shingles[a]) & set(shingles[b])) / len(set(shingles[a]) |
                                                                      set(shingles[b]))
                     for a, b in pairs])
    diff = np.abs(est_ours - est_theirs)
    print(f"\n## MinHash signatures ({docs} docs, ~100 words, 128 permutations, best of 3)")
    print(f"datasketch update_batch per doc : {t_theirs / docs * 1e6:8.1f} us/doc")
    print(f"dataprep batch (shingling incl.): {t_ours / docs * 1e6:8.1f} us/doc")
    print(f"speed-up                        : {t_theirs / t_ours:8.1f}x  (target >= 10x)")
    print(f"planted near pairs              : {len(pairs)} (true Jaccard "
          f"{true.min():.2f}-{true.max():.2f})")
    print(f"|ours - datasketch| estimate    : mean {diff.mean():.3f}, "
          f"share within 0.05 {np.mean(diff <= 0.05):.2f}, max {diff.max():.3f}")
    print(f"mean estimate ours / datasketch / true: {est_ours.mean():.3f} / "
          f"{est_theirs.mean():.3f} / {true.mean():.3f}")
    print(f"mean |estimate - true|          : ours {np.abs(est_ours - true).mean():.3f}, "
          f"datasketch {np.abs(est_theirs - true).mean():.3f}")


def bench_langid(repeat: int = 12) -> None:
    gold = np.array([lang for lang, _ in SENTENCES])
    texts = pa.array([s for _, s in SENTENCES])
    acc_ft = float((detect_languages(texts, "fasttext") == gold).mean())
    acc_ld = float((detect_languages(texts, "langdetect") == gold).mean())
    many = pa.concat_arrays([texts] * repeat)
    t_ft = best_of(3, lambda: detect_languages(many, "fasttext"))[0]
    t_ld = best_of(3, lambda: detect_languages(texts, "langdetect"))[0] * repeat
    n = len(many)
    print(f"\n## Language ID ({len(SENTENCES)} labelled sentences, "
          f"{len(set(gold))} languages; timed on {n})")
    print(f"langdetect                      : {n / t_ld:10.0f} sentences/s, "
          f"accuracy {acc_ld:.3f}")
    print(f"fastText lid.176 (default)      : {n / t_ft:10.0f} sentences/s, "
          f"accuracy {acc_ft:.3f}")
    print(f"speed-up                        : {t_ld / t_ft:8.1f}x  (target >= 50x, "
          "at least as accurate)")


def run_end_to_end(rows: int, workdir: Path, code: Path | None = None, tag: str = ""
                   ) -> tuple[float, float, dict]:
    """Generate `rows` rows, run `dataprep run` in a child process; (seconds, peak MiB, counts).
    `code`: run the dataprep of that checkout instead (PYTHONPATH), for a same-run baseline."""
    data = workdir / f"corpus-{rows}.jsonl"
    if not data.exists():
        synthetic.write_jsonl(data, rows, seed=5)
    store = workdir / f"store-{rows}{tag}"
    shutil.rmtree(store, ignore_errors=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-c", "import resource, sys; from dataprep.cli import main; "
           "sys.argv = ['dataprep'] + sys.argv[1:]; main()",
           "run", str(data), "--name", "bench", "--store", str(store), "-q"]
    start = time.perf_counter()
    proc = subprocess.run(cmd + [], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr)
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    version = proc.stdout.strip().splitlines()[-1]
    report = json.loads((store / "bench" / version / "report.json").read_text())
    return seconds, peak_mib, report["counts"]


def bench_end_to_end(rows: int, rows_large: int | None) -> None:
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        seconds, peak, counts = run_end_to_end(rows, workdir)
        print(f"\n## End to end `dataprep run` (default recipe, {rows:,} rows of ~100 words)")
        print(f"wall time                       : {seconds:8.1f} s (process start included)")
        print(f"throughput                      : {rows / seconds:8.0f} rows/s  "
              f"(target 25,000 rows/s: {rows / seconds / 25000:.2f}x of it)")
        print(f"peak memory                     : {peak:8.0f} MiB")
        print(f"rows out / exact / near dups    : {sum(counts['output'].values())} / "
              f"{counts['duplicates']['exact']} / {counts['duplicates']['near']}")
        if rows_large:
            # RUSAGE_CHILDREN keeps the maximum over children: run the large case in a fresh
            # interpreter so its peak is its own.
            out = subprocess.run([sys.executable, __file__, "--only-end-to-end", "--rows",
                                  str(rows_large), "--skip-large"], capture_output=True,
                                 text=True)
            large_peak = float(re.search(r"peak memory\s+:\s+(\d+)", out.stdout).group(1))
            large_secs = float(re.search(r"wall time\s+:\s+([\d.]+)", out.stdout).group(1))
            print(f"peak memory at {rows_large:,} rows   : {large_peak:8.0f} MiB "
                  f"({large_peak / peak:.2f}x the {rows:,}-row peak; must stay under 5x) "
                  f"in {large_secs:.0f} s = {rows_large / large_secs:.0f} rows/s")


def bench_against(rows: int, baseline: Path, repeats: int) -> None:
    """This checkout against another one (e.g. `git worktree add /tmp/base <commit>`) on the same
    corpus in the same run, alternating, best of `repeats` each: is the change any slower?"""
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        here = Path(__file__).resolve().parent.parent
        best = {"baseline": float("inf"), "this": float("inf")}
        for _ in range(repeats):
            for name, code in (("baseline", baseline), ("this", here)):
                seconds, _, _ = run_end_to_end(rows, workdir, code, tag=name)
                best[name] = min(best[name], seconds)
        print(f"\n## End to end against {baseline} ({rows:,} rows, best of {repeats}, "
              "alternating)")
        for name, seconds in best.items():
            print(f"{name:<32}: {seconds:8.1f} s = {rows / seconds:8.0f} rows/s")
        print(f"{'speed ratio this / baseline':<32}: {best['baseline'] / best['this']:8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rows-large", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--only-end-to-end", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--against", type=Path, help="a checkout of an earlier commit: time both "
                        "end to end on the same corpus in this run (and nothing else)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.against:
        bench_against(args.rows, args.against, args.repeats)
        return
    if not args.only_end_to_end:
        print(f"# dataprep throughput on {machine()}")
        bench_minhash()
        bench_langid()
    if not args.skip_end_to_end:
        bench_end_to_end(args.rows, None if args.skip_large else args.rows_large)


if __name__ == "__main__":
    main()
