"""Real redis-server + real uvicorn: Redis client spans land in the request's trace; AgentPress
patterns (response lists, pub/sub); a real Dramatiq worker on the Redis broker continues the trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from agentpress_otel._harness.asgi_server import UvicornThread
from agentpress_otel.testing import Capture, capture
from conftest import need
from harness.redis import RedisServer, start_redis

fastapi = pytest.importorskip("fastapi")
redis = pytest.importorskip("redis")
aioredis = pytest.importorskip("redis.asyncio")
pytest.importorskip("uvicorn")
from fastapi import FastAPI  # noqa: E402 - after the skip guards


@pytest.fixture(scope="module")
def srv() -> Iterator[RedisServer]:
    server = need(start_redis)
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn server on a free loopback port (in a thread)."""
    with UvicornThread(app) as server:
        yield server.url


def _server_span(spans: list[ReadableSpan], path_part: str) -> ReadableSpan:
    found = [s for s in spans if s.kind is SpanKind.SERVER and path_part in s.name]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def _descends_from(span: ReadableSpan, ancestor: ReadableSpan, spans: list[ReadableSpan]) -> bool:
    by_id = {s.context.span_id: s for s in spans}
    cur: ReadableSpan | None = span
    while cur is not None and cur.parent is not None:
        if cur.parent.span_id == ancestor.context.span_id:
            return True
        cur = by_id.get(cur.parent.span_id)
    return False


def _redis_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get("db.system") == "redis" or
            (s.attributes or {}).get("db.system.name") == "redis"]  # fmt: skip


def _agentpress_app(url: str) -> Any:
    """The AgentPress shapes: response list + pub/sub notify (worker side), LRANGE + subscribe (stream side)."""
    app = FastAPI()

    @app.post("/api/agent-run/{agent_run_id}/respond")
    async def respond(agent_run_id: str) -> dict[str, int]:
        r = aioredis.Redis.from_url(url)
        try:
            key = f"agent_run:{agent_run_id}:responses"
            await r.rpush(key, json.dumps({"type": "assistant", "content": "PRIVATE-LLM-OUTPUT"}))
            await r.publish(f"agent_run:{agent_run_id}:new_response", "new")
            await r.expire(key, 24 * 3600)
            items = await r.lrange(key, 0, -1)
            await r.set(f"active_run:inst-1:{agent_run_id}", "running", ex=60)
        finally:
            await r.aclose()
        return {"n": len(items)}

    @app.get("/api/agent-run/{agent_run_id}/stream")
    async def stream(agent_run_id: str) -> dict[str, Any]:
        r = aioredis.Redis.from_url(url)
        ps = r.pubsub()
        try:
            await ps.subscribe(f"agent_run:{agent_run_id}:new_response")
            existing = await r.lrange(f"agent_run:{agent_run_id}:responses", 0, -1)
            msg = None
            deadline = time.monotonic() + 10
            while msg is None and time.monotonic() < deadline:
                msg = await ps.get_message(ignore_subscribe_messages=True, timeout=0.5)
        finally:
            await ps.aclose()
            await r.aclose()
        return {"existing": len(existing), "notified": None if msg is None else msg["data"].decode()}

    @app.get("/api/sync-status/{agent_run_id}")
    def sync_status(agent_run_id: str) -> dict[str, Any]:
        # Sync endpoint: runs in Starlette's threadpool; the context must follow it there.
        r = redis.Redis.from_url(url)
        try:
            return {"status": (r.get(f"active_run:inst-1:{agent_run_id}") or b"").decode()}
        finally:
            r.close()

    return app


