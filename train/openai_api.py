"""The OpenAI API's shapes as `train serve` speaks them: request bodies (validated by pydantic,
so FastAPI rejects a malformed one before it reaches the model), the error object, usage, and
server-sent-event framing. Kept apart from the server so the shapes read in one place.

A body over the size limit is refused here too, with the API's 413 error object.

Decisions where the API leaves room (as vLLM decides them): unknown fields are ignored, but a
known parameter this server cannot honour (logprobs, tools, penalties, ...) is a 400 rather than
silently dropped; `n` must be 1; "developer" messages are system messages.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

#: Parameters of the OpenAI API this server does not implement, with the values meaning "off"
#: (other unknown fields are ignored, as vLLM ignores them).
UNSUPPORTED = {"logprobs": (None, False, 0), "top_logprobs": (None, 0), "echo": (None, False),
               "best_of": (None, 1), "suffix": (None, ""), "logit_bias": (None, {}),
               "presence_penalty": (None, 0), "frequency_penalty": (None, 0),
               "tools": (None, []), "tool_choice": (None, "none"),
               "response_format": (None, {"type": "text"})}
#: OpenAI's default `max_tokens` of a (legacy) completion; a chat completion's is the limit.
COMPLETION_DEFAULT_TOKENS = 16


# --- requests ---------------------------------------------------------------------------------

class Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    def unsupported(self) -> str | None:
        extra = self.model_extra or {}
        return next((k for k, off in UNSUPPORTED.items() if k in extra and extra[k] not in off),
                    None)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def plain(self) -> dict[str, str]:
        """The turn as templates take it ("developer" is the API's newer name for "system")."""
        content = self.content
        if not isinstance(content, str):
            content = "".join(part.text for part in content)
        return {"role": "system" if self.role == "developer" else self.role, "content": content}


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(Body):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)    # None: the API's default, 1
    top_p: float | None = Field(None, gt=0, le=1)
    n: int = 1
    seed: int | None = None
    stop: str | list[str] | None = Field(None, validate_default=True)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("this server returns one choice per prompt (n=1)")
        return n

    @field_validator("stop")
    @classmethod
    def _stops(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else stop or []
        if len(stops) > 4 or not all(stops):
            raise ValueError("give at most 4 stop strings, none of them empty")
        return stops


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)


class CompletionRequest(Sampling):
    prompt: str | list[str] | list[int] | list[list[int]]

    def prompts(self) -> list[str | list[int]]:
        """The prompts, each a text or token ids (the API takes one or a list of either)."""
        one = isinstance(self.prompt, str) or (self.prompt and isinstance(self.prompt[0], int))
        if not self.prompt:
            raise APIError(400, "prompt: give a text, a list of texts or token ids", "prompt")
        return [self.prompt] if one else list(self.prompt)


class ClassifyRequest(Body):
    input: str | list[str]
    model: str | None = None

    def texts(self) -> list[str]:
        if self.input == []:
            raise APIError(400, "input: give a text or a non-empty list of texts", "input")
        return [self.input] if isinstance(self.input, str) else self.input


# --- errors -----------------------------------------------------------------------------------

class APIError(Exception):
    """A refused request: its HTTP status and the API's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def validation_error(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's 422 details as the API's 400: the first problem, named by its field."""
    first = errors[0]
    if first["type"] == "json_invalid":
        reason = first.get("ctx", {}).get("error", "not JSON")
        return error_body(f"We could not parse the JSON body of your request ({reason})",
                          code="invalid_json")
    param = ".".join(str(p) for p in first["loc"][1:]) or None
    if first["type"] == "missing":
        message = (f"Missing required parameter: '{param}'" if param else
                   "Missing JSON body (send one with Content-Type: application/json)")
    else:
        message = f"{param or 'body'}: {first['msg']}"
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return error_body(message + more, param=param, code=first["type"])


def usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def sse(data: dict[str, Any]) -> str:
    return f"data: {json.dumps(data)}\n\n"




def chunk(head: dict[str, Any], chat: bool, index: int, piece: str | None, finish: str | None,
          **delta: str) -> str:
    """One streamed event: a chat chunk's delta (`delta` given: the opening role chunk) or a
    completion's text, with the finish reason on the last one."""
    if chat:
        choice: dict[str, Any] = {"index": index,
                                  "delta": delta or ({} if piece is None else {"content": piece})}
    else:
        choice = {"index": index, "text": piece or ""}
    return sse({**head, "object": "chat.completion.chunk" if chat else "text_completion",
                "choices": [{**choice, "logprobs": None, "finish_reason": finish}]})


def response_head(prefix: str, model: str) -> dict[str, Any]:
    """The fields every response (and every chunk of one stream) shares."""
    return {"id": f"{prefix}-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}


def http_error_body(status: int, detail: str, path: str, max_body: int) -> dict[str, Any]:
    """Starlette's HTTP errors (body too large, no such route, wrong method) in the API's
    shape."""
    if status == 413:
        return error_body(f"Request body too large: this server takes at most {max_body} "
                          "bytes", code="request_too_large")
    if status == 404:
        return error_body(f"Not found: {path}", code="not_found")
    return error_body(detail)


def chat_completion(head: dict[str, Any], done: Any, prompt_tokens: int) -> dict[str, Any]:
    """A whole chat answer (`done`: the batcher's `Generation`)."""
    return {**head, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                         "logprobs": None, "finish_reason": done.finish_reason}],
            "usage": usage(prompt_tokens, done.completion_tokens)}


def text_completion(head: dict[str, Any], results: list[Any], prompt_tokens: int
                    ) -> dict[str, Any]:
    """Whole completions, one choice per prompt."""
    return {**head, "object": "text_completion",
            "choices": [{"index": i, "text": r.text, "logprobs": None,
                         "finish_reason": r.finish_reason} for i, r in enumerate(results)],
            "usage": usage(prompt_tokens, sum(r.completion_tokens for r in results))}


def usage_chunk(head: dict[str, Any], chat: bool, prompt: int, completion: int) -> str:
    """The stream's last event when `stream_options.include_usage` asks for it."""
    return sse({**head, "object": "chat.completion.chunk" if chat else "text_completion",
                "choices": [], "usage": usage(prompt, completion)})


def classification(model: str, labels: list[str], probs: Any) -> dict[str, Any]:
    """`/v1/classify`'s answer: each text's most probable label and every label's
    probability (`probs`: texts x labels)."""
    return {"object": "list", "model": model,
            "data": [{"index": i, "label": labels[int(row.argmax())],
                      "probabilities": dict(zip(labels, map(float, row), strict=True))}
                     for i, row in enumerate(probs)]}


class BodyLimit:
    """ASGI middleware refusing a request body over `max_bytes` with the API's 413 error: by
    its Content-Length, or, for a body sent in chunks, by the bytes as they arrive. Written here
    because FastAPI's own limit (`max_body_size`) answers in plain text, and replaces any
    response to a request whose Content-Length is over it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return await self.too_large(send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                return await self.too_large(send)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:  # later calls wait for the disconnect, as a streaming response does
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)

    async def too_large(self, send: Any) -> None:
        content = json.dumps(http_error_body(413, "", "", self.max_bytes)).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(content)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": content})
