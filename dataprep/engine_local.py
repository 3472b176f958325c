"""The local engine: the first pass's batches mapped over worker processes of this machine.

An engine answers one question for the pipeline: given the inputs, the recipe and the function
that processes one block (`pipeline.process_batch`), the stream of that function's results, one
per block, in input order. The pipeline consumes the stream the same way whichever engine made
it (`engine_ray.py` is the other one), so the engine is never part of a version's identity.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .settings import Recipe
from .sources import raw_blocks
from .workers import ordered_map


class LocalEngine:
    """Blocks read here (`sources.raw_blocks`), processed by `workers` forked processes (or
    in-process for one), results in input order with a bounded number in flight."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def outcomes(self, process: Callable[..., Any], paths: list[Path], recipe: Recipe,
                 excluded: tuple = ()) -> Iterator[Any]:
        items = ((kind, source, block, recipe, excluded)
                 for kind, source, block in raw_blocks(paths, recipe))
        yield from ordered_map(process, items, self.workers)
