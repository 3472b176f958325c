"""What decontamination adds to a run: `dataprep run` with and without a `decontaminate` source.

    python bench/decontam.py [--rows 200000] [--eval-rows 10000] [--planted 100] [--repeats 1]

The corpus is bench/dataprep_throughput.py's (fixtures/synthetic.py, ~100 words a row, planted
duplicates, 5% other languages; the same recipe, `languages: [en]`). The evaluation file is
--eval-rows rows of another kind (`question` and `choices`, as a benchmark's), made of the same
generator's words in shuffled order (so they share no 13-gram with the corpus by chance), and
--planted of them hold a 20-word span of a corpus row instead, so the check has rows to find.
Both runs are child processes (`dataprep run`, all cores, as a user runs it), alternated
--repeats times; the fastest of each is compared: added wall time as a ratio of the plain run
(target: under 20%), plus the rows the check removed and the overlaps it reported. Then, in this
process, the two pieces alone: building the index, and checking the corpus's texts against it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
sys.path.insert(0, str(ROOT / "bench"))

import synthetic  # noqa: E402
from dataprep_throughput import RECIPE, dataprep_command, machine, measure  # noqa: E402

from dataprep.decontam import EvalIndex, resolve_sources  # noqa: E402

#: Words of a corpus row copied into a planted evaluation row.
SPAN = 20


def write_evaluation(path: Path, corpus: Path, rows: int, planted: int, seed: int = 9) -> int:
    """--eval-rows benchmark-like records; `planted` of them quote a 20-word span of a corpus
    row (taken from rows spread over the corpus). Returns how many were planted."""
    rnd = random.Random(seed)
    texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8")]
    sources = [t.split() for t in rnd.sample(texts, min(planted, len(texts)))]
    sources = [words for words in sources if len(words) >= SPAN]
    with path.open("w", encoding="utf-8") as fh:
        for i, row in enumerate(synthetic.generate_rows(rows, seed=seed + 1,
                                                        exact_dup_fraction=0,
                                                        near_dup_fraction=0)):
            words = row["text"].split()
            rnd.shuffle(words)
            if i < len(sources):
                start = rnd.randrange(len(sources[i]) - SPAN + 1)
                words = words[:10] + sources[i][start:start + SPAN] + words[10:30]
            question, tail = " ".join(words[:-12]), words[-12:]
            choices = [" ".join(tail[3 * k:3 * k + 3]) for k in range(4)]
            fh.write(json.dumps({"question": question, "choices": choices, "answer": 0}) + "\n")
    return len(sources)


def run_once(corpus: Path, workdir: Path, recipe: str, tag: str) -> tuple[float, dict]:
    """One `dataprep run` in a child process: wall seconds and its report."""
    store = workdir / f"store-{tag}"
    shutil.rmtree(store, ignore_errors=True)
    recipe_path = workdir / f"recipe-{tag}.yaml"
    recipe_path.write_text(recipe, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    measured = measure([sys.executable, *dataprep_command(corpus, store, recipe_path)], env=env,
                       cwd=workdir)
    if measured.returncode:
        raise SystemExit(f"dataprep run ({tag}) failed:\n{measured.stderr[-3000:]}")
    version = store / "bench" / measured.stdout.strip().splitlines()[-1]
    report = json.loads((version / "report.json").read_text(encoding="utf-8"))
    shutil.rmtree(store, ignore_errors=True)
    return measured.seconds, report


def pieces(corpus: Path, evaluation: Path, workdir: Path) -> None:
    """The index build and the check alone, in this process (one core)."""
    start = time.perf_counter()
    sources = resolve_sources([evaluation.name], evaluation.parent, workdir / "store-none")
    index = EvalIndex(sources, 13, workdir / "store-none", 4 << 20)
    built = time.perf_counter() - start
    texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8")]
    start = time.perf_counter()
    hits = 0
    for lo in range(0, len(texts), 2048):
        hits += int((index.matches(pa.array(texts[lo:lo + 2048], pa.string())) >= 0).sum())
    checked = time.perf_counter() - start
    print(f"index of {index.stats[0].rows:,} evaluation rows ({index.hashes.size:,} distinct "
          f"13-grams): built in {built:.2f} s")
    print(f"check of {len(texts):,} corpus texts: {checked:.2f} s "
          f"({checked / max(len(texts), 1) * 1e6:.1f} us/row, one core), {hits} rows matched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--eval-rows", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        corpus = workdir / "corpus.jsonl"
        synthetic.write_jsonl(corpus, args.rows, seed=5)
        evaluation = workdir / "eval.jsonl"
        planted = write_evaluation(evaluation, corpus, args.eval_rows, args.planted)
        with_recipe = RECIPE + f"decontaminate: [{evaluation.name}]\n"
        plain_s, checked_s, report = [], [], {}
        for _ in range(args.repeats):
            plain_s.append(run_once(corpus, workdir, RECIPE, "plain")[0])
            seconds, report = run_once(corpus, workdir, with_recipe, "decontaminated")
            checked_s.append(seconds)
        plain, checked = min(plain_s), min(checked_s)
        section = report["decontamination"]
        print(f"\n## {args.rows:,} rows against {args.eval_rows:,} evaluation rows "
              f"({planted} quoting a corpus row), best of {args.repeats}")
        print(f"without decontamination: {plain:.1f} s ({args.rows / plain:,.0f} rows/s)")
        print(f"with decontamination:    {checked:.1f} s ({args.rows / checked:,.0f} rows/s)")
        added = checked / plain - 1
        verdict = "met" if added < 0.20 else "MISSED"
        print(f"added wall time: {checked - plain:+.1f} s = {added:+.1%} of the plain run "
              f"(target under 20%: {verdict})")
        print(f"train rows removed: {section['removed']}; validation / test rows overlapping: "
              f"{section['overlaps']['validation']} / {section['overlaps']['test']}")
        pieces(corpus, evaluation, workdir)


if __name__ == "__main__":
    main()