def test_redis_commands_are_client_spans_in_the_request_trace(srv: RedisServer) -> None:
    """Redis commands are client spans in the request's trace, and uvicorn's loop is probed."""
    app = _agentpress_app(srv.url)
    run_id = uuid.uuid4().hex[:8]
    sub = redis.Redis.from_url(srv.url).pubsub()
    sub.subscribe(f"agent_run:{run_id}:new_response")
    with capture(app=app, disabled_integrations=["httpx"]) as cap:
        with serve(app) as base:
            assert "redis" in cap.telemetry.integrations
            resp = httpx.post(f"{base}/api/agent-run/{run_id}/respond", timeout=10)
            assert resp.status_code == 200
            assert resp.json() == {"n": 1}
            status = httpx.get(f"{base}/api/sync-status/{run_id}", timeout=10).json()
            assert status == {"status": "running"}
            time.sleep(0.3)
            # uvicorn's loop (on its own thread here) was found by the run_forever patch.
            lag = cap.metrics()["agentpress.asyncio.loop_lag"]
            assert any(p.attributes.get("loop") == "background" and p.count > 0 for p in lag)
        # The client can have its response before the server span ends; uvicorn's shutdown waits for
        # in-flight requests, so every server span is finished here.
        spans = cap.spans()

    # The subscriber got the notification published inside the request.
    got = None
    deadline = time.monotonic() + 5
    while got is None and time.monotonic() < deadline:
        got = sub.get_message(ignore_subscribe_messages=True, timeout=0.5)
    sub.close()
    assert got is not None
    assert got["data"] == b"new"

    server = _server_span(spans, "respond")
    rspans = [s for s in _redis_spans(spans) if s.context.trace_id == server.context.trace_id]
    names = [s.name for s in rspans]
    assert names == ["RPUSH", "PUBLISH", "EXPIRE", "LRANGE", "SET"], names
    for s in rspans:
        assert s.kind is SpanKind.CLIENT
        assert _descends_from(s, server, spans)
        attrs = dict(s.attributes or {})
        assert attrs.get("net.peer.port", attrs.get("server.port")) == srv.port
        stmt = str(attrs.get("db.statement", attrs.get("db.query.text", "")))
        # Values are sanitised upstream: the streamed LLM output never becomes a span attribute.
        assert "PRIVATE-LLM-OUTPUT" not in stmt
        assert stmt.startswith(s.name)

    sync_server = _server_span(spans, "sync-status")
    (get_span,) = [s for s in _redis_spans(spans) if s.name == "GET"]
    assert get_span.context.trace_id == sync_server.context.trace_id
    assert _descends_from(get_span, sync_server, spans)

    # After shutdown, redis-py is unpatched again.
    assert not hasattr(redis.Redis.execute_command, "__wrapped__")


def test_stream_endpoint_sees_list_and_pubsub(srv: RedisServer) -> None:
    """The SSE side of AgentPress: LRANGE the backlog, then wait on pub/sub for new responses."""
    app = _agentpress_app(srv.url)
    run_id = uuid.uuid4().hex[:8]
    seed = redis.Redis.from_url(srv.url)
    seed.rpush(f"agent_run:{run_id}:responses", "a", "b")
    with capture(app=app, disabled_integrations=["httpx"]) as cap:
        with serve(app) as base:
            out: dict[str, Any] = {}

            def call() -> None:
                out.update(httpx.get(f"{base}/api/agent-run/{run_id}/stream", timeout=15).json())

            t = threading.Thread(target=call)
            t.start()
            # Publish until the subscriber is listening (PUBLISH returns the receiver count).
            deadline = time.monotonic() + 10
            while seed.publish(f"agent_run:{run_id}:new_response", "new") == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            t.join(timeout=15)
        spans = cap.spans()  # after uvicorn's shutdown: the server span has ended
    seed.close()
    assert out == {"existing": 2, "notified": "new"}
    server = _server_span(spans, "stream")
    lr = [s for s in _redis_spans(spans) if s.name == "LRANGE" and s.context.trace_id == server.context.trace_id]
    assert len(lr) == 1
    assert _descends_from(lr[0], server, spans)
    # The publisher outside any request (several PUBLISH calls above) makes no spans at all: Redis commands
    # are traced only inside a trace, never as one-span root traces of their own.
    assert [s.name for s in _redis_spans(spans) if s.name == "PUBLISH"] == []
    assert all(s.parent is not None for s in _redis_spans(spans))


