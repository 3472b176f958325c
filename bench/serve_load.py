"""Serving under load: N concurrent clients against `train serve`, with batching and without.

    python bench/serve_load.py [--run runs/<run> --store STORE] [--clients 8] [--requests 64]
                               [--max-tokens 16] [--batch-window-ms 10]

Without --run, a SmolLM2-135M-Instruct LoRA run is trained briefly (one step, in a child
process so its memory is freed) on the bundled support chats first. The server is started
twice, each time on a free port of 127.0.0.1: with batching (its defaults: up to 16 requests
per model call, a 10 ms collection window) and with `--max-batch-size 1` (one request at a
time). Each time, after one warm-up request, `--clients` threads send `--requests` requests in
all, each waiting for its answer before sending the next: greedy chat completions of the
support chats' first user turns (`--max-tokens`), or, for a classifier run, /v1/classify with
one of those texts. Printed per side: requests/s (requests over the wall time), p50 and p95
latency, the model calls the server made (its /health), and the completion tokens per second;
then the throughput ratio and whether both sides gave the same answers (they should: greedy
decoding, same requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def build_run(work: Path) -> tuple[Path, Path]:
    """A SmolLM2 LoRA run, briefly trained on the support chats: (run directory, store)."""
    from dataprep.pipeline import run_pipeline
    from train.config import resolve_config
    from train.runner import run_training

    store = work / "store"
    chat = run_pipeline([ROOT / "fixtures" / "support_chats.jsonl"], "support", None, store)
    out = work / "smollm2"
    run_training(resolve_config({"dataset": f"support@{chat.version}",
                                 "model": "smollm2-135m-instruct", "store": str(store),
                                 "output": str(out), "max_steps": 1, "batch_size": 4,
                                 "max_length": 128}))
    return out, store


def user_turns() -> list[str]:
    """The first user message of every bundled support chat."""
    turns = []
    for line in (ROOT / "fixtures" / "support_chats.jsonl").read_text(encoding="utf-8",
                                                                       errors="replace"
                                                                       ).splitlines():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            turns.append(next(m["content"] for m in json.loads(line)["messages"]
                              if m["role"] == "user"))
    return turns


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(run: Path, store: Path | None, logs: Path, *flags: str):
    """`train serve` on a free local port until the block ends: its base URL."""
    import httpx2

    port = free_port()
    command = [sys.executable, "-m", "train", "serve", str(run), "--port", str(port), *flags]
    if store is not None:
        command += ["--store", str(store)]
    with open(logs / f"serve-{port}.log", "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                sys.exit(f"train serve exited:\n{(logs / f'serve-{port}.log').read_text()}")
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(60)


def request_of(kind: str, model: str, text: str, max_tokens: int) -> tuple[str, dict]:
    if kind == "classify":
        return "/v1/classify", {"model": model, "input": text}
    return "/v1/chat/completions", {"model": model, "temperature": 0, "max_tokens": max_tokens,
                                    "messages": [{"role": "user", "content": text}]}


def answer_of(kind: str, body: dict) -> tuple[str, int]:
    """(the answer, its completion tokens) of a response."""
    if kind == "classify":
        return body["data"][0]["label"], 0
    return body["choices"][0]["message"]["content"], body["usage"]["completion_tokens"]


def drive(url: str, kind: str, model: str, texts: list[str], clients: int,
          max_tokens: int) -> dict:
    """`clients` threads sending the requests (one text each) until none is left."""
    import httpx2

    answers: list[tuple[str, int] | None] = [None] * len(texts)
    latencies: list[float] = []
    lock, pending = threading.Lock(), iter(enumerate(texts))

    def client() -> None:
        with httpx2.Client(base_url=url, timeout=900) as http:
            while True:
                with lock:
                    item = next(pending, None)
                if item is None:
                    return
                index, text = item
                path, body = request_of(kind, model, text, max_tokens)
                start = time.perf_counter()
                response = http.post(path, json=body)
                elapsed = time.perf_counter() - start
                response.raise_for_status()
                with lock:
                    latencies.append(elapsed)
                    answers[index] = answer_of(kind, response.json())

    with httpx2.Client(base_url=url, timeout=900) as http:
        path, body = request_of(kind, model, texts[0], max_tokens)
        http.post(path, json=body).raise_for_status()  # warm-up, not counted
        before = http.get("/health").json()
        start = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        after = http.get("/health").json()
    import numpy as np

    tokens = sum(a[1] for a in answers)
    return {"requests_per_s": len(texts) / wall, "p50_s": float(np.percentile(latencies, 50)),
            "p95_s": float(np.percentile(latencies, 95)), "wall_s": wall,
            "model_calls": after["batches"] - before["batches"], "tokens_per_s": tokens / wall,
            "answers": [a[0] for a in answers]}


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished run (default: train SmolLM2)")
    parser.add_argument("--store", type=Path, help="the run's dataset store")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--batch-window-ms", type=float, default=10.0,
                        help="the batched side's collection window (the server's default)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    if args.run:
        run, store = args.run, args.store
    else:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            run, store = pool.submit(build_run, work).result()
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    kind = "classify" if info["config"]["method"] == "classifier" else "chat"
    model = run.resolve().name
    turns = user_turns()
    texts = [turns[i % len(turns)] for i in range(args.requests)]
    sides = {}
    for side, flags in (("batched", ("--batch-window-ms", str(args.batch_window_ms))),
                        ("one at a time", ("--max-batch-size", "1"))):
        with serving(run, store, work, *flags) as url:
            sides[side] = drive(url, kind, model, texts, args.clients, args.max_tokens)
    what = "classify" if kind == "classify" else f"chat completions, max_tokens {args.max_tokens}"
    print(f"serve load: {model} ({info['config']['model']}; {what}), {args.clients} clients, "
          f"{args.requests} requests, batch window {args.batch_window_ms:g} ms; "
          f"{os.cpu_count()} CPUs ({cpu_name()})")
    print(f"{'side':<14} {'requests/s':>10} {'p50 s':>7} {'p95 s':>7} {'model calls':>11} "
          f"{'tokens/s':>9}")
    for side, r in sides.items():
        tokens = f"{r['tokens_per_s']:.1f}" if kind == "chat" else "-"
        print(f"{side:<14} {r['requests_per_s']:>10.2f} {r['p50_s']:>7.2f} {r['p95_s']:>7.2f} "
              f"{r['model_calls']:>11} {tokens:>9}")
    batched, single = sides["batched"], sides["one at a time"]
    same = sum(a == b for a, b in zip(batched["answers"], single["answers"], strict=True))
    print(f"throughput ratio (batched / one at a time): "
          f"{batched['requests_per_s'] / single['requests_per_s']:.2f}x; "
          f"same answers: {same}/{len(texts)}")


if __name__ == "__main__":
    main()
