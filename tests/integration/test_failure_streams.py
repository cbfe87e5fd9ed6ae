"""Cancelled and abandoned LLM streams, and tasks cancelled mid-span: every span ends, nothing leaks.

Real LiteLLM (instrumented by ``instrument(integrations=["litellm"])``) streams from our loopback
OpenAI-compatible server. Each round: an async stream abandoned after two chunks (no ``aclose``), one
closed early with ``aclose``, a task cancelled while iterating a stream, a sync stream dropped half-read,
and a task cancelled inside ``agent_run``/``tool_call``/``llm_call``. After warm-up, more rounds must
not grow the number of live toolkit objects nor the memory allocated by agentpress_otel/opentelemetry
code (tracemalloc, filtered to those files, so LiteLLM's own caches do not count).
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported anywhere

import asyncio
import gc
import heapq
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from agentpress_otel._harness.llm_server import LLMServer
from agentpress_otel.genai import agent_run, llm_call, tool_call
from agentpress_otel.testing import Capture, capture

pytestmark = pytest.mark.integration

WARMUP, ROUNDS = 8, 15  # ROUNDS twice: growth is measured between two equal phases after warm-up
TRACKED = {"LLMCall", "ToolCall", "AgentRun", "_StreamState", "_AsyncStream", "_SyncStream", "_Span", "Span"}
# With the bounded lookup maps emptied and cancelled timers purged before each snapshot, phase-to-phase
# noise is within +-10 KiB (18 samples); a leak of ~220 bytes per call (5 x ROUNDS calls a phase) or more
# fails, a leaked span or LLMCall is several KiB.
GROWTH_MAX_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def server() -> Iterator[LLMServer]:
    with LLMServer(ttft_s=0.005, chunk_delay_s=0.005) as srv:
        yield srv


@pytest.fixture
def cap() -> Iterator[Capture]:
    pytest.importorskip("litellm")
    with capture(service_name="streams", integrations=["litellm"], logs=False) as c:
        yield c


def _kw(server: LLMServer, prompt: str) -> dict[str, Any]:
    return {"model": "openai/gpt-5-mini", "api_base": server.base_url, "api_key": "sk-test", "stream": True,
            "messages": [{"role": "user", "content": prompt}]}


async def _one_round(litellm: Any, server: LLMServer) -> None:
    server.reset()
    # 1. abandoned: break after two chunks and drop the stream without closing it
    stream = await litellm.acompletion(**_kw(server, "abandon me [[words:40]]"))
    n = 0
    async for _ in stream:
        n += 1
        if n == 2:
            break
    del stream

    # 2. closed early
    stream = await litellm.acompletion(**_kw(server, "close me [[words:40]]"))
    await stream.__anext__()
    await stream.aclose()
    del stream

    # 3. task cancelled while it iterates a stream
    async def consume() -> None:
        s = await litellm.acompletion(**_kw(server, "cancel me [[words:60]]"))
        async for _ in s:
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.03)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    # 4. sync stream read halfway and dropped
    sync_stream = await asyncio.to_thread(litellm.completion, **_kw(server, "sync [[words:30]]"))
    next(iter(sync_stream))
    next(iter(sync_stream))
    del sync_stream

    # 5. task cancelled inside nested spans
    async def agent() -> None:
        async with (
            agent_run("cancelled", thread_id="t-1"),
            tool_call("slow_tool"),
            llm_call(model="gpt-5-mini", provider="openai"),
        ):
            await asyncio.sleep(10)

    task = asyncio.create_task(agent())
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def _live_counts() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in TRACKED)


def _empty_bounded_caches() -> None:
    """Empty the span-id / response-id lookup maps that ``record_score`` uses.

    They are bounded (4096-8192 entries each) but, until full, gain one entry per LLM call and swap
    generations at their own pace: growth that is not a leak, yet as big as the one this test hunts.
    Emptied right before each snapshot, both phases are measured in the same state, while anything a
    call leaks elsewhere still adds up over the 5 x ROUNDS calls of a phase.
    """
    from agentpress_otel.genai import _usage

    for lru in (_usage.SPANS, _usage.RESPONSES):
        lru.young.clear()
        lru.old.clear()


def _purge_cancelled_timers() -> None:
    """Drop cancelled timer handles from the running loop's heap, as asyncio itself does once they are
    over half of it (and over 100).

    A cancelled request timeout (LiteLLM's is 600 s) stays in the heap with the contextvars Context it
    was scheduled in, and that Context holds the call's span: bounded retention whose size swings by a
    dozen calls between snapshots, enough to hide or fake the leak this test hunts.
    """
    loop: Any = asyncio.get_running_loop()
    live = [h for h in loop._scheduled if not h.cancelled()]
    heapq.heapify(live)
    loop._scheduled[:] = live
    loop._timer_cancelled_count = 0


def _our_bytes(snap: tracemalloc.Snapshot) -> int:
    """Live bytes allocated by toolkit or SDK code (not the test harness, whose server logs requests)."""
    snap = snap.filter_traces([tracemalloc.Filter(False, "*_harness*")])
    filt = [tracemalloc.Filter(True, "*agentpress_otel*"), tracemalloc.Filter(True, "*opentelemetry*")]
    return sum(s.size for s in snap.filter_traces(filt).statistics("filename"))


async def test_streams_and_cancelled_tasks_end_spans_and_do_not_leak(cap: Capture, server: LLMServer) -> None:
    """Streams and cancelled tasks end their spans, and repeated rounds do not leak call objects."""
    import litellm

    litellm.suppress_debug_info = True
    for _ in range(WARMUP):
        await _one_round(litellm, server)
    await asyncio.sleep(0.1)
    gc.collect()
    spans = cap.spans()
    chats = [s for s in spans if s.name.startswith("chat ")]
    assert len(chats) == 5 * WARMUP, sorted(s.name for s in spans)
    assert all(s.end_time is not None for s in spans)
    assert len([s for s in spans if s.name == "execute_tool slow_tool"]) == WARMUP
    assert len([s for s in spans if s.name == "invoke_agent cancelled"]) == WARMUP
    cap.clear()

    async def phase() -> int:
        for _ in range(ROUNDS):
            await _one_round(litellm, server)
        await asyncio.sleep(0.1)
        assert len([s for s in cap.spans() if s.name.startswith("chat ")]) == 5 * ROUNDS
        cap.clear()  # the in-memory exporter keeps spans by design; drop them before measuring
        _empty_bounded_caches()
        _purge_cancelled_timers()
        gc.collect()
        return _our_bytes(tracemalloc.take_snapshot())

    tracemalloc.start(1)
    try:
        mem_a = await phase()
        before = _live_counts()
        mem_b = await phase()
        after = _live_counts()
    finally:
        tracemalloc.stop()
    # A per-call leak would add 5 x ROUNDS LLMCall objects. A handful can stay reachable for a while from
    # OTel Contexts captured by LiteLLM's background logging tasks/threads (they are ended; see below), so
    # the bound is one per round, not zero.
    grown = {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0) > ROUNDS}
    assert not grown, f"live objects grew over {ROUNDS} rounds: {grown} (before {dict(before)})"
    open_calls = [o for o in gc.get_objects() if type(o).__name__ in {"LLMCall", "ToolCall", "AgentRun"}
                  and not getattr(o, "ended", True)]
    assert not open_calls, f"{len(open_calls)} toolkit spans still open after their streams/tasks went away"
    assert mem_b - mem_a <= GROWTH_MAX_BYTES, (
        f"agentpress_otel/opentelemetry allocations grew {mem_b - mem_a} bytes over {ROUNDS} rounds"
    )
