"""Our httpx client wrapper against the stock instrumentation, on the same real requests.

A loopback server answers 200, 404 and 502; a request to a closed port fails without a response; URLs carry
credentials and a signed query; a non-standard method is sent; sync and async clients both. The stock
``HTTPXClientInstrumentor`` (stable HTTP conventions) is the expected value: span names, kinds, attributes,
status, exception events and ``http.client.request.duration`` points must match, except for the two
differences the conventions ask for (``server.port`` when the URL leaves it implicit; a failed request recorded
in the metric with ``error.type``), which are asserted exactly.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util.http import redact_url

from agentpress_otel.integrations import _httpx_client
from agentpress_otel.integrations import httpx as httpx_integration

_STATUS = {"/ok": 200, "/missing": 404, "/bad": 502, "/slowbad": 503}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        n = int(self.headers.get("content-length") or 0)
        if n:
            self.rfile.read(n)
        if self.path.startswith("/slow"):
            time.sleep(1.0)
        code = _STATUS.get(self.path.split("?")[0], 200)
        try:
            self.send_response(code)
            self.send_header("content-length", "2")
            self.send_header("x-answer", "yes")
            self.end_headers()
            self.wfile.write(b"ok")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the cancellation test)

    do_GET = do_POST = do_PURGE = _answer


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stable_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stable HTTP conventions, as instrument() opts into them (the stock class reads the env once)."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    cls: Any = _OpenTelemetrySemanticConventionStability
    before = cls._initialized
    cls._initialized = False
    cls._initialize()
    yield
    cls._initialized = False
    monkeypatch.undo()
    if before:
        cls._initialize()


def _requests(base: str, refused: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [("GET", f"{base}/ok", {}), ("POST", f"{base}/missing", {"json": {"a": 1}}), ("GET", f"{base}/bad", {}),
            ("GET", f"{base.replace('http://', 'http://user:pw@')}/ok?sig=abc&page=2", {}),
            ("PURGE", f"{base}/ok", {}), ("GET", refused, {})]


def _send(reqs: list[tuple[str, str, dict[str, Any]]]) -> None:
    with httpx.Client() as c:
        for method, url, kw in reqs:
            try:
                c.request(method, url, **kw)
            except httpx.ConnectError:
                pass

    async def go() -> None:
        async with httpx.AsyncClient() as c:
            for method, url, kw in reqs:
                try:
                    await c.request(method, url, **kw)
                except httpx.ConnectError:
                    pass

    asyncio.run(go())


def _run(ours: bool, reqs: list[tuple[str, str, dict[str, Any]]]) -> tuple[list[Any], dict[Any, int]]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    if ours:
        tel = SimpleNamespace(tracer_provider=tp, meter_provider=mp, config=SimpleNamespace(internal_hosts=[]))
        httpx_integration.instrument(tel)  # type: ignore[arg-type]
        assert httpx_integration._settings is not None, "the stable mode must take our own wrapper"
    else:
        HTTPXClientInstrumentor().instrument(tracer_provider=tp, meter_provider=mp)
    try:
        _send(reqs)
    finally:
        if ours:
            httpx_integration.uninstrument()
        else:
            HTTPXClientInstrumentor().uninstrument()
    points: dict[Any, int] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "http.client.request.duration":
                    assert m.unit == "s"
                    for p in m.data.data_points:
                        assert list(p.explicit_bounds)[:3] == [0.005, 0.01, 0.025]  # the conventions' buckets
                        points[frozenset(p.attributes.items())] = p.count
    return list(exporter.get_finished_spans()), points


def _view(span: Any) -> tuple[Any, ...]:
    events = tuple((e.name, e.attributes.get("exception.type"), e.attributes.get("exception.message"))
                   for e in span.events)
    return (span.name, span.kind, span.status.status_code, span.status.description, dict(span.attributes), events)


def test_same_spans_and_points_as_the_stock_instrumentation(server: str, stable_mode: None) -> None:
    """200/404/502, credentials and a signed query, a custom method and a refused port, sync and async: the same
    spans and metric points as the stock instrumentation, plus the failed requests' points."""
    refused = f"http://127.0.0.1:{_closed_port()}/ok"
    reqs = _requests(server, refused)
    stock_spans, stock_points = _run(False, reqs)
    our_spans, our_points = _run(True, reqs)
    assert len(stock_spans) == len(our_spans) == 2 * len(reqs)
    for theirs, mine in zip(stock_spans, our_spans, strict=True):
        assert _view(mine) == _view(theirs)
    # Every point the stock instrumentation records, with the same count; and the failed requests on top.
    extra = {k: v for k, v in our_points.items() if k not in stock_points}
    assert {k: our_points[k] for k in stock_points} == stock_points
    assert list(extra.values()) == [2]  # the refused request, sync and async
    (attrs,) = extra
    assert dict(attrs) == {"http.request.method": "GET", "server.address": "127.0.0.1",
                           "server.port": int(refused.split(":")[2].split("/")[0]), "error.type": "ConnectError"}
    kinds = {s.attributes.get("http.response.status_code") for s in our_spans}
    assert kinds == {200, 404, 502, None}
    assert any(s.name == "HTTP" and s.attributes["http.request.method_original"] == "PURGE" for s in our_spans)
    assert all("pw" not in s.attributes["url.full"] and "sig=abc" not in s.attributes["url.full"]
               for s in our_spans)


