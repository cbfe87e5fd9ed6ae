"""Foundation, end to end: real uvicorn, real httpx, real OTLP receivers on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

import agentpress_otel
from agentpress_otel._harness._proc import wait_until
from agentpress_otel._harness.asgi_server import UvicornThread
from harness.otlp_sink import OTLPSink, attrs_to_dict

SERVER, CLIENT = 2, 3  # OTLP SpanKind enum values


@pytest.fixture
def sink() -> Iterator[OTLPSink]:
    with OTLPSink() as s:
        yield s


def _downstream() -> tuple[FastAPI, list[dict[str, str]]]:
    seen: list[dict[str, str]] = []
    app = FastAPI()

    @app.post("/billing/check")
    async def check(request: Request) -> dict[str, bool]:
        seen.append(dict(request.headers))
        return {"ok": True}

    return app, seen


def _agent_api(downstream_url: str) -> FastAPI:
    app = FastAPI()

    @app.post("/api/thread/{thread_id}/agent/start")
    async def start(thread_id: str) -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{downstream_url}/billing/check")
            r.raise_for_status()
        return {"thread_id": thread_id, "status": "started"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_request_makes_server_and_client_spans_in_one_trace(sink: OTLPSink, protocol: str) -> None:
    """A request makes server and client spans in one trace with a request id; /health is not traced."""
    down_app, seen = _downstream()
    with UvicornThread(down_app) as down:
        app = _agent_api(down.url)
        endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
        tel = agentpress_otel.instrument(
            app,
            service_name="agentpress-api",
            service_version="1.2.3",
            environment="test",
            endpoint=endpoint,
            protocol=protocol,
        )
        with UvicornThread(app) as api:
            r = httpx.post(f"{api.url}/api/thread/th-42/agent/start", headers={"X-Request-ID": "req-1"}, timeout=10)
            assert r.status_code == 200
            assert r.headers["x-request-id"] == "req-1"
            r2 = httpx.post(f"{api.url}/api/thread/th-43/agent/start", timeout=10)
            generated = r2.headers["x-request-id"]
            assert len(generated) == 32
            assert httpx.get(f"{api.url}/health", timeout=10).status_code == 200
        assert tel.force_flush(timeout_s=10)

    spans = sink.spans()
    # /health was requested (200 above) but is excluded: no SERVER span for it, under any name.
    health = [s for s in spans if s.kind == SERVER and attrs_to_dict(s.attributes).get("url.path") == "/health"]
    assert health == []
    # No per-message ASGI spans ("... http send" / "... http receive", asgi.event.type) by default.
    assert not [s.name for s in spans if s.name.endswith((" http send", " http receive"))
                or "asgi.event.type" in attrs_to_dict(s.attributes)]  # fmt: skip
    # The downstream app is not instrument()ed: FastAPI's native telemetry makes its server span.
    servers = [s for s in spans if s.kind == SERVER and s.name.startswith("POST /api")]
    assert {s.name for s in servers} == {"POST /api/thread/{thread_id}/agent/start"}
    assert len(servers) == 2
    first = next(s for s in servers if attrs_to_dict(s.attributes)["agentpress.request.id"] == "req-1")
    attrs = attrs_to_dict(first.attributes)
    assert attrs["http.route"] == "/api/thread/{thread_id}/agent/start"
    assert attrs["http.response.status_code"] == 200
    assert attrs["agentpress.thread.id"] == "th-42"
    # The test's own httpx call is instrumented too (it is the trace root); the API's call is the server's child.
    clients = [s for s in spans if s.kind == CLIENT and s.parent_span_id == first.span_id]
    assert len(clients) == 1
    assert clients[0].trace_id == first.trace_id
    downstream = [s for s in spans if s.kind == SERVER and s.parent_span_id == clients[0].span_id]
    assert len(downstream) == 1, "the downstream service's span must continue our trace"
    # The downstream service saw our trace in W3C traceparent, and the baggage with the ids.
    tp = seen[0]["traceparent"]
    assert tp.split("-")[1] == first.trace_id.hex()
    assert "thread_id" in seen[0].get("baggage", "") or "agentpress" in seen[0].get("baggage", "")
    resource = sink.span_resources()[0]
    assert resource["service.name"] == "agentpress-api"
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "test"
    assert resource["service.instance.id"]
    assert resource["host.name"] == socket.gethostname()
    assert resource["process.pid"] == os.getpid()
    tel.shutdown()


def test_instrument_twice_returns_same_handle_and_warns_once(sink: OTLPSink) -> None:
    """Calling instrument() twice returns the same handle and warns once."""
    tel = agentpress_otel.instrument(endpoint=sink.grpc_endpoint)
    with pytest.warns(RuntimeWarning, match="already called"):
        again = agentpress_otel.instrument(endpoint=sink.grpc_endpoint)
    assert again is tel
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert agentpress_otel.instrument() is tel  # warned once only


def _run(code: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True, timeout=timeout
    )


def test_existing_tracer_provider_is_reused(sink: OTLPSink) -> None:
    """An app's existing tracer provider is reused, not replaced."""
    code = """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import agentpress_otel
        mine = InMemorySpanExporter()
        tp = TracerProvider()
        tp.add_span_processor(SimpleSpanProcessor(mine))
        trace.set_tracer_provider(tp)
        tel = agentpress_otel.instrument(service_name="existing")
        assert tel.tracer_provider is tp
        assert trace.get_tracer_provider() is tp
        with trace.get_tracer("t").start_as_current_span("work"):
            pass
        assert [s.name for s in mine.get_finished_spans()] == ["work"]
        assert tel.force_flush(5)
        print("OK")
    """
    res = _run(code, {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint})
    assert res.returncode == 0, res.stderr
    assert "OK" in res.stdout
    assert [s.name for s in sink.spans()] == ["work"]  # our exporter was added next to the app's


