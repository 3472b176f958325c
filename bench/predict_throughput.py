"""Prediction throughput: `train predict`'s batched inference against the tutorial way, same
model, same rows, same device.

    python bench/predict_throughput.py [--gen-rows 16] [--max-new-tokens 32] [--cls-rows 256]
        [--batch-size 16] [--sft-run RUN] [--classifier-run RUN] [--threads N]

(a) Generation, on a LoRA SFT run of SmolLM2-135M-Instruct (briefly trained here on the support
    fixture, or `--sft-run`), its adapter merged: `Predictor.generate` (length-sorted batches,
    left padding, KV cache, stop at EOS) against one `model.generate` call per row (tokenize one
    prompt, generate, decode), on the same merged model object, the same prompts (the chat
    template), the same `max_new_tokens`, greedy. Also printed: how many rows' texts agree.
(b) Classification, on a MiniLM-L6 classifier run (briefly trained on the reviews fixture, or
    `--classifier-run`): `Predictor.classify` against `transformers.pipeline("text-
    classification")` on the run's full (or merged) model directory, called on the list of texts
    as the tutorial does (one row at a time), and with the same batch size as ours.

Each side gets one warm-up call first (not timed). Device: CUDA when torch sees it, else CPU.
Prints rows/s of each side and the ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def train_runs(work: Path, need_sft: bool, need_cls: bool) -> tuple[Path | None, Path | None]:
    """The two built-in models briefly trained on the fixtures (as the slow tests do)."""
    from dataprep.pipeline import run_pipeline
    from train.config import resolve_config
    from train.runner import run_training

    store, fixtures = work / "store", ROOT / "fixtures"
    sft = cls = None
    if need_sft:
        chat = run_pipeline([fixtures / "support_chats.jsonl"], "support", None, store)
        sft = work / "runs" / "smollm2"
        run_training(resolve_config({"dataset": f"support@{chat.version}", "store": str(store),
                                     "model": "smollm2-135m-instruct", "max_steps": 2,
                                     "batch_size": 8, "max_length": 1024, "output": str(sft)}))
    if need_cls:
        reviews = run_pipeline([fixtures / "reviews.csv"], "reviews",
                               fixtures / "reviews.recipe.yaml", store)
        cls = work / "runs" / "minilm"
        run_training(resolve_config({"dataset": f"reviews@{reviews.version}", "store": str(store),
                                     "model": "minilm-l6", "method": "classifier",
                                     "max_steps": 8, "batch_size": 8, "output": str(cls)}))
    return sft, cls


def version_rows(run, n: int) -> list[dict]:
    """n rows of the run's version (every split, repeated if it has fewer)."""
    rows = [r for split in ("train", "validation", "test")
            for r in run.version.data[split].to_list()]
    return (rows * (n // len(rows) + 1))[:n]


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def bench_generation(run_dir: Path, args, store: str | None) -> None:
    import torch

    from train.inference import GenerationSettings, Predictor
    from train.run_dir import open_run

    run = open_run(run_dir, store)
    predictor = Predictor(run, "auto", args.batch_size)      # the adapter merged at load
    rows = version_rows(run, args.gen_rows)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
    model, tok = predictor.model, predictor.tokenizer
    prompts = predictor.prompts_of(rows)
    lengths = [len(x) for x in tok(prompts)["input_ids"]]
    if max(lengths) > run.max_length:     # ours keeps the end of a longer prompt: not the same
        raise SystemExit(f"prompts up to {max(lengths)} tokens, over the run's max_length")

    def one_by_one(prompts: list[str]) -> list[str]:
        out = []
        for prompt in prompts:
            enc = tok(prompt, return_tensors="pt").to(predictor.device)
            with torch.inference_mode():
                ids = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                                     pad_token_id=tok.pad_token_id)
            out.append(tok.decode(ids[0, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        return out

    predictor.generate(rows[:1], settings)
    one_by_one(prompts[:1])
    ours, ours_s = timed(lambda: predictor.generate(rows, settings))
    theirs, theirs_s = timed(lambda: one_by_one(prompts))
    same = sum(a.strip() == b.strip() for a, b in zip(ours, theirs, strict=True))
    n = len(rows)
    print(f"(a) generation, {run.config['model']} LoRA merged, {n} rows (prompts "
          f"{min(lengths)}-{max(lengths)} tokens), max_new_tokens {args.max_new_tokens}, "
          f"greedy, batch {args.batch_size}:")
    print(f"    one model.generate per row : {n / theirs_s:8.2f} rows/s ({theirs_s:.1f} s)")
    print(f"    Predictor.generate         : {n / ours_s:8.2f} rows/s ({ours_s:.1f} s)")
    print(f"    ratio {theirs_s / ours_s:.2f}x; identical text on {same} of {n} rows")


def model_dir_of(run, predictor, work: Path) -> Path:
    """The run's full model directory, or its adapter merged and saved (what a pipeline loads)."""
    if (run.path / "model.safetensors").is_file():
        return run.path
    target = work / "merged-classifier"
    predictor.model.save_pretrained(target)
    predictor.tokenizer.save_pretrained(target)
    return target


def bench_classification(run_dir: Path, args, store: str | None, work: Path) -> None:
    import torch
    from transformers import pipeline

    from train.inference import Predictor
    from train.run_dir import open_run

    run = open_run(run_dir, store)
    predictor = Predictor(run, "auto", args.batch_size)
    texts = [r["text"] for r in version_rows(run, args.cls_rows)]
    device = 0 if torch.cuda.is_available() else -1
    pipe = pipeline("text-classification", model=str(model_dir_of(run, predictor, work)),
                    device=device, top_k=None, truncation=True, max_length=run.max_length)
    predictor.classify(texts[:args.batch_size])
    pipe(texts[:2])
    ours, ours_s = timed(lambda: predictor.classify(texts))
    _, single_s = timed(lambda: pipe(texts))
    batched, batched_s = timed(lambda: pipe(texts, batch_size=args.batch_size))
    labels = run.labels
    agree = sum(labels[int(p.argmax())] == max(b, key=lambda x: x["score"])["label"]
                for p, b in zip(ours, batched, strict=True))
    n = len(texts)
    print(f"(b) classification, {run.config['model']} ({run.config['method']}, "
          f"{'LoRA' if run.config['lora_r'] else 'full'}), {n} rows:")
    print(f"    pipeline, one row at a time : {n / single_s:8.1f} rows/s ({single_s:.2f} s)")
    print(f"    pipeline, batch_size {args.batch_size:<6} : {n / batched_s:8.1f} rows/s "
          f"({batched_s:.2f} s)")
    print(f"    Predictor.classify          : {n / ours_s:8.1f} rows/s ({ours_s:.2f} s)")
    print(f"    ratio {single_s / ours_s:.2f}x against one at a time, {batched_s / ours_s:.2f}x "
          f"against the batched pipeline; same label on {agree} of {n} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gen-rows", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--cls-rows", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--sft-run", type=Path, help="a LoRA SFT run (default: train one)")
    parser.add_argument("--classifier-run", type=Path, help="a classifier run (default: train)")
    parser.add_argument("--store", help="the store the given runs' versions are in")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default torch's)")
    parser.add_argument("--only", choices=["generation", "classification"])
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"machine: {os.cpu_count()} cores, {device}, torch threads {torch.get_num_threads()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}", flush=True)
    gen, cls = args.only in (None, "generation"), args.only in (None, "classification")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sft, classifier = train_runs(work, gen and not args.sft_run,
                                     cls and not args.classifier_run)
        store = args.store if (args.sft_run or args.classifier_run) else None
        if gen:
            bench_generation(args.sft_run or sft, args, store if args.sft_run else None)
        if cls:
            bench_classification(args.classifier_run or classifier, args,
                                 store if args.classifier_run else None, work)


if __name__ == "__main__":
    main()
