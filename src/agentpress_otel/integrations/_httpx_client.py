"""One outbound httpx request as a CLIENT span and an ``http.client.request.duration`` point (stable HTTP conventions).

Used by :mod:`.httpx` in place of the stock instrumentation when the stable conventions are in force (the
default): the stock wrapper re-parses the URL twice, copies and normalises the headers twice even when none
are captured, and builds its attributes through layers of mode checks: it adds about 1.7x our CPU per request
(``benchmarks/bench_http_client.py``, export included); every LLM call pays it once per attempt. What it emits is the
stock instrumentation's output (tests/unit/test_httpx_client.py compares the two on the same requests), with
two differences the conventions ask for: ``server.port`` also when the URL leaves it implicit (443/80: the
attribute is required on client spans and on the metric), and a request that fails without a response (refused,
timed out) is recorded in the metric too, with ``error.type`` naming the exception.

Under an LLM call (``llm_http_spans=failures``, the default) the call's first request gets no span of its own
unless it fails: a successful one would repeat the chat span, at a cost the instruction benchmark measures
(benchmarks/README.md). See :func:`start`.
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, trace
from opentelemetry.propagate import inject
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentpress_otel import _selftel
from agentpress_otel.genai import _state
from agentpress_otel.genai._llm import current_llm_call
from agentpress_otel.genai._span_attrs import set_attributes

#: Conventions version of what we emit (the stable HTTP conventions, as the stock instrumentation declares).
SCHEMA_URL = "https://opentelemetry.io/schemas/1.21.0"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_G = _selftel.guard("httpx.span")  # telemetry must never break the request


@dataclass(slots=True)
class Settings:
    """What ``instrument()`` resolved once: the tracer and histogram, and the stock env options we honour."""

    tracer: Any
    duration: Any
    excluded: Any  # opentelemetry.util.http.ExcludeList or None
    request_headers: list[str]
    response_headers: list[str]
    sensitive_headers: list[str]
    after_inject: Callable[[Any], None]  # the id-baggage filter, run once the headers are final
    methods: dict[str, str]
    owner: Any  # the Telemetry handle: its GenAI metric queue takes our duration points (see _record)
    interned: dict[tuple[Any, ...], dict[str, Any]]
    #: URL text -> what start() records of it (None: excluded). An app calls a handful of URLs over and over (an LLM
    #: call is the same one every time): parsing each once saves about a sixth of what our wrapper adds to the SDK
    #: span per request (callgrind).
    urls: dict[str, tuple[str, str, int | None, int | None] | None]
    #: ``llm_http_spans=failures``: an LLM call's first request is folded into the call's span (see start()).
    fold_llm: bool = True


def make_settings(tracer_provider: Any, meter_provider: Any, after_inject: Callable[[Any], None],
                  owner: Any = None) -> Settings:
    """Resolve the tracer, the histogram (the conventions' buckets) and the stock env options, once."""
    from opentelemetry.instrumentation._semconv import HTTP_DURATION_HISTOGRAM_BUCKETS_NEW
    from opentelemetry.metrics import get_meter
    from opentelemetry.util.http import (
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST,
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE,
        OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS,
        get_custom_headers,
        get_excluded_urls,
    )

    from agentpress_otel._version import __version__

    tracer = trace.get_tracer(__name__.rsplit(".", 1)[0] + ".httpx", __version__, tracer_provider,
                              schema_url=SCHEMA_URL)
    meter = get_meter(__name__.rsplit(".", 1)[0] + ".httpx", __version__, meter_provider, SCHEMA_URL)
    duration = meter.create_histogram("http.client.request.duration", unit="s",
                                      description="Duration of HTTP client requests.",
                                      explicit_bucket_boundaries_advisory=HTTP_DURATION_HISTOGRAM_BUCKETS_NEW)
    return Settings(tracer, duration, get_excluded_urls("HTTPX"),
                    get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST),
                    get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_RESPONSE),
                    get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS),
                    after_inject, {}, owner, {}, {},
                    getattr(getattr(owner, "config", None), "llm_http_spans", "failures") != "all")


def _method(st: Settings, original: str) -> str:
    m = st.methods.get(original)
    if m is None:
        from opentelemetry.util.http import sanitize_method

        m = sanitize_method(original.strip())
        if len(st.methods) < 64:  # a server may see any method string; a client sends a handful
            st.methods[original] = m
    return m


def _headers(headers: Any, wanted: list[str], sensitive: list[str], response: bool) -> dict[str, Any]:
    from opentelemetry.util.http import (
        get_custom_header_attributes,
        normalise_request_header_name,
        normalise_response_header_name,
    )

    normal: dict[str, list[str]] = {}
    for key in headers:
        normal.setdefault(key.lower(), []).extend(headers.get_list(key, split_commas=True))
    norm = normalise_response_header_name if response else normalise_request_header_name
    return dict(get_custom_header_attributes(normal, wanted, sensitive, norm))