def test_sdk_disabled_is_a_noop(sink: OTLPSink) -> None:
    """With OTEL_SDK_DISABLED, the app works and nothing is exported."""
    code = """
        import httpx
        from fastapi import FastAPI
        from opentelemetry import trace
        import agentpress_otel
        from agentpress_otel._harness.asgi_server import UvicornThread
        app = FastAPI()
        @app.get("/x")
        async def x() -> dict:
            return {"ok": True}
        tel = agentpress_otel.instrument(app)
        assert tel.disabled and tel.integrations == []
        assert not trace.get_current_span().get_span_context().is_valid
        with UvicornThread(app) as srv:
            assert httpx.get(srv.url + "/x").json() == {"ok": True}
        tel.force_flush(2); tel.shutdown(2)
        print("OK")
    """
    res = _run(code, {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint})
    assert res.returncode == 0, res.stderr
    time.sleep(0.5)
    assert sink.spans() == [] and sink.metric_names() == set()


def test_forked_child_exports_its_own_spans(sink: OTLPSink) -> None:
    """A forked child exports its own spans under its own instance id and pid."""
    code = """
        import os, sys
        from opentelemetry import trace
        import agentpress_otel
        tel = agentpress_otel.instrument(service_name="forky", protocol="http/protobuf", integrations=[])
        tracer = trace.get_tracer("t")
        with tracer.start_as_current_span("parent-before-fork"):
            pass
        pid = os.fork()
        if pid == 0:
            with tracer.start_as_current_span("child-span"):
                pass
            ok = tel.force_flush(10)
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        with tracer.start_as_current_span("parent-after-fork"):
            pass
        assert tel.force_flush(10)
        print("OK")
    """
    res = _run(code, {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint})
    assert res.returncode == 0, res.stderr
    wait_until(lambda: len(sink.spans()) >= 3, timeout=10, what="3 spans")
    by_name: dict[str, dict[str, object]] = {}
    with sink.lock:
        reqs = list(sink.received.traces)
    for req in reqs:
        for rs in req.resource_spans:
            res_attrs = attrs_to_dict(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    by_name[s.name] = res_attrs
    assert set(by_name) == {"parent-before-fork", "child-span", "parent-after-fork"}
    child, parent = by_name["child-span"], by_name["parent-after-fork"]
    assert child["service.instance.id"] != parent["service.instance.id"]
    assert child["process.pid"] != parent["process.pid"]


class _BlackHole:
    """Accepts TCP connections and never answers (the nastiest dead Collector)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(100)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("failure", ["refused", "blackhole"])
@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_dead_endpoint_never_hurts_requests_and_shutdown_keeps_its_deadline(protocol: str, failure: str) -> None:
    """A refused or black-holed endpoint never fails requests, and shutdown keeps its deadline."""
    hole = _BlackHole()
    if failure == "refused":
        port = hole.port
        hole.close()
    else:
        port = hole.port
    app = FastAPI()

    @app.get("/api/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    tel = agentpress_otel.instrument(
        app, endpoint=f"http://127.0.0.1:{port}", protocol=protocol, max_queue_size=256, integrations=["fastapi"]
    )
    try:
        with UvicornThread(app) as srv, httpx.Client() as client:
            for _ in range(300):
                assert client.get(f"{srv.url}/api/ping", timeout=5).status_code == 200
        start = time.monotonic()
        tel.shutdown(timeout_s=2.0)
        elapsed = time.monotonic() - start
        assert elapsed < 2.6, f"shutdown took {elapsed:.2f}s"
    finally:
        if failure == "blackhole":
            hole.close()


def test_event_source_trace_context_from_query_string(sink: OTLPSink) -> None:
    """An EventSource request's trace context and run id are taken from its query string."""
    app = FastAPI()

    @app.get("/api/agent-run/{agent_run_id}/stream")
    async def stream(agent_run_id: str) -> dict[str, str]:
        return {"run": agent_run_id}

    tel = agentpress_otel.instrument(app, endpoint=sink.grpc_endpoint, integrations=["fastapi"])
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with UvicornThread(app) as srv:
        url = f"{srv.url}/api/agent-run/run-7/stream?token=abc&traceparent=00-{trace_id}-00f067aa0ba902b7-01"
        assert httpx.get(url, timeout=10).status_code == 200
    assert tel.force_flush(timeout_s=10)
    (span,) = [s for s in sink.spans() if s.kind == SERVER]
    assert span.trace_id.hex() == trace_id
    assert attrs_to_dict(span.attributes)["agentpress.agent_run.id"] == "run-7"


def test_http_server_duration_metric_has_the_conventions_attributes(sink: OTLPSink) -> None:
    """http.server.request.duration (http-metrics.md): url.scheme is required, network.protocol.version
    recommended, error.type conditionally required for a 5xx answer and for an unhandled exception."""
    app = FastAPI()

    @app.get("/busy")
    async def busy() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": "overloaded"}, status_code=503)

    @app.get("/boom")
    async def boom() -> dict[str, str]:
        raise KeyError("crashed")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    tel = agentpress_otel.instrument(app, service_name="http-metric", endpoint=sink.grpc_endpoint)
    with UvicornThread(app) as api:
        assert httpx.get(f"{api.url}/ok", timeout=10).status_code == 200
        assert httpx.get(f"{api.url}/busy", timeout=10).status_code == 503
        assert httpx.get(f"{api.url}/boom", timeout=10).status_code == 500
    assert tel.force_flush(timeout_s=10)
    points = {
        attrs_to_dict(p.attributes).get("http.route"): attrs_to_dict(p.attributes)
        for m in sink.iter_metrics() if m.name == "http.server.request.duration"
        for p in m.histogram.data_points
    }
    assert set(points) >= {"/ok", "/busy", "/boom"}, points
    for route, attrs in points.items():
        assert attrs["url.scheme"] == "http", route
        assert attrs["network.protocol.version"] == "1.1", route
    assert "error.type" not in points["/ok"]
    assert points["/busy"]["error.type"] == "503"  # the status code, as the convention says for 5xx
    assert points["/boom"]["error.type"] == "KeyError"  # the exception's (qualified) class name
    assert points["/boom"]["http.response.status_code"] == 500
    tel.shutdown()