def test_server_port_when_the_url_leaves_it_implicit(stable_mode: None) -> None:
    """http://host/ (port 80 implied): server.port 80 on the span and the point, which the stock one leaves out."""
    # Port 80 on loopback is closed here (nothing listens as non-root test); the request fails, the span stays.
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", 80)) == 0:
            pytest.skip("something listens on 127.0.0.1:80")  # CI=true turns a skip into a failure (conftest)
    reqs = [("GET", "http://127.0.0.1/ok", {})]
    stock_spans, _ = _run(False, reqs)
    our_spans, points = _run(True, reqs)
    assert "server.port" not in stock_spans[0].attributes
    assert our_spans[0].attributes["server.port"] == 80  # required on client spans by the HTTP conventions
    assert {k: v for k, v in _view(our_spans[0])[4].items() if k != "server.port"} == _view(stock_spans[0])[4]
    assert [dict(k)["server.port"] for k in points] == [80]


def test_stock_instrumentor_called_after_us_adds_no_second_span(server: str, stable_mode: None) -> None:
    """The app calling HTTPXClientInstrumentor().instrument() after us gets one span per request, none once undone."""
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tel = SimpleNamespace(tracer_provider=tp, meter_provider=mp, config=SimpleNamespace(internal_hosts=[]))
    httpx_integration.instrument(tel)  # type: ignore[arg-type]
    try:
        HTTPXClientInstrumentor().instrument(tracer_provider=tp)  # the app's own call: a no-op now
        httpx.get(f"{server}/ok")
        assert len(exporter.get_finished_spans()) == 1
    finally:
        httpx_integration.uninstrument()
    assert not HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    httpx.get(f"{server}/ok")
    assert len(exporter.get_finished_spans()) == 1  # undone: nothing more