def test_idle_dramatiq_worker_exports_no_redis_spans(srv: RedisServer) -> None:
    """An idle worker polls the Redis broker (EVALSHA/SCRIPT LOAD) several times a second: none of that
    may become a trace, while Redis calls inside a trace still do."""
    dramatiq = pytest.importorskip("dramatiq")
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AsyncIO

    queue = f"q{uuid.uuid4().hex[:6]}"
    with capture(disabled_integrations=["httpx"]) as cap:
        assert "redis" in cap.telemetry.integrations
        broker = RedisBroker(url=srv.url, namespace=f"apotel-{queue}", middleware=[AsyncIO()])  # type: ignore[no-untyped-call]
        dramatiq.actor(lambda: None, broker=broker, queue_name=queue, actor_name=f"idle_{queue}")
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        try:
            time.sleep(3.0)
            idle = cap.spans()
        finally:
            worker.stop(timeout=10_000)
            broker.close()
        r = redis.Redis.from_url(srv.url)
        r.ping()  # outside a trace: no span
        with trace.get_tracer("t").start_as_current_span("request"):
            r.rpush(f"{queue}:k", "v")
            with r.pipeline() as pipe:
                pipe.lrange(f"{queue}:k", 0, -1).expire(f"{queue}:k", 60).execute()
        r.close()
        spans = cap.spans()
    assert idle == [], [s.name for s in idle][:10]
    (root,) = [s for s in spans if s.name == "request"]
    inside = _redis_spans(spans)
    assert [s.name for s in inside] == ["RPUSH", "PIPELINE"]  # the pipeline is one span (database-spans.md)
    assert all(s.context.trace_id == root.context.trace_id and s.parent is not None for s in inside)


def test_app_instrumented_redis_is_left_alone(srv: RedisServer) -> None:
    """Redis the app instrumented itself is left alone, before and after our shutdown."""
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    mine = RedisInstrumentor()
    mine.instrument(skip_dep_check=True)
    try:
        patched = redis.Redis.__dict__["execute_command"]
        with capture(disabled_integrations=["httpx"]) as cap:
            assert "redis" not in cap.telemetry.integrations
            assert redis.Redis.__dict__["execute_command"] is patched  # not re-bound to our provider
        # Our shutdown did not remove the app's instrumentation.
        assert redis.Redis.__dict__["execute_command"] is patched
        assert mine.is_instrumented_by_opentelemetry
    finally:
        mine.uninstrument()
    assert not hasattr(redis.Redis.execute_command, "__wrapped__")


def test_disabled_redis_integration_makes_no_spans(srv: RedisServer) -> None:
    """With the redis integration disabled, Redis commands make no spans."""
    with capture(disabled_integrations=["redis", "httpx"]) as cap:
        r = redis.Redis.from_url(srv.url)
        with trace.get_tracer("t").start_as_current_span("parent"):
            r.rpush("k", "v")
            r.lrange("k", 0, -1)
        r.close()
        assert [s.name for s in cap.spans()] == ["parent"]


# ---------------------------------------------------------------------------------------------
# Dramatiq on the Redis broker
# ---------------------------------------------------------------------------------------------


def _dramatiq_integration() -> ModuleType:
    return importlib.import_module("agentpress_otel.integrations.dramatiq")


