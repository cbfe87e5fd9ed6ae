"""Dramatiq middleware with a real StubBroker + Worker: propagation, consumer spans, queue metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq import Worker
from dramatiq.brokers.stub import StubBroker
from opentelemetry.trace import SpanKind, StatusCode

from agentpress_otel._context import current_ids, thread_context
from agentpress_otel.genai import _state
from agentpress_otel.integrations import dramatiq as ap_dramatiq
from agentpress_otel.testing import Kit, make_kit

pytestmark = pytest.mark.integration


@pytest.fixture
def kit() -> Iterator[Kit]:
    k = make_kit()
    _state.configure(k)
    ap_dramatiq.instrument(k)
    yield k
    ap_dramatiq.uninstrument()
    _state.unconfigure()
    k.shutdown()


def _run(broker: StubBroker, queue: str = "default") -> None:
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        broker.join(queue, timeout=20_000)
        worker.join()
    finally:
        worker.stop()


def _points(kit: Kit, name: str) -> list[tuple[dict[str, Any], Any]]:
    return list(kit.points(name))


def test_ids_and_trace_cross_the_queue(kit: Kit) -> None:
    """Ids and the trace cross the Dramatiq queue from producer to consumer, and enqueues are counted."""
    broker = StubBroker()
    broker.emit_after("process_boot")
    seen: list[dict[str, str]] = []

    @dramatiq.actor(broker=broker)
    def work() -> None:
        seen.append(current_ids())

    tracer = kit.tracer_provider.get_tracer("t")
    with thread_context(thread_id="t1", agent_run_id="r1", user_id="u1"), tracer.start_as_current_span("http"):
        work.send()
    _run(broker)
    assert seen == [{"thread_id": "t1", "agent_run_id": "r1", "user_id": "u1"}]
    http = kit.spans("http")[0]
    proc = kit.spans("process default")[0]
    send = kit.spans("send default")[0]
    assert proc.kind == SpanKind.CONSUMER and send.kind == SpanKind.PRODUCER
    assert proc.context.trace_id == http.context.trace_id
    assert proc.parent is not None and proc.parent.span_id == send.context.span_id
    assert (proc.attributes or {})["agentpress.agent_run.id"] == "r1"
    assert kit.metric_sum("agentpress.queue.messages.enqueued", actor="work", queue="default") == 1
    assert kit.metric_sum("agentpress.queue.messages.processed", actor="work", status="ok") == 1
    assert kit.metric_count("agentpress.queue.wait.duration", actor="work") == 1
    # The convention's metric carries the convention's attributes only (messaging.system and
    # messaging.operation.name are required; no un-namespaced queue/actor labels).
    (proc_attrs,) = [a for a, _ in _points(kit, "messaging.process.duration")]
    assert proc_attrs == {"messaging.system": "dramatiq", "messaging.operation.name": "process",
                          "messaging.destination.name": "default"}
    assert (proc.attributes or {})["messaging.operation.name"] == "process"
    assert (send.attributes or {})["messaging.operation.name"] == "send"
    assert (proc.attributes or {})["agentpress.dramatiq.actor.name"] == "work"
    assert "messaging.message.delivery_count" not in (proc.attributes or {})  # not a registry name
    assert (proc.attributes or {})["agentpress.dramatiq.delivery_count"] == 1
    for name in ("agentpress.queue.messages.enqueued", "agentpress.queue.wait.duration"):
        for attrs, _ in _points(kit, name):
            assert set(attrs) <= {"queue", "actor", "status", "error.type"}
    assert current_ids() == {}


def test_failures_and_retries_are_counted(kit: Kit) -> None:
    """Failed runs and retries are error spans in the original trace and are counted."""
    broker = StubBroker()  # default middleware includes Retries
    broker.emit_after("process_boot")
    calls = {"n": 0}

    @dramatiq.actor(broker=broker, max_retries=2, min_backoff=1, max_backoff=5)
    def flaky() -> None:
        calls["n"] += 1
        raise KeyError("boom")

    flaky.send()
    worker = Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        broker.join("default", timeout=20_000, fail_fast=False)
        worker.join()
    finally:
        worker.stop()
    assert calls["n"] == 3
    procs = kit.spans("process default")
    assert len(procs) == 3
    assert all(p.status.status_code == StatusCode.ERROR for p in procs)
    assert all((p.attributes or {})["error.type"] == "KeyError" for p in procs)
    assert len({p.context.trace_id for p in procs}) == 1  # retries stay in the original trace
    assert kit.metric_sum("agentpress.queue.messages.failed", actor="flaky", error__type="KeyError") == 3
    assert kit.metric_sum("agentpress.queue.messages.retried", actor="flaky") == 2
    assert kit.metric_sum("agentpress.queue.messages.processed", actor="flaky", status="failed") == 3


def test_existing_global_broker_and_uninstrument(kit: Kit) -> None:
    """An existing global broker gets our middleware once, and uninstrument removes it."""
    ap_dramatiq.uninstrument()
    broker = StubBroker()
    dramatiq.set_broker(broker)
    assert not any(isinstance(m, ap_dramatiq.OtelMiddleware) for m in broker.middleware)
    ap_dramatiq.instrument(kit)
    ap_dramatiq.instrument(kit)  # idempotent
    assert sum(isinstance(m, ap_dramatiq.OtelMiddleware) for m in broker.middleware) == 1
    ap_dramatiq.uninstrument()
    assert not any(isinstance(m, ap_dramatiq.OtelMiddleware) for m in broker.middleware)
    assert not any(isinstance(m, ap_dramatiq.OtelMiddleware) for m in StubBroker().middleware)
    ap_dramatiq.instrument(kit)


def test_process_boot_hook(kit: Kit) -> None:
    """The process-boot hook is called with the broker."""
    called: list[Any] = []
    ap_dramatiq.set_process_boot_hook(called.append)
    try:
        broker = StubBroker()
        broker.emit_after("process_boot")
        assert called == [broker]
    finally:
        ap_dramatiq.set_process_boot_hook(None)


def test_actor_kwargs_ids_reach_the_consumer_span() -> None:
    """AgentPress's actor gets agent_run_id/thread_id as kwargs, sent from code with no thread context."""
    import dramatiq
    from dramatiq.brokers.stub import StubBroker

    from agentpress_otel.testing import capture

    with capture(integrations=["dramatiq"]) as cap:
        broker = StubBroker()
        broker.emit_after("process_boot")
        dramatiq.set_broker(broker)
        from agentpress_otel.integrations import dramatiq as integ

        integ.instrument(cap.telemetry)

        @dramatiq.actor(broker=broker, actor_name="run_agent_background_kw")
        def run_agent_background(agent_run_id: str, thread_id: str, instance_id: str) -> None:
            return None

        run_agent_background.send(agent_run_id="run-77", thread_id="th-77", instance_id="single")
        worker = dramatiq.Worker(broker, worker_timeout=100)
        worker.start()
        try:
            broker.join(run_agent_background.queue_name)
            worker.join()
        finally:
            worker.stop()
        (consumer,) = [s for s in cap.spans() if s.name == "process default"]
        assert consumer.attributes["agentpress.agent_run.id"] == "run-77"
        assert consumer.attributes["agentpress.thread.id"] == "th-77"


