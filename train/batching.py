"""The request batcher behind `train serve`: concurrent callers' requests become batched model
calls.

Why one worker thread: torch modules are not safe to drive from several threads at once, and
the server's event loop must keep accepting requests while the model works. Why batching: a
generate step over N prompts reads the weights once for all N, so N requests answered together
cost little more than one answered alone.

The worker takes the first queued request, waits up to the collection window for more (up to the
maximum batch size; requests already queued are taken without waiting), groups them by what one
call must share (classification texts together; generations with the same sampling settings
and stop strings, whatever their `max_tokens`: each row ends at its own limit), runs one model
call per group and hands each caller its result through its own asyncio future
(`loop.call_soon_threadsafe`). A streaming caller gets its text as the batch produces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer, TextStreamer

from .inference import GenerationSettings, Predictor


@dataclass
class Generation:
    """An answer: its text, why it ended ("stop": EOS or a stop string, "length": its token
    limit) and the tokens the model generated for it (the ending one included)."""

    text: str
    finish_reason: str
    completion_tokens: int


@dataclass
class Job:
    """One caller's request as the worker sees it: a prompt to continue, or texts to classify."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    texts: list[str] | None = None            # classify these
    ids: list[int] | None = None              # or continue this prompt (token ids)
    max_tokens: int = 16
    settings: GenerationSettings | None = None
    stop: tuple[str, ...] = ()
    pieces: asyncio.Queue | None = None       # streaming: text as it is made, then None
    cancelled: bool = False                   # set on the event loop when the caller leaves

    def key(self) -> tuple:
        """Jobs with equal keys share one model call."""
        if self.texts is not None:
            return ("classify",)
        s = self.settings
        sampling = (s.temperature, s.top_p, s.seed) if s.temperature > 0 else ("greedy",)
        return ("generate", sampling, self.stop)

    def _call(self, fn: Callable, *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is stopping
            self.loop.call_soon_threadsafe(fn, *args)

    def resolve(self, value: Any) -> None:
        self._call(_settle, self.future, value, None)

    def fail(self, exc: BaseException) -> None:
        self.emit(None)
        self._call(_settle, self.future, None, exc)

    def emit(self, piece: str | None) -> None:
        if self.pieces is not None:
            self._call(self.pieces.put_nowait, piece)


def _settle(future: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if future.done():  # the caller went away and its future was cancelled
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


class Batcher:
    """The queue and the worker thread that owns the predictor."""

    def __init__(self, predictor: Predictor, max_batch_size: int = 16,
                 window_s: float = 0.01) -> None:
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.window_s = window_s
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.requests = 0      # jobs handed to the model
        self.batches = 0       # model calls they took
        self.thread = threading.Thread(target=self._work, name="model-worker", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.queue.put(None)
        self.thread.join(timeout)

    def submit(self, job: Job) -> Job:
        """Queue a job (from the event loop); its future resolves when the model is done."""
        self.requests += 1
        self.queue.put(job)
        return job

    def _collect(self) -> list[Job] | None:
        """The next batch: the first job, and what arrives within the window (None: stop)."""
        first = self.queue.get()
        if first is None:
            return None
        jobs, deadline = [first], time.monotonic() + self.window_s
        while len(jobs) < self.max_batch_size:
            left = deadline - time.monotonic()
            try:
                job = self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if job is None:  # stop after this batch
                self.queue.put(None)
                break
            jobs.append(job)
        return jobs

    def _work(self) -> None:
        while (jobs := self._collect()) is not None:
            groups: dict[tuple, list[Job]] = {}
            for job in jobs:
                if not job.cancelled:
                    groups.setdefault(job.key(), []).append(job)
            for group in groups.values():
                self.batches += 1
                try:
                    if group[0].texts is not None:
                        self._classify(group)
                    else:
                        generate_rows(self.predictor, group)
                except Exception as exc:  # a failed call fails its callers, not the server
                    for job in group:
                        job.fail(exc)

    def _classify(self, jobs: list[Job]) -> None:
        texts = [text for job in jobs for text in job.texts]
        probs = label_probabilities(self.predictor, texts)
        start = 0
        for job in jobs:
            job.resolve(probs[start:start + len(job.texts)])
            start += len(job.texts)


def label_probabilities(predictor: Predictor, texts: list[str]) -> np.ndarray:
    """(texts, labels) probabilities: a classifier's head, or an SFT run's label scores with
    each text as the user's turn (how a classification version's conversations read)."""
    if predictor.run.is_classifier:
        return predictor.classify(texts)
    return predictor.score_labels([{"messages": [{"role": "user", "content": t}]}
                                   for t in texts])


def generate_rows(predictor: Predictor, jobs: list[Job]) -> None:
    """One generate call for the jobs' prompts (left-padded, as `Predictor` generates), each
    row ending at its own limit; resolves every job with its `Generation`."""
    tokenizer, eos = predictor.tokenizer, predictor.tokenizer.eos_token_id
    settings, stop = jobs[0].settings, list(jobs[0].stop)
    limits = [job.max_tokens for job in jobs]
    input_ids, mask = predictor.left_padded([job.ids for job in jobs])
    width = input_ids.shape[1]
    ends = RowEnds(tokenizer, width, limits, jobs, stop)
    streams = {i: StopText(stop, job.emit) for i, job in enumerate(jobs) if job.pieces}
    streamer = BatchStreamer(tokenizer, streams, limits, eos) if streams else None
    sampling = settings.kwargs()
    if sampling["do_sample"]:
        sampling["top_k"] = 0  # the API samples by temperature and top_p only (no top-k)
    if settings.seed is not None:
        torch.manual_seed(settings.seed)
    with torch.inference_mode():
        out = predictor.model.generate(
            input_ids=input_ids, attention_mask=mask, max_new_tokens=max(limits),
            use_cache=True, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([ends]), streamer=streamer,
            **sampling)
    for i, (job, tokens) in enumerate(zip(jobs, out[:, width:].cpu().tolist(), strict=True)):
        length = ends.ended[i] or limits[i]
        tokens = tokens[:length]
        stopped = eos in tokens
        if stopped:
            tokens = tokens[:tokens.index(eos)]
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        cut = first_stop(text, stop)
        job.emit(None)
        job.resolve(Generation(text if cut is None else text[:cut],
                               "stop" if stopped or cut is not None else "length", length))


class RowEnds(StoppingCriteria):
    """Ends each row of a batch on its own terms (EOS, its token limit, a stop string in its new
    text, its caller gone) and remembers after how many new tokens. Stop strings are looked for
    in the decoded new text only, as the API means them (transformers' `StopStringCriteria`
    also matches across the end of the prompt)."""

    def __init__(self, tokenizer, width: int, limits: list[int], jobs: list[Job],
                 stops: list[str]) -> None:
        self.tokenizer, self.width, self.limits, self.jobs = tokenizer, width, limits, jobs
        self.stops = stops
        self.ended: list[int | None] = [None] * len(limits)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        new = input_ids.shape[1] - self.width
        last = input_ids[:, -1].tolist()
        for i, job in enumerate(self.jobs):
            if self.ended[i] is None and (
                    new >= self.limits[i] or job.cancelled
                    or last[i] == self.tokenizer.eos_token_id
                    or self.stops and first_stop(self.tokenizer.decode(
                        input_ids[i, self.width:], skip_special_tokens=True), self.stops)
                    is not None):
                self.ended[i] = new
        return torch.tensor([e is not None for e in self.ended], device=input_ids.device)


class BatchStreamer(BaseStreamer):
    """Hands each streaming row of a batch its own new tokens: `model.generate` gives a
    streamer the whole batch's step, and transformers' `TextStreamer` (whose decoding keeps
    words and characters whole) takes one row."""

    def __init__(self, tokenizer, streams: dict[int, StopText], limits: list[int],
                 eos: int) -> None:
        self.rows = {i: RowStreamer(tokenizer, stream) for i, stream in streams.items()}
        self.limits, self.eos = limits, eos
        self.counts = dict.fromkeys(self.rows, 0)
        self.prompt = True

    def put(self, value: torch.Tensor) -> None:
        if self.prompt:  # the first call carries the prompts
            self.prompt = False
            return
        for i, row in list(self.rows.items()):
            self.counts[i] += 1
            if int(value[i]) == self.eos:
                self.end_row(i)
                continue
            row.put(value[i:i + 1])
            if self.counts[i] >= self.limits[i]:
                self.end_row(i)

    def end_row(self, i: int) -> None:
        self.rows.pop(i).end()

    def end(self) -> None:
        for i in list(self.rows):
            self.end_row(i)


class RowStreamer(TextStreamer):
    """`TextStreamer`'s incremental decoding of one row, its text going to a `StopText`."""

    def __init__(self, tokenizer, stream: StopText) -> None:
        super().__init__(tokenizer, skip_prompt=False, skip_special_tokens=True)
        self.stream = stream

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        self.stream.feed(text)
        if stream_end:
            self.stream.close()


class StopText:
    """Streamed text up to, not including, the first stop string (as the OpenAI API sends it):
    a tail that could begin a stop string waits for the next piece."""

    def __init__(self, stops: list[str], emit: Callable[[str], None]) -> None:
        self.stops, self.emit = stops, emit
        self.text, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> None:
        if self.stopped or not piece:
            return
        self.text += piece
        cut = first_stop(self.text, self.stops)
        if cut is not None:
            self.stopped = True
            self._send(cut)
        else:
            self._send(len(self.text) - held_back(self.text, self.stops))

    def close(self) -> None:
        if not self.stopped:
            self._send(len(self.text))

    def _send(self, upto: int) -> None:
        if upto > self.sent:
            self.emit(self.text[self.sent:upto])
            self.sent = upto


def first_stop(text: str, stops: list[str]) -> int | None:
    """Where the first stop string in `text` begins, if one does."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def held_back(text: str, stops: list[str]) -> int:
    """The length of the longest end of `text` that begins some stop string."""
    return max((k for s in stops for k in range(1, len(s)) if text.endswith(s[:k])), default=0)