def _url(st: Settings, url: Any) -> tuple[str, str, int | None, int | None] | None:
    """(``url.full`` as recorded, host, port, the port the URL states) of ``url``; None when it is excluded."""
    text = str(url)
    try:
        return st.urls[text]
    except KeyError:
        pass
    facts: tuple[str, str, int | None, int | None] | None = None
    userinfo = url.userinfo
    if st.excluded is None or not st.excluded.url_disabled(text):
        full = text
        if userinfo or url.query:
            from opentelemetry.util.http import redact_url

            full = redact_url(text)
        explicit = url.port
        facts = (full, url.host, explicit or _DEFAULT_PORTS.get(url.scheme), explicit)
    if userinfo or len(text) > 2048:
        return facts  # credentials and blobs are not kept for the process's life
    if len(st.urls) >= 256:  # bounded: URLs with ids in them would grow it forever
        st.urls.clear()
    st.urls[text] = facts
    return facts


class _Folded:
    """A request folded into its LLM call's span: what a span made after the fact needs (see :func:`start`)."""

    __slots__ = ("attrs", "ctx", "current", "facts", "method", "original", "request", "start_ns")

    def __init__(self, request: Any, facts: tuple[str, str, int | None, int | None], method: str, original: str,
                 ctx: Any, attrs: dict[str, Any] | None) -> None:
        self.request, self.facts, self.method, self.original = request, facts, method, original
        self.start_ns = time.time_ns()
        self.ctx = ctx
        self.current = trace.get_current_span(ctx)  # the span its traceparent names and its exemplar links
        self.attrs = attrs  # with request headers captured: read before the propagation headers go in


#: What start() hands finish(): (span, metric attributes, context token, start time, folded); span and token are
#: None for a folded request, folded is None for one with its own span.
Started = tuple[Any, dict[str, Any], Any, float, "_Folded | None"]


def _span_attributes(st: Settings, request: Any, facts: tuple[str, str, int | None, int | None], method: str,
                     original: str) -> dict[str, Any]:
    full, host, port, explicit = facts
    attrs: dict[str, Any] = {"http.request.method": method, "url.full": full}
    if method != original.strip():
        attrs["http.request.method_original"] = original.strip()
    if host:
        attrs["server.address"] = attrs["network.peer.address"] = host
    if port:
        attrs["server.port"] = port
    if explicit:
        attrs["network.peer.port"] = explicit
    if st.request_headers:
        attrs.update(_headers(request.headers, st.request_headers, st.sensitive_headers, False))
    return attrs


def start(st: Settings, request: Any) -> Started | None:
    """Open the span for ``request`` (current while the transport runs) and inject the propagation headers;
    None when the URL is excluded. The clock starts last, as the stock wrapper's does.

    The first request of an LLM call (``llm_http_spans=failures``, the default) gets no span of its own: it
    carries the call's ``traceparent``, and :func:`finish` makes its span after the fact only if it failed."""
    facts = _url(st, request.url)
    if facts is None:
        return None
    _full, host, port, _explicit = facts
    original = request.method
    method = _method(st, original)
    metric: dict[str, Any] = {"http.request.method": method}
    if host:
        metric["server.address"] = host
    if port:
        metric["server.port"] = port
    call = current_llm_call()
    # Only the call's own first request, while the call runs: a task the call started inherits its context, and
    # may send requests of its own (a logging callback, a webhook) after the call ended, or to another host.
    if call is not None and not call._ended and (call.server_address is None or call.server_address == host) \
            and next(call._http_seq) == 1:
        if call.server_address is None and host:
            # The call names the server it talked to, on its span (a service-graph edge) and its metrics, as when
            # it was given one: LiteLLM's default endpoints (and OPENAI_BASE_URL) come with no api_base to read.
            call.server_address, call.server_port = host, port
            call.set_attribute("server.address", host)
            if port:
                call.set_attribute("server.port", port)
        if st.fold_llm:
            folded = _Folded(request, facts, method, original, context.get_current(),
                             _span_attributes(st, request, facts, method, original) if st.request_headers else None)
            inject(request.headers)
            st.after_inject(request)
            return None, metric, None, timeit.default_timer(), folded
    attrs = _span_attributes(st, request, facts, method, original)
    span = st.tracer.start_span("HTTP" if method == "_OTHER" else method, kind=SpanKind.CLIENT, attributes=attrs)
    token = context.attach(trace.set_span_in_context(span))
    try:
        inject(request.headers)
        st.after_inject(request)
    except BaseException:
        context.detach(token)
        span.end()
        raise
    return span, metric, token, timeit.default_timer(), None