def test_failed_enqueue_ends_producer_span_with_error_and_is_not_counted(kit: Kit) -> None:
    """A failed enqueue ends its producer span as an error and is not counted as enqueued."""
    broker = StubBroker()
    broker.emit_after("process_boot")

    @dramatiq.actor(broker=broker)
    def work(x: Any) -> None:
        return None

    for _ in range(3):
        with pytest.raises(TypeError):
            work.send(object())  # not JSON-serialisable: the broker raises between the two hooks
    work.send(1)
    mw = next(m for m in broker.middleware if isinstance(m, ap_dramatiq.OtelMiddleware))
    assert mw._producing == {}
    sends = kit.spans("send default")
    assert len(sends) == 4 and all(s.end_time is not None for s in sends)
    failed = [s for s in sends if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 3 and all((s.attributes or {})["error.type"] == "TypeError" for s in failed)
    assert kit.metric_sum("agentpress.queue.messages.enqueued", actor="work") == 1
    ap_dramatiq.uninstrument()
    assert "enqueue" not in broker.__dict__  # the instance wrapper is removed again
    ap_dramatiq.instrument(kit)


def test_producer_map_is_bounded(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enqueues that never reach after_enqueue (bypassing the wrapped enqueue) cannot pile up."""
    monkeypatch.setattr(ap_dramatiq, "MAX_PRODUCING", 2)
    broker = StubBroker()

    @dramatiq.actor(broker=broker)
    def work() -> None:
        return None

    mw = next(m for m in broker.middleware if isinstance(m, ap_dramatiq.OtelMiddleware))
    for _ in range(5):
        mw.before_enqueue(broker, work.message(), None)
    assert len(mw._producing) == 2
    stale = [s for s in kit.spans("send default") if (s.attributes or {}).get("error.type") == "enqueue_incomplete"]
    assert len(stale) == 3
