"""OpenAI-compatible chat server (FastAPI + uvicorn) around one monitored model.

Endpoints: /v1/models, /v1/chat/completions (JSON or SSE with `stream: true`), /healthz, /metrics
(Prometheus text), /dashboard (+ /dashboard/api/state). Every completion carries the persona readings
and alerts in the extension field `persona`; streamed chunks carry each token's projections.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .alerts import AlertDispatcher, JsonlAlertLog, Metrics, WebhookSink
from .chat_request import RequestError, derive_conversation_id, error_response, parse_request
from .engine import Completion, Event, Failure, Job, ServingEngine, TokenEvent

logger = logging.getLogger(__name__)

API_KEY_ENV = "PERSONA_MONITOR_API_KEY"


def _static(name: str) -> str:
    """A file of static/, read through this module's own package (`persona_vaccine.monitoring`)."""
    return resources.files(str(__package__)).joinpath("static").joinpath(name).read_text()


@dataclass
class ServerOptions:
    api_key: str | None = None
    alert_log: str | None = None
    webhook: str | None = None
    webhook_retries: int = 3
    log_text: bool = False
    history: int = 200  # requests kept in memory for the dashboard


@dataclass
class _Record:
    """One request as the dashboard shows it (kept in memory only)."""

    id: str
    conversation_id: str
    created: float
    stream: bool
    tokens: list = field(default_factory=list)
    alerts: list = field(default_factory=list)
    readings: dict = field(default_factory=dict)
    finish_reason: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class _Service:
    """What the routes share: the engine, the metrics, the alert sinks and the dashboard's history."""

    def __init__(self, engine: ServingEngine, options: ServerOptions):
        self.engine = engine
        self.metrics = Metrics()
        sinks: list = [self.metrics]
        if options.alert_log:
            sinks.append(JsonlAlertLog(options.alert_log))
        self.webhook = (
            WebhookSink(options.webhook, retries=options.webhook_retries) if options.webhook else None
        )
        if self.webhook:
            sinks.append(self.webhook)
        self.dispatcher = AlertDispatcher(sinks, include_text=options.log_text)
        self.history: collections.deque[_Record] = collections.deque(maxlen=options.history)
        self.history_lock = threading.Lock()

    def state(self) -> dict:
        with self.history_lock:
            requests = [r.to_dict() for r in self.history]
        return {
            "model": self.engine.model_name,
            "traits": {t: info.to_dict() for t, info in self.engine.traits.items()},
            "requests": requests,
        }

    def persona_summary(self, result: Completion, conversation_id: str) -> dict:
        traits = self.engine.traits
        return {
            "conversation_id": conversation_id,
            "traits": {t: {**traits[t].to_dict(), **reading} for t, reading in result.readings.items()},
            "alerts": result.alerts,
        }

    def on_alerts(self, alerts: list[dict], record: _Record) -> None:
        for alert in alerts:
            full = {
                "time": time.time(),
                "request_id": record.id,
                "conversation_id": record.conversation_id,
                "model": self.engine.model_name,
                **alert,
            }
            record.alerts.append(full)
            self.dispatcher.dispatch(dict(full))

    def observe(self, result: Completion, record: _Record, stream: bool, started: float) -> None:
        metrics = self.metrics
        metrics.requests.labels("200").inc()
        metrics.tokens.labels("prompt").inc(result.prompt_tokens)
        metrics.tokens.labels("completion").inc(result.completion_tokens)
        metrics.latency.labels(str(stream).lower()).observe(time.monotonic() - started)
        for trait, reading in result.readings.items():
            if reading["prompt_last"] is not None:
                metrics.projection.labels(trait, "prompt_last").observe(reading["prompt_last"])
            for value in reading["tokens"][1:]:
                metrics.projection.labels(trait, "token").observe(value)
            if reading.get("guard_actions"):
                guard = self.engine.traits[trait].guard
                metrics.guard_actions.labels(trait, guard).inc(reading["guard_actions"])
        record.readings = {
            t: {k: r[k] for k in ("prompt_last", "running_mean", "turns", "capped", "steered")}
            for t, r in result.readings.items()
        }
        record.finish_reason, record.seconds = result.finish_reason, result.seconds

    def start_job(self, messages, params, stream: bool, conversation) -> tuple[Job, asyncio.Queue, _Record]:
        """Submit one request; its events arrive on the returned queue, on this event loop."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        started = time.monotonic()
        record = _Record("", derive_conversation_id(messages, conversation), time.time(), stream)
        first = [True]

        def on_event(kind: str, payload: Event) -> None:  # the engine's thread
            if isinstance(payload, TokenEvent):
                if first[0]:
                    self.metrics.first_token.observe(time.monotonic() - started)
                    first[0] = False
                record.tokens.append({"text": payload.text, "projections": payload.projections})
                self.on_alerts(payload.alerts, record)
            elif isinstance(payload, Completion):
                self.observe(payload, record, stream, started)
            else:
                self.metrics.requests.labels("500").inc()
                record.finish_reason = "error"
            loop.call_soon_threadsafe(events.put_nowait, (kind, payload))

        job = Job(messages, params, on_event)
        record.id = job.request_id
        with self.history_lock:
            self.history.append(record)
        job.conversation_id = record.conversation_id
        self.engine.submit(job)
        return job, events, record

    def check_context(self, messages, params) -> None:
        prompt_len = len(self.engine.prompt_ids(messages))
        if prompt_len + params.max_tokens > self.engine.context_length:
            raise RequestError(
                400,
                f"prompt ({prompt_len} tokens) + max_tokens ({params.max_tokens}) exceeds the context length "
                f"{self.engine.context_length}",
                "max_tokens",
                "context_length_exceeded",
            )


def _chunk(base: dict, delta: dict, finish: str | None = None, **extra) -> str:
    body = {
        **base,
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _completion_body(service: _Service, base: dict, events: asyncio.Queue, record: _Record):
    """The non-streamed answer: one chat.completion, or an OpenAI-style error."""
    while True:
        kind, payload = await events.get()
        if kind == "error":
            assert isinstance(payload, Failure)
            return error_response(500, payload.message, code="generation_failed")
        if kind == "done":
            break
    return {
        **base,
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": payload.text},
                "finish_reason": payload.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": payload.usage(),
        "persona": service.persona_summary(payload, record.conversation_id),
    }


async def _sse(service: _Service, base: dict, job: Job, events: asyncio.Queue, record: _Record):
    """The streamed answer: chat.completion.chunk events, each token's projections in `persona`."""
    try:
        yield _chunk(base, {"role": "assistant", "content": ""})
        while True:
            kind, payload = await events.get()
            if kind == "token":
                persona = {"position": payload.position, "projections": payload.projections}
                if payload.alerts:
                    persona["alerts"] = payload.alerts
                yield _chunk(base, {"content": payload.text}, persona=persona)
            elif kind == "error":
                yield f"data: {json.dumps({'error': {'message': payload.message, 'type': 'server_error'}})}\n\n"
                break
            else:
                summary = service.persona_summary(payload, record.conversation_id)
                yield _chunk(base, {}, payload.finish_reason, persona=summary, usage=payload.usage())
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancelled = True  # a client that went away stops its generation (no-op when done)


