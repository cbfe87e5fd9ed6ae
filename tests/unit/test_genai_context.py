"""thread_context / current_ids / ContextSpanProcessor / inject / extract."""

from __future__ import annotations

import asyncio
import timeit

from agentpress_otel import _context
from agentpress_otel._context import ContextSpanProcessor, current_ids, extract, inject, thread_context
from agentpress_otel.testing import Kit


def test_nesting_merges_and_restores() -> None:
    """Nested thread_context blocks merge their ids and restore the outer ones on exit."""
    assert current_ids() == {}
    with thread_context(project_id="p1", thread_id="t1"):
        with thread_context(agent_run_id="r1", thread_id="t2"):
            assert current_ids() == {"project_id": "p1", "thread_id": "t2", "agent_run_id": "r1"}
        assert current_ids() == {"project_id": "p1", "thread_id": "t1"}
    assert current_ids() == {}


def test_current_ids_returns_copy() -> None:
    """current_ids() returns a copy: changing it does not change the context."""
    with thread_context(user_id="u1"):
        ids = current_ids()
        ids["user_id"] = "evil"
        assert current_ids() == {"user_id": "u1"}


async def test_async_with_tasks_and_to_thread() -> None:
    """Ids set with ``async with`` reach child tasks and to_thread calls, and are gone afterwards."""
    async with thread_context(thread_id="t1", request_id="q1"):
        async def child() -> dict[str, str]:
            await asyncio.sleep(0)
            return current_ids()

        got = await asyncio.gather(asyncio.create_task(child()), asyncio.to_thread(current_ids))
        assert got[0] == got[1] == {"thread_id": "t1", "request_id": "q1"}
    assert current_ids() == {}


def test_processor_sets_attributes(kit: Kit) -> None:
    """ContextSpanProcessor puts the context ids on a span under their attribute names."""
    tracer = kit.tracer_provider.get_tracer("t")
    with thread_context(project_id="p", thread_id="t", agent_run_id="r", user_id="u", request_id="q"), \
            tracer.start_as_current_span("x"):
        pass
    (span,) = kit.spans("x")
    a = span.attributes or {}
    assert a["agentpress.project.id"] == "p"
    assert a["agentpress.thread.id"] == "t"
    assert a["agentpress.agent_run.id"] == "r"
    assert a["user.id"] == "u"
    assert a["agentpress.request.id"] == "q"
    assert a["gen_ai.conversation.id"] == "t"


def test_inject_extract_roundtrip_other_process_shape(kit: Kit) -> None:
    """inject() then extract() in a fresh context carries the trace and the ids, only inside the block."""
    tracer = kit.tracer_provider.get_tracer("t")
    with thread_context(thread_id="t9", agent_run_id="r9"), tracer.start_as_current_span("producer") as sp:
        carrier = inject()
        trace_id = sp.get_span_context().trace_id
    assert "traceparent" in carrier and "agentpress.thread.id=t9" in carrier["baggage"]
    # Simulate the other process: no ids in our contextvar.
    assert current_ids() == {}
    with extract(carrier) as ids:
        assert ids == {"thread_id": "t9", "agent_run_id": "r9"}
        assert current_ids() == ids
        with tracer.start_as_current_span("consumer"):
            pass
    assert current_ids() == {}
    (c,) = kit.spans("consumer")
    assert c.context.trace_id == trace_id
    assert (c.attributes or {})["agentpress.agent_run.id"] == "r9"


def test_baggage_only_ids_are_honoured(kit: Kit) -> None:
    """Ids present only in OTel baggage are returned by current_ids() and put on spans."""
    from opentelemetry import baggage
    from opentelemetry import context as otel_context

    ctx = baggage.set_baggage("agentpress.thread.id", "tb")
    tok = otel_context.attach(ctx)
    try:
        assert current_ids() == {"thread_id": "tb"}
        with kit.tracer_provider.get_tracer("t").start_as_current_span("b"):
            pass
    finally:
        otel_context.detach(tok)
    assert (kit.spans("b")[0].attributes or {})["agentpress.thread.id"] == "tb"


def test_extract_garbage_is_harmless() -> None:
    """extract() of malformed headers yields no ids and does not raise."""
    with extract({"traceparent": "nonsense", "baggage": "%%%"}) as ids:
        assert ids == {}


def test_processor_never_raises() -> None:
    """ContextSpanProcessor.on_start does not raise on a bad span."""
    ContextSpanProcessor().on_start(None)  # type: ignore[arg-type]


def test_current_ids_is_cheap() -> None:
    """current_ids() costs microseconds, and nothing is stored when no ids are set."""
    with thread_context(project_id="p", thread_id="t", agent_run_id="r"):
        # Not a timing assertion on the build machine: just guard against accidental O(ms) work.
        per_call = min(timeit.repeat(current_ids, number=2000, repeat=3)) / 2000
    assert per_call < 50e-6
    assert _context.get_ids_raw() is None