def test_transition_mode_keeps_the_stock_instrumentation(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SEMCONV_STABILITY_OPT_IN=http/dup: the stock instrumentation does the work (old and new attributes)."""
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")
    cls: Any = _OpenTelemetrySemanticConventionStability
    cls._initialized = False
    try:
        cls._initialize()
        exporter = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        tel = SimpleNamespace(tracer_provider=tp, meter_provider=MeterProvider(),
                              config=SimpleNamespace(internal_hosts=[]))
        httpx_integration.instrument(tel)  # type: ignore[arg-type]
        try:
            assert httpx_integration._settings is None
            httpx.get(f"{server}/ok")
        finally:
            httpx_integration.uninstrument()
        (span,) = exporter.get_finished_spans()
        assert span.attributes["http.method"] == "GET" and span.attributes["http.request.method"] == "GET"
    finally:
        cls._initialized = False
        monkeypatch.undo()
        cls._initialize()


def _ours(tp: TracerProvider, reader: InMemoryMetricReader | None = None) -> None:
    mp = MeterProvider(metric_readers=[reader] if reader else [])
    tel = SimpleNamespace(tracer_provider=tp, meter_provider=mp, config=SimpleNamespace(internal_hosts=[]))
    httpx_integration.instrument(tel)  # type: ignore[arg-type]


def test_a_failing_span_processor_neither_breaks_the_request_nor_leaks_its_context(server: str,
                                                                                stable_mode: None) -> None:
    """A span processor that raises in on_end (outside our code): the request still returns, and the HTTP span is
    not left as the caller's current span."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor

    class Boom(SpanProcessor):
        def on_end(self, span: Any) -> None:
            raise RuntimeError("processor boom")

    tp = TracerProvider()
    tp.add_span_processor(Boom())
    _ours(tp)
    try:
        assert httpx.get(f"{server}/ok").status_code == 200
        assert not trace.get_current_span().get_span_context().is_valid
    finally:
        httpx_integration.uninstrument()


def test_reinstrumented_under_another_wrapper_makes_one_span(server: str, stable_mode: None) -> None:
    """instrument, another library wraps the transport, uninstrument, instrument: still one span per request."""
    import wrapt

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    original = httpx.HTTPTransport.__dict__["handle_request"]
    _ours(tp)
    try:
        wrapt.wrap_function_wrapper(httpx.HTTPTransport, "handle_request", lambda w, i, a, k: w(*a, **k))
        httpx_integration.uninstrument()
        _ours(tp)
        httpx.get(f"{server}/ok")
        assert [s.name for s in exporter.get_finished_spans()] == ["GET"]
    finally:
        httpx_integration.uninstrument()
        httpx.HTTPTransport.handle_request = original  # type: ignore[method-assign]


def test_a_cancelled_request_ends_its_span_unmarked_and_records_no_point(server: str, stable_mode: None) -> None:
    """A request cancelled by the client (wait_for timeout) is not a server error: the span ends once without
    error.type or ERROR status, no duration point, and the caller's context is clean."""
    from opentelemetry import trace

    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    _ours(tp, reader)

    async def go() -> None:
        async with httpx.AsyncClient() as c:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(c.get(f"{server}/slow"), 0.2)
            assert not trace.get_current_span().get_span_context().is_valid

    try:
        asyncio.run(go())
    finally:
        httpx_integration.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "UNSET" and "error.type" not in span.attributes
    data = reader.get_metrics_data()
    assert not [m for rm in (data.resource_metrics if data else []) for sm in rm.scope_metrics for m in sm.metrics
                if m.name == "http.client.request.duration" and m.data.data_points]


def test_under_instrument_the_duration_point_is_queued_and_keeps_its_exemplar(server: str) -> None:
    """With instrument()'s own providers the duration point joins the GenAI metric queue (no SDK record on the
    request path) and comes out at collection with the same counts, attributes and an exemplar of its span."""
    from agentpress_otel.genai import _state
    from agentpress_otel.testing import capture

    port = int(server.rsplit(":", 1)[1])
    with capture(integrations=["httpx"]) as cap:
        for path in ("/ok", "/ok", "/ok", "/missing"):
            httpx.get(f"{server}{path}")
        assert len(_state.STATE.instruments.pending) == 4  # queued, not recorded on the request path
        points = list(cap.points("http.client.request.duration"))
        spans = {s.context.span_id for s in cap.spans() if s.kind.name == "CLIENT"}
    got = {frozenset(a.items()): p.count for a, p in points}
    base = {"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": port,
            "network.protocol.version": "1.0"}
    assert got == {frozenset({**base, "http.response.status_code": 200}.items()): 3,
                   frozenset({**base, "http.response.status_code": 404, "error.type": "404"}.items()): 1}
    linked = {e.span_id for _, p in points for e in p.exemplars}
    assert linked and linked <= spans


def test_parsed_urls_are_kept_per_url_text_and_bounded(server: str, stable_mode: None,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What start() records of a URL is parsed once per URL text: an excluded URL stays excluded on every request,
    each of 300 distinct URLs (more than the 256 kept) gets its own attributes, and the kept set stays bounded."""
    monkeypatch.setenv("OTEL_PYTHON_HTTPX_EXCLUDED_URLS", "/health")
    urls = [f"{server}/ok?page={i}" for i in range(300)]
    reqs = [("GET", f"{server}/health", {}), ("GET", f"{server}/health", {})] + [("GET", u, {}) for u in urls]
    seen: list[int] = []
    real = _httpx_client._url

    def counting(st: Any, url: Any) -> Any:
        got = real(st, url)
        seen.append(len(st.urls))
        return got

    monkeypatch.setattr(_httpx_client, "_url", counting)
    spans, _ = _run(True, reqs)
    assert len(spans) == 2 * len(urls)  # sync and async; /health never has one
    assert sorted(s.attributes["url.full"] for s in spans) == sorted(
        redact_url(u) for u in urls * 2)
    assert max(seen) <= 256


def test_urls_with_credentials_or_of_any_length_are_not_kept(server: str, stable_mode: None) -> None:
    """A URL with a password in it, or longer than 2 KiB, is parsed for its request and not kept afterwards."""
    secret = server.replace("http://", "http://user:pw@") + "/ok"
    long = f"{server}/ok?q={'x' * 3000}"
    httpx_integration.instrument(SimpleNamespace(tracer_provider=TracerProvider(), meter_provider=MeterProvider(),
                                                 config=SimpleNamespace(internal_hosts=[])))  # type: ignore[arg-type]
    try:
        st = httpx_integration._settings
        assert st is not None
        _send([("GET", secret, {}), ("GET", long, {}), ("GET", f"{server}/ok", {})])
        assert list(st.urls) == [f"{server}/ok"]
    finally:
        httpx_integration.uninstrument()


def _llm_requests(server: str, refused: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Under instrument() with ``llm_http_spans=mode``: four LLM calls, one with two requests (ok, then 502), one
    with a 404, one refused, one with a single ok request; and one ok request outside any call. (spans, points)"""
    from agentpress_otel import llm_call
    from agentpress_otel.testing import capture

    monkeypatch.setenv("AGENTPRESS_OTEL_LLM_HTTP_SPANS", mode)
    with capture(integrations=["httpx"]) as cap:
        with httpx.Client() as c:
            with llm_call(model="m-two", provider="openai"):
                c.get(f"{server}/ok")
                c.get(f"{server}/bad")
            with llm_call(model="m-404", provider="openai"):
                c.post(f"{server}/missing", json={"a": 1})
            with llm_call(model="m-refused", provider="openai"), pytest.raises(httpx.ConnectError):
                c.get(refused)
            with llm_call(model="m-ok", provider="openai"):
                c.get(f"{server}/ok")
            c.get(f"{server}/ok?outside=1")
        points = list(cap.points("http.client.request.duration"))  # first: a collection hands each exemplar once
        return cap.spans(), points


@pytest.mark.parametrize("captured", ["", "traceparent,content-type"])
def test_an_llm_calls_first_request_is_folded_into_its_span_unless_it_fails(
        server: str, monkeypatch: pytest.MonkeyPatch, captured: str) -> None:
    """Default ``llm_http_spans=failures``, through instrument() and real requests: a call's first request that
    answers < 400 has no span (its duration point's exemplar is the chat span); a first request that answers >= 400
    or fails without an answer gets exactly the span ``all`` gives it (name, kind, status, attributes, exception
    event), under its chat span, timed from the request's own start; every later request of a call, and every
    request outside one, has its span as before. The points are the same in both modes. With request headers
    captured, a span made after the fact records them as they were before the propagation headers went in."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", captured)
    refused = f"http://127.0.0.1:{_closed_port()}/x"
    spans_f, points_f = _llm_requests(server, refused, "failures", monkeypatch)
    spans_a, points_a = _llm_requests(server, refused, "all", monkeypatch)

    def http_views(spans: list[Any]) -> list[tuple[Any, ...]]:
        chats = {s.context.span_id: s.name for s in spans if s.name.startswith("chat ")}
        return sorted(((chats.get(s.parent.span_id if s.parent else 0, "-"), s.name, s.kind.name,
                        s.status.status_code.name, s.status.description, tuple(sorted(s.attributes.items())),
                        _view(s)[5]) for s in spans if s.name in ("GET", "POST")), key=repr)

    folded = http_views(spans_f)
    every = http_views(spans_a)
    assert [v[0] for v in every] == ["-", "chat m-404", "chat m-ok", "chat m-refused", "chat m-two", "chat m-two"]
    # Folded: m-ok's and m-two's first (ok) request; kept: the 404, the refused one, m-two's second, the outside one.
    assert folded == [v for v in every if not (v[0] == "chat m-ok" or (v[0] == "chat m-two" and "/ok" in str(v)))]
    assert [v[0] for v in folded] == ["-", "chat m-404", "chat m-refused", "chat m-two"]
    if captured:  # the precondition of the comparison above: headers were captured, traceparent was not
        assert all(dict(v[5]).get("http.request.header.content_type") for v in folded if v[1] == "POST")
        assert not any("http.request.header.traceparent" in dict(v[5]) for v in folded)

    def counts(points: list[Any]) -> dict[Any, int]:
        return {frozenset(a.items()): p.count for a, p in points}

    assert counts(points_f) == counts(points_a) and sum(counts(points_f).values()) == 6
    chat_ids = {s.context.span_id for s in spans_f if s.name.startswith("chat ")}
    http_ids = {s.context.span_id for s in spans_f if s.name in ("GET", "POST")}
    linked = {e.span_id for _, p in points_f for e in p.exemplars}
    assert linked and linked <= chat_ids | http_ids
    by_id = {s.context.span_id: s for s in spans_f}
    for s in spans_f:
        if s.name in ("GET", "POST") and s.parent is not None:  # made after the fact or not: inside its chat span
            chat = by_id[s.parent.span_id]
            assert chat.start_time <= s.start_time <= s.end_time <= chat.end_time


def test_a_folded_requests_point_links_its_chat_span(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The duration point of a request folded into its LLM call carries the chat span as its exemplar."""
    from agentpress_otel import llm_call
    from agentpress_otel.testing import capture

    monkeypatch.delenv("AGENTPRESS_OTEL_LLM_HTTP_SPANS", raising=False)
    with capture(integrations=["httpx"]) as cap:
        with llm_call(model="m", provider="openai") as call:
            httpx.get(f"{server}/ok")
        (point,) = [p for _, p in cap.points("http.client.request.duration")]
        spans = cap.spans()
    assert [s.name for s in spans] == ["chat m"]
    assert [e.span_id for e in point.exemplars] == [call.span.get_span_context().span_id]


def test_a_cancelled_folded_request_records_nothing_and_leaves_the_context_clean(
        server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first request of an LLM call, cancelled by the client: no HTTP span, no duration point (as an unfolded
    cancelled request records none), the chat span is still current afterwards and ends once."""
    from opentelemetry import trace

    from agentpress_otel import llm_call
    from agentpress_otel.testing import capture

    monkeypatch.delenv("AGENTPRESS_OTEL_LLM_HTTP_SPANS", raising=False)

    async def go() -> None:
        async with httpx.AsyncClient() as c, llm_call(model="m", provider="openai") as call:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(c.get(f"{server}/slow"), 0.2)
            assert trace.get_current_span() is call.span

    with capture(integrations=["httpx"]) as cap:
        asyncio.run(go())
        spans = cap.spans()
        points = list(cap.points("http.client.request.duration"))
    assert [s.name for s in spans] == ["chat m"] and not points


def test_a_folded_failure_keeps_its_own_start_and_the_chat_span_names_the_server(
        server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A call's first request that answers 503 after 1 s: its span, made when it ends, starts when the request
    started (it lasts the second). A call made without server_address gets the host and port it talked to on its
    chat span (the service graph's edge to the provider) and its duration point; a call that names its server
    keeps it."""
    from agentpress_otel import llm_call
    from agentpress_otel.testing import capture

    monkeypatch.delenv("AGENTPRESS_OTEL_LLM_HTTP_SPANS", raising=False)
    port = int(server.rsplit(":", 1)[1])
    with capture(integrations=["httpx"]) as cap:
        with llm_call(model="m", provider="openai"):
            httpx.get(f"{server}/slowbad")
        with llm_call(model="named", provider="openai", server_address="127.0.0.1", server_port=1):
            httpx.get(f"{server}/ok")
        durations = {a["gen_ai.request.model"]: a for a, _ in cap.points("gen_ai.client.operation.duration")}
        spans = {s.name: s for s in cap.spans()}
    http = spans["GET"]
    assert http.attributes["http.response.status_code"] == 503 and http.attributes["error.type"] == "503"
    assert (http.end_time - http.start_time) / 1e9 >= 0.95, "the span made after the fact starts at the request"
    assert spans["chat m"].attributes["server.address"] == "127.0.0.1"
    assert spans["chat m"].attributes["server.port"] == port
    assert spans["chat named"].attributes["server.port"] == 1
    # The call's metrics name the server too, as the conventions recommend and as for a call given one.
    assert (durations["m"]["server.address"], durations["m"]["server.port"]) == ("127.0.0.1", port)
    assert durations["named"]["server.port"] == 1


def test_requests_after_the_call_or_to_another_host_keep_their_spans(
        server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the call's own request is folded: a task the call started (it inherits the call's context) that sends
    a request after the call ended gets its span, and so does a first request to a host other than the one the
    call names."""
    from agentpress_otel import llm_call
    from agentpress_otel.testing import capture

    monkeypatch.delenv("AGENTPRESS_OTEL_LLM_HTTP_SPANS", raising=False)

    async def go() -> None:
        async with httpx.AsyncClient() as c:
            go_on = asyncio.Event()

            async def later() -> None:
                await go_on.wait()
                await c.get(f"{server}/ok?later=1")

            async with llm_call(model="m", provider="openai"):
                task = asyncio.create_task(later())
            go_on.set()
            await task
            async with llm_call(model="elsewhere", provider="openai", server_address="api.example.com"):
                await c.get(f"{server}/ok?other=1")

    with capture(integrations=["httpx"]) as cap:
        asyncio.run(go())
        spans = cap.spans()
    chats = {s.context.span_id: s.name for s in spans if s.name.startswith("chat ")}
    http = sorted((s.attributes["url.full"].split("?")[1], chats[s.parent.span_id]) for s in spans
                  if s.name == "GET" and s.parent is not None)
    assert http == [("later=1", "chat m"), ("other=1", "chat elsewhere")]