def _add_auth_and_errors(app: FastAPI, service: _Service, api_key: str | None) -> None:
    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        header = request.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        return secrets.compare_digest(token.encode(), api_key.encode())

    @app.middleware("http")
    async def check_key(request: Request, call_next):
        path = request.url.path
        if (path.startswith("/v1/") or path.startswith("/dashboard/api")) and not authorised(request):
            return error_response(
                401, "Missing or invalid API key (send 'Authorization: Bearer KEY')", code="invalid_api_key"
            )
        return await call_next(request)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, e: RequestError):
        service.metrics.requests.labels(str(e.status)).inc()
        return error_response(e.status, e.message, e.param, e.code)

    @app.exception_handler(404)
    async def not_found(request: Request, e):
        return error_response(404, f"no route {request.method} {request.url.path}", code="not_found")

    @app.exception_handler(405)
    async def bad_method(request: Request, e):
        return error_response(405, f"method {request.method} not allowed on {request.url.path}")


def _add_info_routes(app: FastAPI, service: _Service) -> None:
    engine = service.engine

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "model": engine.model_name, "traits": list(engine.traits)}

    @app.get("/metrics")
    async def prometheus():
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models")
    async def models():
        entry = {
            "id": engine.model_name,
            "object": "model",
            "created": engine.created,
            "owned_by": "persona-vaccine",
        }
        return {"object": "list", "data": [entry]}

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard():
        return HTMLResponse(_static("dashboard.html"))

    @app.get("/dashboard/dashboard.js")
    async def dashboard_js():
        return PlainTextResponse(_static("dashboard.js"), media_type="application/javascript")

    @app.get("/dashboard/api/state")
    async def state():
        return service.state()


def _add_chat_route(app: FastAPI, service: _Service) -> None:
    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request):
        messages, params, stream, conversation = parse_request(await request.body(), service.engine)
        service.check_context(messages, params)
        job, events, record = service.start_job(messages, params, stream, conversation)
        base = {
            "id": job.request_id,
            "created": int(time.time()),
            "model": service.engine.model_name,
            "system_fingerprint": None,
        }
        if not stream:
            return await _completion_body(service, base, events, record)
        return StreamingResponse(
            _sse(service, base, job, events, record),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )


def create_app(engine: ServingEngine, options: ServerOptions | None = None) -> FastAPI:
    """The monitor's OpenAI-compatible app around `engine`."""
    options = options or ServerOptions()
    service = _Service(engine, options)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.dispatcher.close()

    app = FastAPI(title="persona-vaccine monitor", version="1", lifespan=lifespan)
    app.state.engine, app.state.metrics = engine, service.metrics
    app.state.webhook, app.state.dispatcher = service.webhook, service.dispatcher
    _add_auth_and_errors(app, service, options.api_key or os.environ.get(API_KEY_ENV) or None)
    _add_info_routes(app, service)
    _add_chat_route(app, service)
    return app


def serve(
    engine: ServingEngine,
    host: str = "127.0.0.1",
    port: int = 8000,
    options: ServerOptions | None = None,
) -> None:
    import uvicorn

    try:
        uvicorn.run(create_app(engine, options), host=host, port=port, log_level="info")
    finally:
        engine.close()


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1", port: int = 0):
    """Run `app` under uvicorn in a background thread (benchmarks, notebooks); yields the base URL."""
    import socket

    import uvicorn

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"uvicorn could not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
