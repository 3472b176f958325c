"""`train serve runs/<run>`: the run's model over HTTP, in the OpenAI API's shapes, so any
OpenAI client (the `openai` package, curl, LangChain) can use it.

An SFT run answers `POST /v1/chat/completions` (the messages rendered as training rendered
prompts: the chat template, or the version's prompt format) and `POST /v1/completions` (raw
text, no template), whole or streamed as server-sent events; a classifier answers
`POST /v1/classify` (an SFT run on a labelled version too, by its label scores). `GET /health`
and `GET /v1/models` say what is served. Concurrent callers' requests are batched
(`batching.py`). A bad request gets the API's error object with a 4xx status, and the server
goes on serving. It listens on 127.0.0.1 unless told otherwise: there is no authentication.
"""

from __future__ import annotations

import asyncio
import copy
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from common.errors import UserError

from .errors import TrainError
from .openai_api import (
    COMPLETION_DEFAULT_TOKENS,
    APIError,
    Body,
    BodyLimit,
    ChatRequest,
    ClassifyRequest,
    CompletionRequest,
    Sampling,
    chat_completion,
    chunk,
    classification,
    error_body,
    http_error_body,
    response_head,
    sse,
    text_completion,
    usage_chunk,
    validation_error,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .batching import Job
    from .run_dir import TrainedRun


@dataclass
class ServeSettings:
    """The server's limits (the command's flags)."""

    device: str = "auto"
    max_batch_size: int = 16
    batch_window_ms: float = 10.0
    max_tokens_limit: int = 512
    max_body_bytes: int = 1_000_000


class Service:
    """The served run: its model behind the batcher, and the API's checks and shapes."""

    def __init__(self, run: TrainedRun, settings: ServeSettings) -> None:
        from .batching import Batcher
        from .inference import Predictor

        self.run, self.settings = run, settings
        self.predictor = Predictor(run, settings.device, batch_size=settings.max_batch_size)
        # The event loop's own copy: a fast tokenizer mutated by one thread (truncation
        # settings) while another encodes fails ("Already borrowed").
        self.tokenizer = copy.deepcopy(self.predictor.tokenizer)
        self.model_id = run.path.resolve().name
        self.created = int((run.path / "run.json").stat().st_mtime)
        model = self.predictor.model
        self.context = getattr(model.config, "max_position_embeddings", None) or run.max_length
        self.vocab = model.get_input_embeddings().num_embeddings
        self.generates = not run.is_classifier
        self.classify_error = self._classify_error()
        self.batcher = Batcher(self.predictor, settings.max_batch_size,
                               settings.batch_window_ms / 1000)
        self._warm_up()

    def _classify_error(self) -> str | None:
        run = self.run
        if run.is_classifier:
            return None
        if not run.labels:
            return (f"'{self.model_id}' is an SFT run on an unlabelled version ({run.dataset}): "
                    "it writes answers; use /v1/chat/completions")
        try:
            self.predictor.label_token_ids()
        except TrainError as exc:
            return str(exc)
        return None

    def _warm_up(self) -> None:
        """One small call of each kind before listening: the first call of a process is slow,
        and a run whose prompts cannot be rendered fails here rather than per request."""
        from .batching import label_probabilities
        from .inference import GenerationSettings

        if self.generates:
            text = self.predictor.prompt_texts([[{"role": "user", "content": "Hello"}]])[0]
            self.predictor.generate_ids([self.encode(text)], GenerationSettings(2))
        if self.classify_error is None:
            label_probabilities(self.predictor, ["Hello"])

    @property
    def endpoints(self) -> list[str]:
        return ((["/v1/chat/completions", "/v1/completions"] if self.generates else [])
                + (["/v1/classify"] if self.classify_error is None else []))

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.model_id, "endpoints": self.endpoints,
                "requests": self.batcher.requests, "batches": self.batcher.batches}

    def model_card(self, model: str | None = None) -> dict[str, Any]:
        self.check_model(model)
        return {"id": self.model_id, "object": "model", "created": self.created,
                "owned_by": "train", "root": str(self.run.path), "max_model_len": self.context}

    # --- checks -----------------------------------------------------------------------------

    def check_model(self, model: str | None) -> None:
        if model is not None and model != self.model_id:
            raise APIError(404, f"The model '{model}' does not exist; this server serves "
                           f"'{self.model_id}'", "model", "model_not_found")

    def check(self, req: Body, model: str | None, generate: bool) -> None:
        self.check_model(model)
        if generate and not self.generates:
            raise APIError(400, f"'{self.model_id}' is a classifier run: it predicts labels and "
                           "cannot write text; use POST /v1/classify", "model",
                           "unsupported_task")
        if name := req.unsupported():
            raise APIError(400, f"{name}: not supported by this server", name,
                           "unsupported_parameter")

    def budget(self, prompt: int, requested: int | None, default: int, param: str) -> int:
        """A prompt's `max_tokens`: within the server's limit, and with the prompt within the
        model's context (its max_position_embeddings)."""
        limit = self.settings.max_tokens_limit
        if requested is not None and requested > limit:
            raise APIError(400, f"max_tokens is too large: {requested}. This server allows at "
                           f"most {limit} completion tokens", "max_tokens", "invalid_value")
        wanted = requested or max(1, min(default, self.context - prompt))
        if prompt + wanted > self.context:
            raise APIError(400, f"This model's maximum context length is {self.context} "
                           f"tokens. However, you requested {prompt + wanted} tokens ({prompt} "
                           f"in the {param}, {wanted} for the completion). Please reduce the "
                           f"length of the {param} or of the completion.", param,
                           "context_length_exceeded")
        return wanted

    def encode(self, text: str) -> list[int]:
        """Token ids as training encoded prompts (special tokens, BOS, added), not cut."""
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id]
        if not ids:
            raise APIError(400, "the prompt is empty", "prompt")
        return ids

    def prompts(self, req: CompletionRequest) -> list[list[int]]:
        """A completion request's prompts as token ids, each checked against the vocabulary."""
        out = []
        for item in req.prompts():
            ids = self.encode(item) if isinstance(item, str) else list(item)
            if not ids or min(ids) < 0 or max(ids) >= self.vocab:
                raise APIError(400, f"prompt: token ids must be a non-empty list in [0, "
                               f"{self.vocab})", "prompt")
            out.append(ids)
        return out

    # --- endpoints --------------------------------------------------------------------------

    def submit(self, ids: list[int], max_tokens: int, req: Sampling) -> Job:
        from .batching import Job
        from .inference import GenerationSettings

        loop = asyncio.get_running_loop()
        temperature = 1.0 if req.temperature is None else req.temperature
        settings = GenerationSettings(max_tokens, temperature, req.top_p or 1.0, req.seed)
        return self.batcher.submit(Job(loop, loop.create_future(), ids=ids,
                                       max_tokens=max_tokens, settings=settings,
                                       stop=tuple(req.stop),
                                       pieces=asyncio.Queue() if req.stream else None))

    async def chat(self, req: ChatRequest) -> Any:
        from jinja2 import TemplateError

        self.check(req, req.model, generate=True)
        try:
            text = self.predictor.prompt_texts([[m.plain() for m in req.messages]])[0]
        except (TemplateError, UserError, ValueError) as exc:
            raise APIError(400, f"messages: the run's prompt format cannot render them "
                           f"({exc})", "messages") from None
        ids = self.encode(text)
        requested = req.max_completion_tokens or req.max_tokens
        job = self.submit(ids, self.budget(len(ids), requested, self.settings.max_tokens_limit,
                                           "messages"), req)
        head = response_head("chatcmpl", self.model_id)
        if req.stream:
            return self.stream([job], head, True, req, len(ids))
        return chat_completion(head, await job.future, len(ids))

    async def completions(self, req: CompletionRequest) -> Any:
        self.check(req, req.model, generate=True)
        prompts = self.prompts(req)
        budgets = [self.budget(len(p), req.max_tokens, COMPLETION_DEFAULT_TOKENS, "prompt")
                   for p in prompts]
        jobs = [self.submit(p, b, req) for p, b in zip(prompts, budgets, strict=True)]
        head = response_head("cmpl", self.model_id)
        prompt_tokens = sum(len(p) for p in prompts)
        if req.stream:
            return self.stream(jobs, head, False, req, prompt_tokens)
        return text_completion(head, await asyncio.gather(*(j.future for j in jobs)),
                               prompt_tokens)

    def stream(self, jobs: list[Job], head: dict[str, Any], chat: bool, req: Sampling,
               prompt_tokens: int) -> Any:
        from fastapi.responses import StreamingResponse

        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(self.events(jobs, head, chat, include_usage, prompt_tokens),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    async def events(self, jobs: list[Job], head: dict[str, Any], chat: bool,
                     include_usage: bool, prompt_tokens: int):
        """Each job's text as the model makes it, then its finish reason; the usage chunk if
        asked for; `data: [DONE]`. A caller who leaves stops its rows' generation."""
        completion_tokens = 0
        try:
            if chat:
                yield chunk(head, chat, 0, None, None, role="assistant", content="")
            for index, job in enumerate(jobs):
                while (piece := await job.pieces.get()) is not None:
                    yield chunk(head, chat, index, piece, None)
                done = await job.future
                completion_tokens += done.completion_tokens
                yield chunk(head, chat, index, None, done.finish_reason)
            if include_usage:
                yield usage_chunk(head, chat, prompt_tokens, completion_tokens)
        except Exception as exc:  # the model call failed after the 200 went out
            yield sse(error_body(f"generation failed: {exc}", "server_error"))
        finally:
            for job in jobs:
                job.cancelled = True
        yield "data: [DONE]\n\n"

    async def classify(self, req: ClassifyRequest) -> dict[str, Any]:
        from .batching import Job

        self.check(req, req.model, generate=False)
        if self.classify_error is not None:
            raise APIError(400, self.classify_error, "model", "unsupported_task")
        loop = asyncio.get_running_loop()
        job = Job(loop, loop.create_future(), texts=req.texts())
        return classification(self.model_id, self.run.labels,
                              await self.batcher.submit(job).future)


# --- the app ----------------------------------------------------------------------------------

def create_app(run: TrainedRun, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving `run` (the model loads here; the worker starts with the app)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    settings = settings or ServeSettings()
    service = Service(run, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.batcher.start()
        yield
        service.batcher.stop()

    app = FastAPI(title=f"train serve {service.model_id}", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.state.service = service

    @app.exception_handler(APIError)
    async def refused(request, exc: APIError):
        return JSONResponse(error_body(str(exc), param=exc.param, code=exc.code), exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        return JSONResponse(validation_error(list(exc.errors())), 400)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse(http_error_body(exc.status_code, str(exc.detail), request.url.path,
                                            settings.max_body_bytes), exc.status_code)

    @app.exception_handler(Exception)
    async def failed(request, exc: Exception):
        return JSONResponse(error_body(f"internal error: {type(exc).__name__}: {exc}",
                                       "server_error"), 500)

    @app.get("/health")
    async def health():
        return service.health()

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [service.model_card()]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str):
        return service.model_card(model)

    @app.post("/v1/chat/completions")
    async def chat(request: ChatRequest):
        return await service.chat(request)

    @app.post("/v1/completions")
    async def completions(request: CompletionRequest):
        return await service.completions(request)

    @app.post("/v1/classify")
    async def classify(request: ClassifyRequest):
        return await service.classify(request)

    return app


def check_port(host: str, port: int) -> None:
    """An address that cannot be listened on is a one-line error, before the model loads."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise TrainError(f"--host {host}: {exc.strerror}") from None
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            raise TrainError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def listen(app: FastAPI, host: str, port: int) -> None:
    """Run uvicorn until Ctrl+C, printing the base URL once the socket is bound."""
    import uvicorn

    model_id = app.state.service.model_id

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname()[1]
                shown = f"[{host}]" if ":" in host else host
                print(f"serving {model_id} at http://{shown}:{bound}/v1", flush=True)

    Server(uvicorn.Config(app, host=host, port=port, log_level="info")).run()


def serve(
    run: Annotated[Path, typer.Argument(help="The run directory (runs/<run>).",
                                        show_default=False)],
    host: Annotated[str, typer.Option(help="Address to listen on (no authentication: keep "
                                           "it local unless a proxy guards it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535,
                                      help="Port (0: any free one, printed).")] = 8000,
    store: Annotated[str | None, typer.Option(help="Dataset store (default $DATAPREP_STORE "
                                                   "or ./store).")] = None,
    device: Annotated[str, typer.Option(help="auto (the GPU when there is one) or cpu.")] =
        "auto",
    max_batch_size: Annotated[int, typer.Option(min=1, help="Most requests in one model "
                                                              "call.")] = 16,
    batch_window_ms: Annotated[float, typer.Option(min=0, help="How long the first request "
                                                   "waits for others to join its batch.")] = 10.0,
    max_tokens_limit: Annotated[int, typer.Option(min=1, help="Largest max_tokens a request "
                                                  "may ask for.")] = 512,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] =
        1_000_000,
) -> None:
    """Serve a run over HTTP: OpenAI-compatible /v1/chat/completions and /v1/completions for an
    SFT run, /v1/classify for a classifier; /health, /v1/models."""
    from .run_dir import open_run

    trained = open_run(run, store)
    check_port(host, port)
    settings = ServeSettings(device, max_batch_size, batch_window_ms, max_tokens_limit,
                             max_body_bytes)
    listen(create_app(trained, settings), host, port)
