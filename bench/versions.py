"""A child version against a fresh run: what growing a version by a week's logs costs.

    python bench/versions.py [--rows 200000] [--new 10000] [--repeats 1] [--profile]

One generated corpus (bench/dataprep_throughput.py's: ~100 words a row, 5% other languages,
planted exact and near duplicates, so the new rows copy old ones as a week's logs do) is cut in
two files: `parent.jsonl` (--rows rows) and `new.jsonl` (the --new rows after them). Timed, each
`dataprep run` in a child process with the end-to-end benchmark's recipe (`languages: [en]`):

1. the parent: `dataprep run parent.jsonl` (made once, not compared);
2. the child: `dataprep run new.jsonl --from bench@<parent>`;
3. fresh: `dataprep run parent.jsonl new.jsonl`, the same rows from nothing.

Printed: wall time, rows/s of input and peak memory of each, and the child's wall time as a share
of the fresh run's (target: at most 15%). The child and fresh versions are checked to hold the
same number of input rows, and the child's parent rows to be in the parent's splits. With
`--profile`, the child is made once more under cProfile in one process (DATAPREP_WORKERS=1) and
the time of its steps and of the plan's heaviest functions is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import sys
import tempfile
from pathlib import Path

from dataprep_throughput import RECIPE, ROOT, Measured, machine, measure, synthetic

TARGET = 0.15


def write_corpus(folder: Path, rows: int, new: int) -> tuple[Path, Path]:
    """The first `rows` generated rows to parent.jsonl, the next `new` to new.jsonl."""
    parent, fresh = folder / "parent.jsonl", folder / "new.jsonl"
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with parent.open("w", encoding="utf-8") as a, fresh.open("w", encoding="utf-8") as b:
        for k, row in enumerate(synthetic.generate_rows(rows + new, seed=14)):
            (a if k < rows else b).write(dumps(row) + "\n")
    return parent, fresh


def dataprep(store: Path, name: str, recipe: Path, *args: str) -> Measured:
    """`dataprep run ... -q` in a child process (this checkout first on its path)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dataprep", "run", *args, "--name", name, "--store", str(store),
           "--recipe", str(recipe), "-q"]
    measured = measure(cmd, env=env, cwd=store.parent)
    if measured.returncode:
        raise SystemExit(f"dataprep run failed (exit {measured.returncode}):\n"
                         f"{measured.stderr[-3000:]}")
    return measured


#: The child's steps: (file under dataprep/, function) and what the profile calls them.
STEPS = [(("pipeline.py", "_first_pass"), "first pass"), (("child_plan.py", "child_plan"), "plan"),
         (("lineage.py", "keep_lineage"), "lineage written"),
         (("pipeline.py", "_second_pass"), "second pass"),
         (("parent_splits.py", "link_parent_splits"), "split files linked")]


def profile_child(store: Path, recipe: Path, new_file: Path, parent: str) -> None:
    """The child made again under cProfile: its steps' cumulative seconds, then those of the
    plan's and the lineage's functions."""
    shutil.rmtree(store / "profiled", ignore_errors=True)
    shutil.copytree(store / "bench" / parent, store / "profiled" / parent)
    prof = store.parent / "child.prof"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATAPREP_WORKERS": "1"}
    cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "dataprep", "run",
           str(new_file), "--from", f"profiled@{parent}", "--name", "profiled", "--store",
           str(store), "--recipe", str(recipe), "-q"]
    measured = measure(cmd, env=env, cwd=store.parent)
    if measured.returncode:
        raise SystemExit(f"the profiled child failed:\n{measured.stderr[-3000:]}")
    stats = pstats.Stats(str(prof))
    print(f"\n## the child under cProfile, one process: {measured.seconds:.1f} s in all")
    for (file, function), what in STEPS:
        found = [v[3] for k, v in stats.stats.items()
                 if k[0].endswith(f"dataprep/{file}") and k[2] == function]
        print(f"- {what}: {sum(found):.2f} s")
    print("\nthe plan's and the lineage's functions by cumulative seconds:")
    stats.sort_stats("cumulative").print_stats(r"dataprep/(child_plan|neardup|minhash|lineage)",
                                               20)


def fastest(repeats: int, run) -> Measured:
    return min((run() for _ in range(repeats)), key=lambda m: m.seconds)


def check(store: Path, child: str, fresh: str, parent: str) -> None:
    """The child holds its parent's rows in their splits, and the same input as fresh."""
    import datasets

    def manifest(name: str, version: str) -> dict:
        return json.loads((store / name / version / "manifest.json").read_text())

    old = datasets.load_from_disk(str(store / "bench" / parent))
    new = datasets.load_from_disk(str(store / "bench" / child))
    where = {i: s for s in new for i in new[s]["id"]}
    moved = sum(where.get(i) != s for s in old for i in old[s]["id"])
    inputs = manifest("bench", parent)["counts"]["input"] + \
        manifest("bench", child)["counts"]["input"]
    if moved or inputs != manifest("fresh", fresh)["counts"]["input"]:
        raise SystemExit(f"check failed: {moved} parent rows moved; {inputs} input rows in "
                         f"parent + child, {manifest('fresh', fresh)['counts']['input']} fresh")


def line(what: str, rows: int, m: Measured) -> str:
    return (f"| {what} | {rows:,} | {m.seconds:.1f} | {rows / m.seconds:,.0f} | "
            f"{m.tree_mib:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the parent")
    parser.add_argument("--new", type=int, default=10_000, help="rows the child adds")
    parser.add_argument("--repeats", type=int, default=1, help="best of this many runs each")
    parser.add_argument("--profile", action="store_true", help="profile the child once more")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-versions-"))
    try:
        store = work / "store"
        recipe = work / "recipe.yaml"
        recipe.write_text(RECIPE, encoding="utf-8")
        parent_file, new_file = write_corpus(work, args.rows, args.new)
        made = dataprep(store, "bench", recipe, str(parent_file))
        parent = made.stdout.strip().splitlines()[-1]

        def child_run() -> Measured:
            for path in (store / "bench").iterdir():  # the child from an earlier repeat
                if path.is_dir() and path.name != parent:
                    shutil.rmtree(path)
            return dataprep(store, "bench", recipe, str(new_file), "--from", f"bench@{parent}")

        def fresh_run() -> Measured:
            shutil.rmtree(store / "fresh", ignore_errors=True)
            return dataprep(store, "fresh", recipe, str(parent_file), str(new_file))

        child = fastest(args.repeats, child_run)
        fresh = fastest(args.repeats, fresh_run)
        check(store, child.stdout.strip().splitlines()[-1],
              fresh.stdout.strip().splitlines()[-1], parent)
        ratio = child.seconds / fresh.seconds
        print(f"# child version vs fresh run on {machine()}")
        print("| run | input rows | wall s | input rows/s | peak MiB (tree PSS) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print(line("parent (made once)", args.rows, made))
        print(line(f"child: {args.new:,} new rows --from the parent", args.new, child))
        print(line("fresh: all rows", args.rows + args.new, fresh))
        verdict = "meets" if ratio <= TARGET else "misses"
        print(f"\nchild / fresh wall time: {ratio:.1%} ({verdict} the {TARGET:.0%} target)")
        if args.profile:
            profile_child(store, recipe, new_file, parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