def test_dramatiq_worker_on_redis_continues_the_request_trace(srv: RedisServer) -> None:
    """A Dramatiq worker on Redis continues the request's trace."""
    dramatiq = pytest.importorskip("dramatiq")
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AsyncIO

    integ = _dramatiq_integration()
    assert integ.OtelMiddleware is not None
    app = FastAPI()
    done = threading.Event()
    seen: dict[str, Any] = {}
    queue = f"q{uuid.uuid4().hex[:6]}"

    with capture(app=app, disabled_integrations=["httpx"]) as cap:
        assert "dramatiq" in cap.telemetry.integrations
        # AgentPress's broker: Redis, with only the AsyncIO middleware (async actors).
        broker = RedisBroker(url=srv.url, namespace=f"apotel-{queue}", middleware=[AsyncIO()])  # type: ignore[no-untyped-call]
        # The integration wraps Broker.__init__: brokers created after instrument() get its middleware.
        assert any(isinstance(m, integ.OtelMiddleware) for m in broker.middleware)

        async def run_agent_background(agent_run_id: str) -> None:
            ctx = trace.get_current_span().get_span_context()
            seen["trace_id"] = ctx.trace_id
            r = aioredis.Redis.from_url(srv.url)
            try:
                await r.rpush(f"agent_run:{agent_run_id}:responses", "chunk")
            finally:
                await r.aclose()
            done.set()

        actor = dramatiq.actor(run_agent_background, broker=broker, queue_name=queue, actor_name=f"run_{queue}")

        @app.post("/api/thread/{thread_id}/agent/start")
        async def start(thread_id: str) -> dict[str, str]:
            actor.send(agent_run_id=f"run-{thread_id}")
            return {"ok": "queued"}

        with serve(app) as base:
            assert httpx.post(f"{base}/api/thread/t1/agent/start", timeout=10).status_code == 200

        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            assert done.wait(20), "the worker never ran the actor"
            time.sleep(0.3)  # let after_process_message run
        finally:
            worker.stop(timeout=10_000)
            broker.close()
        spans = cap.spans()
        cap_metrics = _queue_points(cap)

    server = _server_span(spans, "agent/start")
    consumers = [s for s in spans if s.kind is SpanKind.CONSUMER]
    producers = [s for s in spans if s.kind is SpanKind.PRODUCER]
    assert consumers, [(s.name, s.kind) for s in spans]
    assert seen["trace_id"] == server.context.trace_id
    for s in consumers + producers:
        assert s.context.trace_id == server.context.trace_id
    # The Redis work inside the actor hangs under the consumer span.
    (rp,) = [s for s in _redis_spans(spans) if s.name == "RPUSH"]
    assert _descends_from(rp, consumers[0], spans)

    # Queue metrics, by queue and actor (names from integrations/dramatiq.py).
    attrs = {"queue": queue, "actor": f"run_{queue}"}
    assert cap_metrics["agentpress.queue.messages.enqueued"] == [(attrs, 1)]
    assert cap_metrics["agentpress.queue.messages.processed"] == [({**attrs, "status": "ok"}, 1)]
    ((wattrs, wait_n),) = cap_metrics["agentpress.queue.wait.duration"]
    assert wattrs == attrs
    assert wait_n == 1
    # The convention's metric has the convention's attributes (messaging-metrics.md), not ours.
    assert [a for a, _ in cap_metrics["messaging.process.duration"]] == [
        {"messaging.system": "dramatiq", "messaging.operation.name": "process", "messaging.destination.name": queue}]
    assert "agentpress.queue.messages.failed" not in cap_metrics


def _queue_points(cap: Capture) -> dict[str, list[tuple[dict[str, Any], float]]]:
    """metric name -> [(attributes, value or histogram count)] for the queue metrics."""
    out: dict[str, list[tuple[dict[str, Any], float]]] = {}
    for name, pts in cap.metrics().items():
        if name.startswith(("agentpress.queue.", "messaging.")):
            out[name] = [(dict(p.attributes or {}), getattr(p, "value", getattr(p, "count", 0))) for p in pts]
    return out


def test_dramatiq_failed_and_retried_messages_are_counted(srv: RedisServer) -> None:
    """Failed and retried Dramatiq messages on Redis are counted with their error type."""
    dramatiq = pytest.importorskip("dramatiq")
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AsyncIO, Retries

    _dramatiq_integration()
    queue = f"q{uuid.uuid4().hex[:6]}"
    calls: list[int] = []
    done = threading.Event()
    with capture(disabled_integrations=["httpx"]) as cap:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=srv.url, namespace=f"apotel-{queue}",
            middleware=[AsyncIO(), Retries(max_retries=1, min_backoff=10, max_backoff=20)],
        )  # fmt: skip

        def flaky() -> None:
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionError("LLM provider hiccup")
            done.set()

        actor = dramatiq.actor(flaky, broker=broker, queue_name=queue, actor_name=f"flaky_{queue}")
        with trace.get_tracer("t").start_as_current_span("api request"):
            actor.send()
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            assert done.wait(20), "the retry never succeeded"
            time.sleep(0.3)
        finally:
            worker.stop(timeout=10_000)
            broker.close()
        pts = _queue_points(cap)
        spans = cap.spans()
    attrs = {"queue": queue, "actor": f"flaky_{queue}"}
    assert len(calls) == 2
    base = [(a, v) for a, v in pts["agentpress.queue.messages.enqueued"] if a == attrs]
    # The first send, plus the worker moving the retry from the delay queue back to the queue.
    assert base == [(attrs, 2)]
    assert sum(v for _, v in pts["agentpress.queue.messages.retried"]) == 1
    assert pts["agentpress.queue.messages.failed"] == [({**attrs, "error.type": "ConnectionError"}, 1)]
    assert pts["agentpress.queue.wait.duration"] == [(attrs, 2)]
    processed = {a["status"]: v for a, v in pts["agentpress.queue.messages.processed"]}
    assert processed == {"failed": 1, "ok": 1}
    # Both attempts are in the trace of the request that sent the message.
    (root,) = [s for s in spans if s.name == "api request"]
    consumers = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert len(consumers) == 2
    assert {s.context.trace_id for s in consumers} == {root.context.trace_id}


