"""`train serve`: a real server (`python -m train serve`, a subprocess on a free port of
127.0.0.1) on the tiny finished runs, driven with the official `openai` client and with httpx2
(the HTTP client `openai` itself uses) where the request must be malformed on purpose. The tiny
models' answers are noise: the tests compare the server with itself (batched against alone,
streamed against whole) and with the run's own tokenizer and `Predictor`, never with expected
words."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2
import numpy as np
import openai
import pytest

from .conftest import ROOT

PROMPTS = ["refund please", "The product is", "my order did not arrive", "hello there",
           "I want to cancel", "where is", "thanks for", "broken screen on arrival"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    model: str
    proc: subprocess.Popen
    output: Path

    @property
    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0,
                             timeout=120)

    @property
    def http(self) -> httpx2.Client:
        return httpx2.Client(base_url=self.url, timeout=120)

    def health(self) -> dict:
        response = self.http.get("/health")
        assert response.status_code == 200
        return response.json()


@contextlib.contextmanager
def serving(run: Path, store: Path, logs: Path, *flags: str, wait: float = 300):
    """`train serve RUN` on a free port until the block ends; then stopped (SIGTERM)."""
    port = free_port()
    output, errors = logs / f"{run.name}-{port}.out", logs / f"{run.name}-{port}.err"
    with open(output, "w") as out, open(errors, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "train", "serve", str(run), "--port",
                                 str(port), "--store", str(store), *flags], cwd=ROOT,
                                stdout=out, stderr=err, env={**os.environ})
    server = Server(f"http://127.0.0.1:{port}", run.name, proc, output)
    try:
        deadline = time.monotonic() + wait
        while True:
            assert proc.poll() is None, f"server exited: {errors.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"server not up: {errors.read_text()[-2000:]}"
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{server.url}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.5)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serve-logs")


@pytest.fixture(scope="module")
def sft(trained, logs):
    """The chat run, with small limits for the bad-request tests and a window wide enough
    that concurrent test requests reliably share batches."""
    with serving(trained.sft, trained.store, logs, "--max-tokens-limit", "64",
                 "--max-body-bytes", "20000", "--batch-window-ms", "100") as server:
        yield server


@pytest.fixture(scope="module")
def classifier(trained, logs):
    with serving(trained.classifier, trained.store, logs) as server:
        yield server


@pytest.fixture(scope="module")
def sft_labels(trained, logs):
    with serving(trained.sft_labels, trained.store, logs) as server:
        yield server


def tokenizer_of(run: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(run))


def complete(server: Server, prompt, max_tokens: int = 12, **kw):
    return server.client.completions.create(model=server.model, prompt=prompt,
                                            max_tokens=max_tokens, temperature=0, **kw)


# --- generation ---------------------------------------------------------------------------------

def test_listens_on_localhost_and_lists_the_run(sft):
    port = sft.url.rsplit(":", 1)[1]
    assert f"serving sft at http://127.0.0.1:{port}/v1" in sft.output.read_text()
    models = sft.client.models.list()
    assert [m.id for m in models.data] == ["sft"]
    assert sft.client.models.retrieve("sft").id == "sft"
    assert sft.health()["endpoints"] == ["/v1/chat/completions", "/v1/completions"]


def test_chat_completion_renders_the_chat_template(sft, trained):
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "My order never arrived."}]
    reply = sft.client.chat.completions.create(model="sft", messages=messages, max_tokens=6,
                                               temperature=0)
    assert reply.object == "chat.completion" and reply.model == "sft"
    assert reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    tok = tokenizer_of(trained.sft)
    prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert reply.usage.prompt_tokens == len(tok(prompt)["input_ids"])
    assert 1 <= reply.usage.completion_tokens <= 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    if choice.finish_reason == "length":
        assert reply.usage.completion_tokens == 6


def test_chat_stream_sends_the_tokens_as_made(sft):
    messages = [{"role": "user", "content": "Where is my parcel?"}]
    whole = sft.client.chat.completions.create(model="sft", messages=messages, max_tokens=10,
                                               temperature=0)
    chunks = list(sft.client.chat.completions.create(
        model="sft", messages=messages, max_tokens=10, temperature=0, stream=True,
        stream_options={"include_usage": True}))
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    texts = [c.choices[0].delta.content for c in chunks[1:] if c.choices
             and c.choices[0].delta.content]
    assert "".join(texts) == whole.choices[0].message.content
    if whole.usage.completion_tokens > 1:
        assert len(texts) > 1  # several events, not the finished text in one
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_completions_take_raw_text_and_lists(sft, trained):
    one = complete(sft, PROMPTS[0])
    assert one.object == "text_completion"
    assert one.usage.prompt_tokens == len(tokenizer_of(trained.sft)(PROMPTS[0])["input_ids"])
    both = complete(sft, PROMPTS[:2])
    assert [c.index for c in both.choices] == [0, 1]
    assert both.choices[0].text == one.choices[0].text
    assert both.choices[1].text == complete(sft, PROMPTS[1]).choices[0].text
    streamed = list(complete(sft, PROMPTS[0], stream=True))
    assert "".join(c.choices[0].text for c in streamed) == one.choices[0].text
    assert streamed[-1].choices[0].finish_reason == one.choices[0].finish_reason
    sampled = [sft.client.completions.create(model="sft", prompt=PROMPTS[0], max_tokens=8,
                                             temperature=1.0, top_p=0.9, seed=7)
               for _ in range(2)]
    assert sampled[0].choices[0].text == sampled[1].choices[0].text  # seeded: repeatable


def test_stop_strings_end_the_text_before_them(sft):
    free = complete(sft, PROMPTS[0]).choices[0].text
    assert len(free) >= 5, free
    stop = free[2:5]
    cut = free[:free.find(stop)]
    stopped = complete(sft, PROMPTS[0], stop=[stop])
    assert (stopped.choices[0].text, stopped.choices[0].finish_reason) == (cut, "stop")
    assert stopped.usage.completion_tokens < 12
    streamed = list(complete(sft, PROMPTS[0], stop=stop, stream=True))
    assert "".join(c.choices[0].text for c in streamed) == cut
    assert streamed[-1].choices[0].finish_reason == "stop"


def test_concurrent_requests_share_batches_and_match_alone(sft):
    """8 callers at once: fewer model calls than requests, and each greedy answer (with its
    own max_tokens, some streamed) is the one the same request gets alone."""
    def ask(i: int) -> tuple[str, str, int]:
        if i % 2:
            chunks = list(complete(sft, PROMPTS[i], 4 + i, stream=True,
                                   stream_options={"include_usage": True}))
            text = "".join(c.choices[0].text for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
            return text, finish, chunks[-1].usage.completion_tokens
        reply = complete(sft, PROMPTS[i], 4 + i)
        return reply.choices[0].text, reply.choices[0].finish_reason, \
            reply.usage.completion_tokens

    before = sft.health()
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(ask, range(8)))
    after = sft.health()
    assert after["requests"] - before["requests"] == 8
    assert 1 <= after["batches"] - before["batches"] < 8
    for i, (text, finish, tokens) in enumerate(together):
        alone = complete(sft, PROMPTS[i], 4 + i)
        assert (text, finish, tokens) == (alone.choices[0].text, alone.choices[0].finish_reason,
                                          alone.usage.completion_tokens)
        assert tokens <= 4 + i and (finish == "stop" or tokens == 4 + i)


def test_a_caller_who_leaves_stops_its_generation(sft):
    start = time.monotonic()
    complete(sft, PROMPTS[0], 64)
    full = time.monotonic() - start
    stream = complete(sft, PROMPTS[0], 64, stream=True)
    for i, _ in enumerate(stream):
        if i == 1:
            break
    stream.close()
    start = time.monotonic()
    reply = complete(sft, PROMPTS[1], 1)
    assert reply.usage.completion_tokens == 1
    assert time.monotonic() - start < full  # it did not wait for the abandoned 64 tokens


# --- classification -----------------------------------------------------------------------------

def test_classify_is_the_classifiers_head(classifier, trained):
    from train.inference import Predictor
    from train.run_dir import open_run

    texts = ["great product, loved it", "it broke after a day", "it is fine I guess"]
    response = classifier.http.post("/v1/classify", json={"input": texts})
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list" and body["model"] == "classifier"
    run = open_run(trained.classifier, str(trained.store))
    expected = Predictor(run, "cpu").classify(texts)
    for i, (row, probs) in enumerate(zip(body["data"], expected, strict=True)):
        assert row["index"] == i
        assert list(row["probabilities"]) == run.labels
        got = np.array(list(row["probabilities"].values()))
        np.testing.assert_allclose(got, probs, atol=1e-5)
        assert row["label"] == run.labels[int(probs.argmax())]
    single = classifier.http.post("/v1/classify", json={"input": texts[0],
                                                        "model": "classifier"}).json()
    assert single["data"][0]["label"] == body["data"][0]["label"]
    with pytest.raises(openai.BadRequestError) as refused:
        classifier.client.chat.completions.create(
            model="classifier", messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["code"] == "unsupported_task"
    assert classifier.health()["endpoints"] == ["/v1/classify"]


def test_classify_on_an_sft_run_reads_its_label_scores(sft_labels, sft, trained):
    from train.inference import Predictor
    from train.run_dir import open_run

    texts = ["great product, loved it", "it broke after a day"]
    body = sft_labels.http.post("/v1/classify", json={"input": texts}).json()
    run = open_run(trained.sft_labels, str(trained.store))
    expected = Predictor(run, "cpu").score_labels(
        [{"messages": [{"role": "user", "content": t}]} for t in texts])
    got = np.array([list(row["probabilities"].values()) for row in body["data"]])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    refused = sft.http.post("/v1/classify", json={"input": texts})
    assert refused.status_code == 400
    assert "unlabelled" in refused.json()["error"]["message"]


# --- bad requests -------------------------------------------------------------------------------

def error_of(response: httpx2.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    return error


def test_bad_requests_get_4xx_json_and_the_server_keeps_serving(sft):
    http, before = sft.http, sft.health()
    chat = "/v1/chat/completions"
    hello = [{"role": "user", "content": "hello"}]
    cases = [
        (http.post(chat, content=b'{"model": "sft", "messages": [', headers={
            "content-type": "application/json"}), 400, None, "invalid_json"),
        (http.post(chat, json={"model": "sft"}), 400, "messages", "missing"),
        (http.post(chat, json={"model": "sft", "messages": hello, "max_tokens": 65}), 400,
         "max_tokens", "invalid_value"),
        (http.post(chat, json={"model": "sft", "messages": [
            {"role": "user", "content": "word " * 600}]}), 400, "messages",
         "context_length_exceeded"),
        (http.post("/v1/completions", json={"model": "sft", "prompt": "word " * 500,
                                            "max_tokens": 64}), 400, "prompt",
         "context_length_exceeded"),
        (http.post(chat, json={"model": "sft", "messages": [
            {"role": "user", "content": "x" * 30000}]}), 413, None, "request_too_large"),
        (http.post(chat, content=(b"x" * 5000 for _ in range(10)), headers={
            "content-type": "application/json"}), 413, None, "request_too_large"),
        (http.post(chat, json={"model": "sft", "messages": hello, "n": 2}), 400, "n", None),
        (http.post(chat, json={"model": "sft", "messages": hello, "temperature": 3}), 400,
         "temperature", None),
        (http.post(chat, json={"model": "sft", "messages": hello, "logprobs": True}), 400,
         "logprobs", "unsupported_parameter"),
        (http.post(chat, json={"model": "sft", "messages": [{"role": "tool", "content": "x"}]}),
         400, "messages.0.role", None),
        (http.post(chat, json={"model": "other", "messages": hello}), 404, "model",
         "model_not_found"),
        (http.post("/v1/completions", json={"model": "sft", "prompt": [10 ** 6]}), 400,
         "prompt", None),
        (http.post("/v1/nowhere", json={}), 404, None, "not_found"),
    ]
    for response, status, param, code in cases:
        error = error_of(response, status)
        assert error["type"] == "invalid_request_error"
        assert error["param"] == param, error
        if code is not None:
            assert error["code"] == code, error
        assert sft.health()["status"] == "ok"
    with pytest.raises(openai.BadRequestError) as refused:
        sft.client.chat.completions.create(model="sft", messages=hello, max_tokens=1000)
    assert refused.value.body["param"] == "max_tokens"
    assert sft.health()["requests"] == before["requests"]  # none of them reached the model
    assert complete(sft, PROMPTS[0], 2).usage.completion_tokens == 2


def test_command_errors_are_one_line(trained, tmp_path, train_main):
    def serve(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "train", "serve", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    missing = train_main("serve", tmp_path / "nope")  # in this process: the error comes first
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope'}: no such run directory"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = serve(str(trained.sft), "--port", str(port), "--store", str(trained.store))
    assert taken.returncode == 1
    assert taken.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert len(taken.stderr.strip().splitlines()) == 1


# --- the built-in models (slow) -----------------------------------------------------------------

@pytest.mark.slow
def test_smollm2_chat_with_the_openai_client(trained_real, logs):
    with serving(trained_real.smollm2, trained_real.store, logs) as server:
        messages = [{"role": "user", "content": "My order has not arrived. What can I do?"}]
        reply = server.client.chat.completions.create(model="smollm2", messages=messages,
                                                      max_tokens=16, temperature=0)
        text = reply.choices[0].message.content
        assert text.strip() and reply.usage.completion_tokens <= 16
        chunks = list(server.client.chat.completions.create(
            model="smollm2", messages=messages, max_tokens=16, temperature=0, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == text
        sampled = server.client.chat.completions.create(
            model="smollm2", messages=messages, max_tokens=8, temperature=0.8, top_p=0.9,
            seed=1)
        assert sampled.choices[0].finish_reason in ("stop", "length")


@pytest.mark.slow
def test_minilm_classify(trained_real, logs):
    from train.run_dir import open_run

    labels = open_run(trained_real.minilm, str(trained_real.store)).labels
    with serving(trained_real.minilm, trained_real.store, logs) as server:
        body = server.http.post("/v1/classify", json={
            "input": ["Loved it, works perfectly.", "Broke after one day.", "It is okay."],
            "model": "minilm"}).json()
        assert len(body["data"]) == 3
        for row in body["data"]:
            assert list(row["probabilities"]) == labels and row["label"] in labels
            assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
