"""What a multi-process launch (torchrun / accelerate launch) needs beyond what `Trainer` does:
one output directory all processes agree on, and a clean shutdown.

`Trainer` sets up the process group itself; these helpers only act when one exists or when
`WORLD_SIZE` says there are several processes, so a single-process run never touches them.
"""

from __future__ import annotations

import os
from typing import Any

import torch


def use_cpu(cfg) -> bool:
    """Train on the CPU when asked or when there is no CUDA device (then a torchrun launch is
    multi-process CPU training over gloo; see `loop.training_arguments`)."""
    return cfg.device == "cpu" or not torch.cuda.is_available()


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch (or the only process): the one that writes."""
    return int(os.environ.get("RANK", "0")) == 0


def agreed(value: Any, cpu: bool) -> Any:
    """Rank 0's `value` on every process (e.g. the timestamp in the default output directory,
    which processes started a second apart would otherwise disagree on)."""
    if world_size() == 1:
        return value
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    # The same state TrainingArguments builds later (use_cpu on a machine without CUDA), so
    # Trainer reuses this process group instead of building another.
    PartialState(cpu=cpu)
    return broadcast_object_list([value], from_process=0)[0]


def finish() -> None:
    """Wait for rank 0's writes, then take the process group down on every process.

    Without this, a process that finished first exits while gloo's threads are still alive and
    aborts ("terminate called without an active exception"); torchrun then reports the run as
    failed although it trained. Seen on 2 CPU processes about one run in three.
    """
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
