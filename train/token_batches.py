"""Batches by a token budget, for packed training (`--max-tokens-per-batch`).

Why: a packed batch of a fixed number of rows holds as many tokens as its rows happen to have, so
a batch of short chats leaves the GPU half idle and a batch of long ones runs it out of memory.
With a budget, every batch is filled with rows up to N real tokens whatever their lengths: the
step's cost is steady and near the most the card holds.

Hand-written because neither transformers nor accelerate has one: transformers'
`LengthGroupedSampler` and `BatchRebalanceSampler` keep a fixed number of rows per batch or per
optimizer step. Each epoch shuffles the rows (seeded by the run's seed and the epoch, so a
resumed run sees the same batches) and fills batches in that order; a row that would overflow
the budget starts the next batch, and a row longer than the budget is a batch alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch


def token_budget_batches(lengths: Sequence[int], max_tokens: int,
                         order: Sequence[int]) -> list[list[int]]:
    """The rows in `order`, grouped into batches of at most `max_tokens` tokens (a longer row
    alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in order:
        length = int(lengths[index])
        if current and used + length > max_tokens:
            batches.append(current)
            current, used = [], 0
        current.append(int(index))
        used += length
    if current:
        batches.append(current)
    return batches


class TokenBudgetSampler(torch.utils.data.Sampler[list[int]]):
    """A `DataLoader` batch sampler: each epoch, every row exactly once, in batches within the
    token budget. `Trainer` (through accelerate) calls `set_epoch` at each epoch's start."""

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int = 0,
                 shuffle: bool = True) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_tokens, self.seed, self.shuffle = max_tokens, seed, shuffle
        self.epoch = 0
        self._plan: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        """This epoch's batches (computed once per epoch: `len` and iteration agree)."""
        if self._plan is None or self._plan[0] != self.epoch:
            order = np.arange(len(self.lengths))
            if self.shuffle:
                order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
            self._plan = (self.epoch, token_budget_batches(self.lengths, self.max_tokens, order))
        return self._plan[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
