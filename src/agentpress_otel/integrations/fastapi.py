"""FastAPI / Starlette: a lean ASGI server-span middleware.

Why not the stock ``FastAPIInstrumentor``: it costs several times a bare request on a small machine
(per-message send/receive spans, header decoding per attribute, route matching run twice, environment
lookups per request). This middleware makes one SERVER span per request, reads the headers once, takes
the route template Starlette already matched (``scope["route"]``), and matches paths only against the
few routes that carry AgentPress ids (``{thread_id}``, ``{agent_run_id}``, ``{project_id}``).

It is installed outermost (around Starlette's ServerErrorMiddleware) so a crashing endpoint's 500
still carries ``X-Request-ID`` and is recorded on the span.

Trust boundary: ids in inbound ``baggage`` (``agentpress.project.id``, ``.thread.id``, ``.agent_run.id``,
``.request.id``) are accepted, but ``user.id`` is dropped unless ``Config.trust_baggage_user_id`` is on:
any browser can send a baggage header, so the app sets the user after authentication with
``thread_context(user_id=...)``.

Excluded paths (``Config.excluded_urls``) are regular expressions searched in the request path, as the
standard ``OTEL_PYTHON_*_EXCLUDED_URLS`` are; the defaults are anchored (exact path, optional ``/``).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import Token
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentpress_otel import _selftel, _stop
from agentpress_otel._context import ID_ATTRIBUTES, thread_context
from agentpress_otel.genai import error_type
from agentpress_otel.integrations import runtime

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

NAME = "fastapi"
REQUIRES: str | None = None  # plain ASGI: works for any FastAPI/Starlette app object it is given
_G_FASTAPI = _selftel.guard("fastapi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Headers a browser or another service may send; add them to your CORS ``allow_headers``.
PROPAGATION_HEADERS = ("traceparent", "tracestate", "baggage", "x-request-id")

#: The ids of ``_context.ID_ATTRIBUTES`` that AgentPress routes carry as path parameters.
_ID_PARAMS = ("thread_id", "agent_run_id", "project_id")
_PATCHED: dict[int, tuple[Any, Callable[[], Any], dict[str, Any] | None]] = {}
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class _Getter(Getter[dict[str, str]]):
    """Carrier getter over a plain dict of already-decoded headers (one decode pass per request)."""

    @staticmethod
    def get(carrier: dict[str, str], key: str) -> list[str] | None:
        v = carrier.get(key)
        return None if v is None else [v]

    @staticmethod
    def keys(carrier: dict[str, str]) -> list[str]:
        return list(carrier)


_GETTER = _Getter()
_WANTED = frozenset({b"traceparent", b"tracestate", b"baggage", b"user-agent", b"host"})
_USER_ID_KEY = ID_ATTRIBUTES["user_id"]
#: http.request.method's well-known values; anything else is reported as ``_OTHER`` (semconv HTTP spans).
_KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"})


def compile_excluded(patterns: tuple[str, ...] | list[str]) -> re.Pattern[str] | None:
    """One alternation of the exclusion regexes (searched in the path); ``None`` when there are none."""
    pats = [p for p in patterns if p]
    if not pats:
        return None
    return re.compile("|".join(f"(?:{p})" for p in pats))


class AgentPressASGIMiddleware:
    """One SERVER span per HTTP request, request ids echoed, AgentPress ids bound for everything inside."""

    def __init__(self, app: ASGIApp, tel: Telemetry, fastapi_app: Any = None) -> None:
        self.app = app
        self.tel = tel
        self.fastapi_app = fastapi_app
        cfg = tel.config
        self.excluded = compile_excluded(cfg.excluded_urls)
        self.trust_user_id = cfg.trust_baggage_user_id
        self._loop: object = None  # the last event loop seen; new loops are handed to runtime.watch_loop()
        self.rid_header = cfg.request_id_header.lower().encode("latin-1")
        self.rid_header_out = cfg.request_id_header.encode("latin-1")
        self.tracer = tel.tracer_provider.get_tracer("agentpress_otel.fastapi")
        meter = tel.meter_provider.get_meter("agentpress_otel.fastapi")
        self.duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests",
            explicit_bucket_boundaries_advisory=[
                0.005,
                0.01,
                0.025,
                0.05,
                0.075,
                0.1,
                0.25,
                0.5,
                0.75,
                1,
                2.5,
                5,
                7.5,
                10,
            ],
        )
        self._id_routes: list[re.Pattern[str]] = []
        self._n_routes = -1

    def _ids_from_path(self, path: str) -> dict[str, str]:
        routes = getattr(self.fastapi_app, "routes", None)
        if routes is None:
            return {}
        if len(routes) != self._n_routes:
            self._n_routes = len(routes)
            self._id_routes = [
                r.path_regex
                for r in routes
                if hasattr(r, "path_regex") and any("{" + p in getattr(r, "path", "") for p in _ID_PARAMS)
            ]
        for rx in self._id_routes:
            m = rx.match(path)
            if m:
                return {k: v for k, v in m.groupdict().items() if k in _ID_PARAMS}
        return {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._loop is not (loop := asyncio.events._get_running_loop()):
            # First request on this loop: probe it for lag even if the run_forever patch could not see it
            # (uvloop, a loop started before instrument()). Cheap and never raises.
            self._loop = loop
            runtime.watch_loop()
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http" or (self.excluded is not None and self.excluded.search(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        prepared = None
        with _G_FASTAPI:  # telemetry must never break the request
            prepared = self._prepare(scope)
        if prepared is None:
            await self.app(scope, receive, send)
            return
        span, token, request_id, ctx_mgr, start = prepared
        status_code = 0
        failed: str | None = None  # error.type of an unhandled exception
        rid_value = request_id.encode("latin-1")

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
                headers = list(message.get("headers") or ())
                # The app may have set its own request id header: never send two.
                if not any(k.lower() == self.rid_header for k, _ in headers):
                    headers.append((self.rid_header_out, rid_value))
                    message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            if status_code == 0:
                status_code = 500
            failed = error_type(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.set_attribute("error.type", failed)
            try:  # the SDK calls str(exc), which the app's exception may make raise: never replace exc
                span.record_exception(exc)
            except Exception as rec_exc:  # noqa: BLE001 - counted through swallow(), then a placeholder event
                _selftel.swallow("fastapi", rec_exc)
                span.add_event("exception", {"exception.type": _selftel.qualified_name(type(exc)),
                                             "exception.message": f"<unprintable {type(exc).__name__} message>"})
            raise
        finally:
            self._finish(scope, span, status_code, start, failed)
            ctx_mgr.__exit__(None, None, None)
            otel_context.detach(token)

    @staticmethod
    def _lifespan_send(send: Send) -> Send:
        """Flush after the app's own shutdown handlers, before the server is told shutdown is complete.

        uvicorn (alone or as gunicorn's worker) re-raises SIGTERM after this, and the default action skips
        atexit: this is the last moment every request's telemetry is recorded and the process still alive.
        """

        async def lifespan_send(message: Message) -> None:
            if message.get("type") in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                # On a worker thread: the event loop keeps serving whatever still runs on it.
                await asyncio.to_thread(_stop.flush_at_stop, "lifespan")
            await send(message)

        return lifespan_send

    def _prepare(self, scope: Scope) -> tuple[Any, Token[Context], str, thread_context, float]:
        carrier: dict[str, str] = {}
        request_id = ""
        for k, v in scope.get("headers") or ():
            if k in _WANTED:
                carrier[k.decode("latin-1")] = v.decode("latin-1")
            elif k == self.rid_header:
                request_id = v.decode("latin-1")
        if not request_id or not _SAFE_REQUEST_ID.match(request_id):
            request_id = uuid.uuid4().hex
        qs: bytes = scope.get("query_string") or b""
        if "traceparent" not in carrier and b"traceparent=" in qs:
            # EventSource cannot send headers: browsers put the trace context in the query string.
            for key, value in parse_qsl(qs.decode("latin-1")):
                if key in ("traceparent", "tracestate", "baggage"):
                    carrier[key] = value
        parent = propagate.extract(carrier, getter=_GETTER)
        if not self.trust_user_id and "baggage" in carrier and otel_baggage.get_baggage(_USER_ID_KEY, parent):
            parent = otel_baggage.remove_baggage(_USER_ID_KEY, parent)  # a browser could claim any user
        path: str = scope.get("path", "")
        # The ids (request id included) reach the span through ContextSpanProcessor, logs through current_ids().
        ctx_mgr = thread_context(request_id=request_id, **self._ids_from_path(path))
        token = otel_context.attach(parent)
        ctx_mgr.__enter__()
        method: str = scope.get("method", "GET")
        attrs: dict[str, Any] = {
            "http.request.method": method if method in _KNOWN_METHODS else "_OTHER",
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
        }
        if scope.get("query_string"):
            attrs["url.query"] = scope["query_string"].decode("latin-1")
        server = scope.get("server")
        if server:
            attrs["server.address"] = carrier.get("host", server[0]).split(":")[0]
            attrs["server.port"] = server[1]
        client = scope.get("client")
        if client:
            attrs["client.address"] = client[0]
        if "user-agent" in carrier:
            attrs["user_agent.original"] = carrier["user-agent"]
        attrs["network.protocol.version"] = scope.get("http_version", "1.1")
        name = method if method in _KNOWN_METHODS else "HTTP"  # the span-name rule for _OTHER
        span = self.tracer.start_span(name, kind=SpanKind.SERVER, attributes=attrs)
        # Re-attach with the span current; the first token restores the caller's context at the end.
        otel_context.attach(trace.set_span_in_context(span))
        return span, token, request_id, ctx_mgr, time.perf_counter()

    def _finish(self, scope: Scope, span: Any, status_code: int, start: float, failed: str | None) -> None:
        with _G_FASTAPI:
            method = scope.get("method", "GET")
            if method not in _KNOWN_METHODS:  # any string a client sends: bounded as the convention says
                span.set_attribute("http.request.method_original", method)
                method = "_OTHER"
            route = scope.get("route")
            route_path = getattr(route, "path", None)
            if route_path:
                span.update_name(f"{'HTTP' if method == '_OTHER' else method} {route_path}")
                span.set_attribute("http.route", route_path)
            span.set_attribute("http.response.status_code", status_code)
            etype = failed
            if status_code >= 500 and not failed:
                span.set_status(Status(StatusCode.ERROR))
                etype = str(status_code)
                span.set_attribute("error.type", etype)
            span.end()
            # Metric attributes per the http.server.request.duration convention: url.scheme is required,
            # network.protocol.version recommended, error.type conditionally required (5xx or an exception).
            labels: dict[str, Any] = {
                "http.request.method": method,
                "http.response.status_code": status_code,
                "url.scheme": scope.get("scheme", "http"),
                "network.protocol.version": scope.get("http_version", "1.1"),
            }
            if route_path:
                labels["http.route"] = route_path
            if etype:
                labels["error.type"] = etype
            self.duration.record(time.perf_counter() - start, labels)


def instrument_app(app: Any, tel: Telemetry) -> None:
    """Wrap ``app``'s middleware stack (outermost) with :class:`AgentPressASGIMiddleware`. Idempotent."""
    if id(app) in _PATCHED:
        return
    original_build = app.build_middleware_stack

    def build_middleware_stack() -> Any:
        return AgentPressASGIMiddleware(original_build(), tel, app)

    # FastAPI >= 0.16x has native OpenTelemetry spans (plus per-dependency "operation" spans) that turn on
    # as soon as a provider exists; ours replaces them for this app, so switch them off to avoid doubles.
    native = getattr(app, "_telemetry", None)
    saved_native = dict(native) if isinstance(native, dict) else None
    if isinstance(native, dict):
        native.update(tracing=False, metrics=False, logs=False, operation_spans=False)
    app.build_middleware_stack = build_middleware_stack
    app.middleware_stack = None  # rebuilt on the next request, even if the app already served some
    _PATCHED[id(app)] = (app, original_build, saved_native)


def uninstrument_app(app: Any) -> None:
    entry = _PATCHED.pop(id(app), None)
    if entry is None:
        return
    _, original_build, saved_native = entry
    app.build_middleware_stack = original_build
    if saved_native is not None and isinstance(getattr(app, "_telemetry", None), dict):
        app._telemetry.update(saved_native)
    app.middleware_stack = None


def instrument(telemetry: Telemetry) -> None:
    """Apps are instrumented one by one through ``instrument(app)`` (:func:`instrument_app`); nothing global to
    patch.

    Example::

        agentpress_otel.instrument(app)  # wraps app via instrument_app(app, telemetry)
    """


def uninstrument() -> None:
    """Unwrap every app :func:`instrument_app` wrapped (idempotent)."""
    for app, _, _ in list(_PATCHED.values()):
        uninstrument_app(app)