def finish(st: Settings, started: Started, response: Any, exc: BaseException | None) -> None:
    """Response attributes, status, the duration point; then end the span and leave its context (always, even if
    ending the span fails: the request's context must not leak into the caller's)."""
    span, metric, token, t0, fold = started
    elapsed = max(timeit.default_timer() - t0, 0.0)
    if fold is not None:
        with _G:
            _folded(st, fold, metric, response, exc, elapsed)
        return
    try:
        with _G:
            _outcome(st, span, metric, response, exc, elapsed)
    finally:
        try:
            with _G:
                span.end()
        finally:
            context.detach(token)


def _folded(st: Settings, f: _Folded, metric: dict[str, Any], response: Any, exc: BaseException | None,
            elapsed: float) -> None:
    """The outcome of a request folded into its LLM call's span: a success is its duration point only (the
    exemplar links the span its traceparent named, the chat span or one current under it); a failure gets the span
    it would have had, started at the request's start."""
    if exc is not None and not isinstance(exc, Exception):
        # Cancelled: no point (as _outcome) and no span; the call's own span records the cancellation (with its own
        # span, under llm_http_spans=all, the request would end unmarked).
        return
    status = getattr(response, "status_code", None)
    if exc is None and type(status) is int and 100 <= status < 400:
        _response_fields(metric, response, status)
        _record(st, elapsed, metric, f.current)
        return
    span = st.tracer.start_span("HTTP" if f.method == "_OTHER" else f.method, context=f.ctx, kind=SpanKind.CLIENT,
                                attributes=f.attrs or _span_attributes(st, f.request, f.facts, f.method, f.original),
                                start_time=f.start_ns)
    try:
        _outcome(st, span, metric, response, exc, elapsed)
    finally:
        span.end()


def _outcome(st: Settings, span: Any, metric: dict[str, Any], response: Any, exc: BaseException | None,
             elapsed: float) -> None:
    if exc is not None and not isinstance(exc, Exception):
        # Cancelled (CancelledError, GeneratorExit, KeyboardInterrupt): the request has no outcome to classify.
        # As the stock instrumentation and the API's use_span do, the span ends unmarked and no duration point
        # is recorded: a client that gave up is not a failing server (the error-ratio panels count error.type).
        return
    if response is None and exc is not None:
        response = getattr(exc, "response", None)  # httpx status errors carry one
    status = getattr(response, "status_code", None)
    if type(status) is int:
        _on_response(st, span, metric, response, status)
    if exc is not None:
        kind = type(exc).__qualname__
        span.set_attribute("error.type", kind)
        metric.setdefault("error.type", kind)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
    _record(st, elapsed, metric, span)


def _record(st: Settings, elapsed: float, metric: dict[str, Any], span: Any) -> None:
    """The duration point. When our own instrument() set the providers up, it joins the queue GenAI metrics use
    (replayed at collection, grouped per attribute set: the SDK's ~12 µs of attribute work per ``record()`` is
    paid once per group), with the span's context for the exemplar; otherwise it is recorded now."""
    ins = _state.STATE.instruments
    if st.owner is None or not ins.deferred or _state.STATE.owner is not st.owner:
        # The span's own context for the exemplar: under an LLM call the current one may be another span.
        st.duration.record(elapsed, metric, context=trace.set_span_in_context(span))
        return
    key = tuple(metric.items())
    attrs = st.interned.get(key)
    if attrs is None:  # one dict per attribute set, so the queue's drain can group by identity
        if len(st.interned) >= 512:  # a bounded set: hosts and statuses, never ids
            st.interned.clear()
        attrs = st.interned[key] = metric
    ins.record(st.duration, elapsed, attrs, span.get_span_context())


def _response_fields(metric: dict[str, Any], response: Any, status: int) -> dict[str, Any]:
    """Put the response's status (and ``error.type`` for one that is an error) and protocol version into the
    metric attributes; return the same as span attributes."""
    attrs: dict[str, Any] = {"http.response.status_code": status}
    metric["http.response.status_code"] = status
    # Client side, 4xx and 5xx are errors (and anything outside 100-599), as http_status_to_status_code says.
    if status < 100 or status >= 400:
        attrs["error.type"] = metric["error.type"] = str(status)
    version = getattr(response, "http_version", "")
    if version:
        attrs["network.protocol.version"] = metric["network.protocol.version"] = version.replace("HTTP/", "")
    return attrs


def _on_response(st: Settings, span: Any, metric: dict[str, Any], response: Any, status: int) -> None:
    attrs = _response_fields(metric, response, status)
    if "error.type" in attrs:
        span.set_status(Status(StatusCode.ERROR))
    if st.response_headers:
        attrs.update(_headers(response.headers, st.response_headers, st.sensitive_headers, True))
    set_attributes(span, attrs)  # the SDK's own set_attributes, without re-cleaning values that need none
