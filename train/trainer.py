"""`Trainer` as the runs use it: the causal LM's loss without its logits tensor (`loss.py`), and
batches by a token budget when `--max-tokens-per-batch` is given (`token_batches.py`); the
checks of the GPU speed options, one-line errors before any training starts.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch
from transformers import Trainer
from transformers.modeling_outputs import CausalLMOutputWithPast

from .config import TrainConfig
from .errors import TrainError
from .loss import ChunkedLoss, base_model


def check_speed_options(cfg: TrainConfig, packing: bool | None, world_size: int = 1) -> None:
    """`--liger` needs the package and CUDA; `--max-tokens-per-batch` packed rows in one
    process (accelerate shards a batch sampler's batches across processes assuming equal
    sizes)."""
    if cfg.liger:
        if importlib.util.find_spec("liger_kernel") is None:
            raise TrainError("--liger needs the liger-kernel package (pip install liger-kernel)")
        if not torch.cuda.is_available() or cfg.device == "cpu":
            raise TrainError("--liger needs a CUDA GPU (Liger's kernels are Triton kernels)")
    if cfg.max_tokens_per_batch:
        if not packing:
            raise TrainError("--max-tokens-per-batch needs packed training (an SFT run without "
                             "--no-packing, on an attention that supports packing)")
        if world_size > 1:
            raise TrainError("--max-tokens-per-batch works in one process, not under torchrun")


class RunTrainer(Trainer):
    """`Trainer` with the chunked causal LM loss and the optional token budget per batch.

    `max_tokens_per_batch` replaces the batch size for training (evaluation keeps it)."""

    def __init__(self, *args: Any, max_tokens_per_batch: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_tokens_per_batch = max_tokens_per_batch
        # Liger's patched forward computes its own fused loss: leave the loss to it
        self.chunked = None if self.args.use_liger_kernel else ChunkedLoss(self.model)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if (self.chunked is None or self.label_smoother is not None
                or self.compute_loss_func is not None):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        head = base_model(self.accelerator.unwrap_model(model)).get_output_embeddings()
        num = num_items_in_batch if self.model_accepts_loss_kwargs else None
        # evaluation hands the logits to the metrics' reducers, which need every position
        with self.accelerator.autocast():  # the head as inside the model's (wrapped) forward
            done = self.chunked(model, inputs, head, num, full_logits=return_outputs)
        if done is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        loss, outputs = done
        # as `Trainer.compute_loss` scales a loss summed over the tokens of every process
        if (self.args.average_tokens_across_devices and self.model_accepts_loss_kwargs
                and num_items_in_batch is not None):
            scale = self.accelerator.num_processes // self.get_tp_size()
            loss = loss * (scale if self.args.n_gpu <= 1 else self.args.n_gpu)
        if not return_outputs:
            return loss
        return loss, CausalLMOutputWithPast(loss=loss, logits=outputs.logits)

    def get_train_dataloader(self):
        if not self.max_tokens_per_batch:
            return super().get_train_dataloader()
        from functools import partial

        from torch.utils.data import DataLoader
        from transformers.trainer_utils import seed_worker

        from .token_batches import TokenBudgetSampler

        dataset = self.train_dataset
        lengths = [len(ids) for ids in dataset["input_ids"]]
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        sampler = TokenBudgetSampler(lengths, self.max_tokens_per_batch, seed)
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            worker_init_fn=partial(seed_worker, num_workers=self.args.dataloader_num_workers,
                                   rank=self.args.process_index))
        return self.accelerator.prepare(loader)
