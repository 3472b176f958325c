"""The part every training flow shares: `TrainingArguments` from the config, `Trainer` with early
stopping on validation loss, resume, the test split evaluated once at the end, and the outputs
(the error analysis of validation and test among them, `analysis.py`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dataprep.store import Version

from . import freezing, tracking
from .analysis import training_analysis
from .checkpoints import check_resume
from .config import SCHEDULER_KWARGS, TrainConfig
from .distributed import finish, is_main_process, use_cpu, world_size
from .metrics import perplexity
from .modeling import use_bf16
from .outputs import write_card, write_json, write_run
from .run_report import HISTORY_FILE, write_report


@dataclass
class Flow:
    """What a recipe hands the loop."""

    model: Any
    tokenizer: Any
    splits: Any                      # DatasetDict with train / validation / test
    collator: Callable
    truncated: dict[str, int]
    preprocess_logits: Callable | None = None
    compute_metrics: Callable | None = None
    extra_run_info: dict[str, Any] | None = None
    #: What early stopping and the kept checkpoint follow: validation loss, or for a classifier
    #: validation macro-F1 (its loss rises from overconfidence while accuracy still improves:
    #: on Rotten Tomatoes, keeping the lowest-loss checkpoint cost 2 points of test accuracy).
    best_metric: str = "loss"
    #: Batch fields `Trainer` hands to `preprocess_logits` as labels (None: the model's labels).
    label_names: list[str] | None = None
    #: Load the best validation checkpoint at the end. Off for a fold of k-fold: its validation
    #: split is the held-out fold, which must not pick the weights that then predict it.
    select_best: bool = True


def _base_config(model):
    """The underlying transformers config, under a peft wrapper or not."""
    return getattr(model, "base_model", model).config if not hasattr(model, "config") else \
        model.config


def checkpointing(cfg: TrainConfig) -> bool:
    """Activation checkpointing unless the run says: on for SFT on a CPU, where the saved
    activations are most of the memory (the README's SmolLM2 run: 8 GB of its 10.6 at 16
    packed chats) and RAM is what runs out; off on a GPU and for classifiers, where speed
    matters more."""
    if cfg.gradient_checkpointing is not None:
        return cfg.gradient_checkpointing
    return cfg.method != "classifier" and use_cpu(cfg)


def training_arguments(cfg: TrainConfig, output: Path, n_train: int, has_eval: bool,
                       best_metric: str = "loss", label_names: list[str] | None = None,
                       select_best: bool = True):
    from transformers import TrainingArguments

    steps_per_epoch = max(1, math.ceil(n_train / (cfg.batch_size * cfg.grad_accum)))
    eval_steps = cfg.eval_steps or max(1, steps_per_epoch // 2)
    gpu = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(output), num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
        learning_rate=cfg.lr, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        # below 1, a share of the optimizer steps Trainer runs: max_steps when given, else the
        # epochs' steps over every process (a count made here would miss both)
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay, lr_scheduler_type=cfg.lr_scheduler,
        lr_scheduler_kwargs=SCHEDULER_KWARGS.get(cfg.lr_scheduler, {}), seed=cfg.seed,
        data_seed=cfg.seed, bf16=use_bf16(), optim="adamw_torch_fused" if gpu else "adamw_torch",
        activation_checkpointing=checkpointing(cfg),
        eval_strategy="steps" if has_eval else "no", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=2,
        load_best_model_at_end=has_eval and select_best,
        metric_for_best_model=f"eval_{best_metric}",
        greater_is_better=best_metric != "loss", logging_steps=max(1, min(50, eval_steps)),
        report_to=tracking.report_to(cfg.report_to, output), label_names=label_names,
        use_liger_kernel=cfg.liger, torch_compile=cfg.torch_compile,
        remove_unused_columns=False, dataloader_num_workers=0, dataloader_pin_memory=gpu,
        # On a machine without CUDA, use_cpu is what lets accelerate see a torchrun launch as
        # multi-process CPU training (gloo); otherwise each process would train alone.
        use_cpu=use_cpu(cfg),
        disable_tqdm=False)


def fit(cfg: TrainConfig, version: Version, flow: Flow, output: Path, callbacks: list | None = None,
        analyse: bool = True, test: bool = True) -> dict[str, Any]:
    """Train (or resume), evaluate on validation and test, save; returns the metrics.

    `callbacks` are added to `Trainer`'s (a search's pruning); `analyse` False skips the error
    analysis and report, which read the version's own splits (a fold trains on others); `test`
    False leaves the test split alone (a search's trials choose on validation only)."""
    from transformers import EarlyStoppingCallback

    from .trainer import RunTrainer, check_speed_options

    check_speed_options(cfg, (flow.extra_run_info or {}).get("packing"), world_size())
    output.mkdir(parents=True, exist_ok=True)
    checkpoint = check_resume(output, cfg, version)
    counts = freezing.parameter_counts(flow.model)
    info = {"truncated_rows": flow.truncated, **(flow.extra_run_info or {}), **counts,
            **freezing.frozen_info(flow.model, cfg)}
    if is_main_process():
        write_run(output, cfg, version, info)
        print(freezing.progress_line(counts), file=sys.stderr, flush=True)
    has_eval = flow.splits["validation"].num_rows > 0
    callbacks = list(callbacks or [])
    if has_eval and cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience))
    trainer = RunTrainer(
        model=flow.model, args=training_arguments(cfg, output, flow.splits["train"].num_rows,
                                                  has_eval, flow.best_metric,
                                                  flow.label_names, flow.select_best),
        train_dataset=flow.splits["train"],
        eval_dataset=flow.splits["validation"] if has_eval else None,
        data_collator=flow.collator, processing_class=flow.tokenizer, callbacks=callbacks,
        compute_metrics=flow.compute_metrics,
        preprocess_logits_for_metrics=flow.preprocess_logits,
        max_tokens_per_batch=cfg.max_tokens_per_batch)
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    metrics: dict[str, Any] = {"train": {k: v for k, v in result.metrics.items()
                                         if isinstance(v, int | float)}}
    for split in ("validation", "test") if test else ("validation",):
        if flow.splits[split].num_rows:
            values = trainer.evaluate(flow.splits[split], metric_key_prefix=split)
            values = {k.removeprefix(f"{split}_"): v for k, v in values.items()}
            if cfg.method != "classifier":
                values["perplexity"] = perplexity(values.get("loss"))
            metrics[split] = values
    metrics["truncated_rows"] = flow.truncated
    _base_config(flow.model).use_cache = True  # for generation after loading; see modeling
    trainer.save_model(str(output))
    if trainer.is_world_process_zero():
        write_outputs(cfg, version, flow, output, metrics)
        write_json(output / HISTORY_FILE, {"log_history": trainer.state.log_history})
    finish()
    # after the save: the analysis reads the saved run back, and the run's report shows it
    if analyse and is_main_process():
        training_analysis(output, version, cfg.store, cfg.device, cfg.batch_size)
        write_report(output, cfg.store)
    return metrics


def write_outputs(cfg: TrainConfig, version: Version, flow: Flow, output: Path,
                  metrics: dict[str, Any]) -> None:
    """Rank 0's share: tokenizer, merged weights if asked, metrics.json and the model card."""
    flow.tokenizer.save_pretrained(str(output))
    saved = "the LoRA adapter" if cfg.lora_r else "the full model"
    if cfg.merge and cfg.lora_r:
        merged = flow.model.merge_and_unload()
        merged.save_pretrained(str(output / "merged"))
        flow.tokenizer.save_pretrained(str(output / "merged"))
        saved += " and merged weights in `merged/`"
    write_json(output / "metrics.json", metrics)
    write_card(output, cfg, version, metrics, saved)