def test_dramatiq_queue_labels_are_canonical(srv: RedisServer) -> None:
    """Dramatiq queue labels are canonical (no delay-queue names) and the backlog drains to zero."""
    dramatiq = pytest.importorskip("dramatiq")
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AsyncIO

    _dramatiq_integration()
    queue = f"q{uuid.uuid4().hex[:6]}"
    done = threading.Event()
    with capture(disabled_integrations=["httpx"]) as cap:
        broker = RedisBroker(url=srv.url, namespace=f"apotel-{queue}", middleware=[AsyncIO()])  # type: ignore[no-untyped-call]

        def later() -> None:
            done.set()

        actor = dramatiq.actor(later, broker=broker, queue_name=queue, actor_name=f"later_{queue}")
        with trace.get_tracer("t").start_as_current_span("api request"):
            actor.send_with_options(delay=50)  # a delayed send goes through the delay queue "X.DQ"
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            assert done.wait(20)
            time.sleep(0.3)
        finally:
            worker.stop(timeout=10_000)
            broker.close()
        pts = _queue_points(cap)
        spans = cap.spans()
    (root,) = [s for s in spans if s.name == "api request"]
    (consumer,) = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert consumer.context.trace_id == root.context.trace_id  # the DQ -> queue move keeps the carrier
    queues = {a.get("queue", a.get("messaging.destination.name")) for name, series in pts.items() for a, _ in series}
    assert queues == {queue}, queues
    enq = sum(v for _, v in pts["agentpress.queue.messages.enqueued"])
    done_n = sum(v for _, v in pts["agentpress.queue.messages.processed"])
    assert enq == done_n  # backlog (enqueued - processed) drains to zero


def test_event_loop_probe_runs_on_dramatiq_asyncio_thread(srv: RedisServer) -> None:
    """Dramatiq's AsyncIO middleware runs its own loop thread; the run_forever patch finds it."""
    dramatiq = pytest.importorskip("dramatiq")
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import AsyncIO

    queue = f"q{uuid.uuid4().hex[:6]}"
    done = threading.Event()
    with capture(disabled_integrations=["httpx", "dramatiq"]) as cap:
        broker = RedisBroker(url=srv.url, namespace=f"apotel-{queue}", middleware=[AsyncIO()])  # type: ignore[no-untyped-call]

        async def blocks() -> None:
            time.sleep(0.3)  # noqa: ASYNC251 - a blocking call inside an async actor stalls the worker's loop
            await asyncio.sleep(0.3)
            done.set()

        actor = dramatiq.actor(blocks, broker=broker, queue_name=queue, actor_name=f"blocks_{queue}")
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()
        try:
            time.sleep(0.5)  # let the loop thread start and the probe settle
            actor.send()
            assert done.wait(20)
        finally:
            worker.stop(timeout=10_000)
            broker.close()
        pts = cap.metrics()["agentpress.asyncio.loop_lag"]
    bg = [p for p in pts if p.attributes.get("loop") == "background"]
    assert bg
    worst = max(p.max for p in bg)
    # The 0.3 s block is seen, minus at most one probe period (0.25 s), plus scheduling slack.
    assert 0.3 - 0.25 - 0.01 <= worst <= 0.3 + 0.15, worst


def test_harness_redis_is_loopback_ephemeral_and_stops_cleanly() -> None:
    """The test Redis binds loopback, persists nothing, and stops cleanly."""
    server = need(start_redis)
    try:
        r = redis.Redis.from_url(server.url)
        assert r.config_get("save") == {"save": ""}
        assert r.config_get("appendonly") == {"appendonly": "no"}
        assert r.config_get("bind")["bind"] == "127.0.0.1"
        r.set("k", "v")
        r.close()
        proc = server.process.proc
        assert proc is not None
    finally:
        server.stop()
    assert proc.poll() is not None  # the process is gone
    assert not server.ping()
    assert not list(server.workdir.glob("*.rdb")) and not list(server.workdir.glob("appendonly*"))
