"""agent_run / tool_call / llm_call spans, metrics, cost, content capture and scores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentpress_otel._context import current_ids, thread_context
from agentpress_otel.genai import (
    PRICES_VERSION,
    _state,
    agent_run,
    cost_usd,
    llm_call,
    record_score,
    set_prices,
    tool_call,
)
from agentpress_otel.genai import prices as prices_mod
from agentpress_otel.testing import Kit, make_kit


@pytest.fixture
def capture_kit() -> Iterator[Kit]:
    with make_kit(capture_content=True, content_max_chars=120) as k:
        yield k


@dataclass
class ToolResult:  # AgentPress shape
    success: bool
    output: str


def test_works_before_configure() -> None:
    """The GenAI API works as a no-op before telemetry is configured."""
    _state.unconfigure()
    with agent_run("a", thread_id="t"), llm_call(model="gpt-5", provider="openai") as c:
        c.set_usage(input_tokens=1, output_tokens=1)
    with tool_call("x") as t:
        t.set_result(ToolResult(False, "no"))
    assert record_score("s", 1.0) is False


def test_llm_call_span_metrics_cost(kit: Kit) -> None:
    """llm_call() produces the chat span with request, usage and cost attributes, and its metrics."""
    call = llm_call(model="openai/gpt-5-mini", provider="openai", temperature=0, max_tokens=100, stream=True,
                    server_address="api.openai.com", messages=[{"role": "user", "content": "secret"}])
    with thread_context(thread_id="t1", project_id="p1"), call as c:
        c.chunk()
        c.chunk()
        c.set_usage(input_tokens=1000, output_tokens=200, cache_read_tokens=400, reasoning_tokens=50)
        c.set_response(model="gpt-5-mini-2025-08-07", id="chatcmpl-1", finish_reasons=["stop"])
    (s,) = kit.spans("chat ")
    a = dict(s.attributes or {})
    assert s.name == "chat openai/gpt-5-mini" and s.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.temperature"] == 0 and a["gen_ai.request.max_tokens"] == 100
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == 1000 and a["gen_ai.usage.output_tokens"] == 200
    assert a["gen_ai.usage.cache_read.input_tokens"] == 400
    assert a["gen_ai.usage.reasoning.output_tokens"] == 50
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.conversation.id"] == "t1" and a["agentpress.project.id"] == "p1"
    assert isinstance(a["gen_ai.response.time_to_first_chunk"], float)
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert "gen_ai.input.messages" not in a  # capture off by default
    expected = (600 * 0.25 + 400 * 0.025 + 200 * 2.0) / 1e6
    assert a["agentpress.llm.cost_usd"] == pytest.approx(expected)
    assert a["agentpress.llm.prices_version"] == PRICES_VERSION
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="input") == 1000
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="output") == 200
    assert kit.metric_sum("agentpress.llm.cost", gen_ai__request__model="openai/gpt-5-mini") == pytest.approx(expected)
    assert kit.metric_count("gen_ai.client.operation.duration") == 1
    assert kit.metric_count("gen_ai.client.operation.time_to_first_chunk") == 1
    assert kit.metric_count("gen_ai.client.operation.time_per_output_chunk") == 1
    # Never ids as metric labels.
    for name in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration", "agentpress.llm.cost"):
        for attrs, _ in kit.points(name):
            assert not any(k.startswith("agentpress.") or k in ("user.id", "gen_ai.conversation.id") for k in attrs)


def test_unknown_model_is_unpriced(kit: Kit) -> None:
    """An unknown model gets no cost and is counted as unpriced."""
    with llm_call(model="acme/llm-9000", provider="acme") as c:
        c.set_usage(input_tokens=5, output_tokens=5)
    a = kit.spans("chat")[0].attributes or {}
    assert "agentpress.llm.cost_usd" not in a
    assert kit.metric_sum("agentpress.llm.unpriced", gen_ai__request__model="acme/llm-9000") == 1


def test_price_lookup_and_override(kit: Kit) -> None:
    """Price lookup resolves provider prefixes, aliases and dated names; overrides change the cost."""
    assert prices_mod.lookup("anthropic/claude-sonnet-4-20250514") is not None
    assert prices_mod.lookup("claude-3-7-sonnet-latest") == prices_mod.DEFAULT_PRICES["claude-3-7-sonnet"]
    assert prices_mod.lookup("openrouter/moonshotai/kimi-k2") is not None
    assert prices_mod.lookup("gpt-5-mini-2025-08-07") == prices_mod.DEFAULT_PRICES["gpt-5-mini"]
    assert prices_mod.lookup("gemini/gemini-2.5-pro") is not None and prices_mod.lookup("xai/grok-4") is not None
    assert prices_mod.lookup("openrouter/qwen/qwen3-235b-a22b") is not None
    assert prices_mod.lookup("openrouter/deepseek/deepseek-chat") is not None
    assert cost_usd("gpt-5", input_tokens=1_000_000) == pytest.approx(1.25)
    set_prices({"gpt-5": {"input": 2.0, "output": 4.0}})
    assert cost_usd("openai/gpt-5", input_tokens=1_000_000) == pytest.approx(2.0)


def test_prices_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A prices file adds models whose cost is then computed."""
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"my-model": {"input": 1, "output": 1}}))
    assert prices_mod.load_prices_file(str(p)) == 1
    assert cost_usd("my-model", output_tokens=1_000_000) == pytest.approx(1.0)


def test_error_sets_error_type(kit: Kit) -> None:
    """An exception inside llm_call() marks the span as error with its type, on the duration metric too."""
    with pytest.raises(ValueError), llm_call(model="gpt-5", provider="openai"):
        raise ValueError("boom")
    (s,) = kit.spans("chat")
    assert s.status.status_code == StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == "ValueError"
    assert kit.metric_count("gen_ai.client.operation.duration", error__type="ValueError") == 1


def test_content_capture_truncated(capture_kit: Kit) -> None:
    """Captured message content is in the semconv shape and truncated to the configured length."""
    msgs = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "x" * 500}]
    with llm_call(model="gpt-5", provider="openai", messages=msgs) as c:
        c.set_output_messages([{"role": "assistant", "content": "hello"}], finish_reasons=["stop"])
    a = capture_kit.spans("chat")[0].attributes or {}
    inp = str(a["gen_ai.input.messages"])
    assert inp.startswith('[{"role":"system","parts":[{"type":"text')
    # The full semconv JSON is 605 characters (over the 256-character redaction slack): the marker still counts
    # every character cut, those dropped before redaction included.
    full = json.dumps([{"role": "system", "parts": [{"type": "text", "content": "be nice"}]},
                       {"role": "user", "parts": [{"type": "text", "content": "x" * 500}]}], separators=(",", ":"))
    marker = f"…[{len(full) - (len(inp) - len('…[000 chars cut]…'))} chars cut]…"
    assert len(inp) == 120 and inp.endswith(marker) and full.startswith(inp[: -len(marker)])
    assert '"finish_reason":"stop"' in str(a["gen_ai.output.messages"])


def test_tool_failure_result_and_exception(kit: Kit) -> None:
    """A failed tool result and a raised exception both mark the tool span as error; arguments are not captured."""
    with tool_call("web_search", call_id="call_1", arguments={"q": "x"}) as t:
        t.set_result(ToolResult(success=False, output="quota exceeded"))
    with pytest.raises(KeyError), tool_call("shell"):
        raise KeyError("k")
    with tool_call("ok") as t:
        t.set_result({"success": True, "output": "fine"})
    spans = {s.name: s for s in kit.spans("execute_tool")}
    ws = spans["execute_tool web_search"]
    assert ws.status.status_code == StatusCode.ERROR
    assert (ws.attributes or {})["error.type"] == "tool_failure"
    assert (ws.attributes or {})["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in (ws.attributes or {})
    assert (spans["execute_tool shell"].attributes or {})["error.type"] == "KeyError"
    assert spans["execute_tool ok"].status.status_code == StatusCode.UNSET
    assert kit.metric_count("gen_ai.execute_tool.duration", gen_ai__tool__name="web_search") == 1


def test_agent_run_sets_ids_and_parents(kit: Kit) -> None:
    """agent_run() sets the ids for its block and parents the spans inside it."""
    with agent_run("suna", thread_id="t1", agent_run_id="r1", project_id="p1"):
        assert current_ids() == {"thread_id": "t1", "agent_run_id": "r1", "project_id": "p1"}
        with llm_call(model="gpt-5", provider="openai"):
            pass
        with tool_call("ask"):
            pass
    assert current_ids() == {}
    agent = kit.spans("invoke_agent suna")[0]
    assert agent.kind == SpanKind.INTERNAL
    for s in kit.spans():
        assert (s.attributes or {})["agentpress.agent_run.id"] == "r1"
        assert (s.attributes or {})["gen_ai.conversation.id"] == "t1"
        assert s.context.trace_id == agent.context.trace_id
    assert kit.metric_count("gen_ai.invoke_agent.duration", gen_ai__agent__name="suna") == 1
    assert kit.metric_sum("agentpress.agent.active_runs") == 0


def test_decorators_sync_and_coroutine(kit: Kit) -> None:
    """The decorators trace sync functions and coroutines, one span per call."""
    @tool_call("add")
    def add(a: int, b: int) -> int:
        return a + b

    @llm_call(model="gpt-5", provider="openai")
    async def ask() -> str:
        await asyncio.sleep(0)
        return "hi"

    assert add(1, 2) == 3 and add(2, 2) == 4
    assert asyncio.run(ask()) == "hi"
    assert len(kit.spans("execute_tool add")) == 2 and len(kit.spans("chat gpt-5")) == 1


async def test_async_generator_decorator_spans_whole_iteration(kit: Kit) -> None:
    """A decorated async generator's span covers the whole iteration without leaking context to the consumer."""
    seen: list[bool] = []

    @agent_run("gen", agent_run_id="r2")
    async def run() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            seen.append(current_ids().get("agent_run_id") == "r2")
            with tool_call(f"t{i}"):
                pass
            yield i

    out = []
    async for x in run():
        assert current_ids() == {}  # span context not leaked to the consumer between items
        out.append(x)
    assert out == [0, 1, 2] and all(seen)
    agent = kit.spans("invoke_agent gen")[0]
    tools = kit.spans("execute_tool")
    assert len(tools) == 3 and all(t.parent is not None and t.parent.span_id == agent.context.span_id for t in tools)
    assert agent.end_time is not None and max(t.end_time or 0 for t in tools) <= agent.end_time


async def test_async_generator_closed_early_ends_span(kit: Kit) -> None:
    """An async generator closed early ends its span marked closed early, not as an error."""
    @agent_run("gen")
    async def run() -> AsyncGenerator[int, None]:
        for i in range(10):
            yield i

    g = run()
    assert await g.__anext__() == 0
    await g.aclose()
    (s,) = kit.spans("invoke_agent gen")
    assert (s.attributes or {})["agentpress.closed_early"] is True
    assert s.status.status_code == StatusCode.UNSET


async def test_coroutine_returning_async_generator(kit: Kit) -> None:
    """AgentPress run_thread: ``async def`` that returns a generator."""

    async def chunks() -> AsyncIterator[str]:
        for c in "ab":
            await asyncio.sleep(0.01)
            yield c

    @agent_run("run_thread")
    async def run_thread() -> AsyncIterator[str]:
        return chunks()

    gen = await run_thread()
    assert kit.spans("invoke_agent") == []  # still open
    assert [c async for c in gen] == ["a", "b"]
    (s,) = kit.spans("invoke_agent run_thread")
    assert (s.end_time or 0) - (s.start_time or 0) >= 15_000_000


async def test_async_generator_error_propagates(kit: Kit) -> None:
    """An error raised inside a decorated async generator propagates and is recorded on its span."""
    @tool_call("bad")
    async def bad() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        async for _ in bad():
            pass
    assert (kit.spans("execute_tool bad")[0].attributes or {})["error.type"] == "RuntimeError"


def test_sync_generator_decorator(kit: Kit) -> None:
    """A decorated sync generator yields all values under one span."""
    @tool_call("g")
    def g() -> Iterator[int]:
        yield from range(3)

    assert list(g()) == [0, 1, 2]
    assert len(kit.spans("execute_tool g")) == 1


def test_cancelled_task_ends_span(kit: Kit) -> None:
    """A cancelled task ends its LLM span with error.type cancelled."""
    async def main() -> None:
        async def work() -> None:
            async with llm_call(model="gpt-5", provider="openai"):
                await asyncio.sleep(10)

        t = asyncio.create_task(work())
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t

    asyncio.run(main())
    assert (kit.spans("chat")[0].attributes or {})["error.type"] == "cancelled"


def test_record_score_by_response_id(kit: Kit) -> None:
    """record_score() by response id emits an evaluation event linked to that call's span, and a metric."""
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_response(id="resp-42")
    span = kit.spans("chat")[0]
    assert record_score("helpfulness", 0.8, label="good", explanation="ok", response_id="resp-42") is True
    kit.force_flush()
    (log,) = kit.logs()
    rec = log.log_record
    assert rec.event_name == "gen_ai.evaluation.result"
    assert rec.span_id == span.context.span_id and rec.trace_id == span.context.trace_id
    assert dict(rec.attributes)["gen_ai.evaluation.score.value"] == 0.8
    assert kit.metric_sum("agentpress.evaluation.score", gen_ai__evaluation__name="helpfulness",
                          gen_ai__request__model="gpt-5") == pytest.approx(0.8)
    assert record_score("thumbs", 1.0, response_id="unknown") is False


def test_decorated_llm_function_reads_response(kit: Kit) -> None:
    """A decorated LLM function's returned response sets usage, cache tokens, cost and response id."""
    @llm_call(model="claude-sonnet-4-20250514", provider="anthropic")
    def call() -> dict[str, object]:
        return {"id": "msg_1", "model": "claude-sonnet-4-20250514",
                "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
                "usage": {"prompt_tokens": 2000, "completion_tokens": 100, "cache_read_input_tokens": 1000,
                          "cache_creation_input_tokens": 500}}

    call()
    a = dict(kit.spans("chat")[0].attributes or {})
    assert a["gen_ai.usage.input_tokens"] == 2000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 500  # the Baseline A name
    expected = (500 * 3.0 + 1000 * 0.30 + 500 * 3.75 + 100 * 15.0) / 1e6
    assert a["agentpress.llm.cost_usd"] == pytest.approx(expected)
    assert a["gen_ai.response.id"] == "msg_1"


def test_deferred_metrics_are_bounded(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deferred metrics past the bound are dropped and counted; collection drains the rest."""
    from agentpress_otel import _selftel

    ins = _state.STATE.instruments
    assert ins.deferred
    monkeypatch.setattr(_state, "MAX_PENDING", 3)
    before = _selftel.dropped("metrics", "genai_pending_full")
    for _ in range(5):
        with llm_call(model="gpt-5", provider="openai") as c:
            c.set_usage(input_tokens=1, output_tokens=1)
    assert _selftel.dropped("metrics", "genai_pending_full") - before == 2
    assert kit.metric_count("gen_ai.client.operation.duration") == 3
    assert len(ins.pending) == 0  # collection drained the queue


def test_record_score_by_span_context_and_without_log_pipeline(kit: Kit) -> None:
    """record_score() by span context works, and without a log pipeline it becomes a span event."""
    with llm_call(model="gpt-5-mini", provider="openai"):
        pass
    span = kit.spans("chat")[0]
    assert record_score("relevance", 0.5, label="pass", span_context=span.context) is True
    kit.force_flush()
    rec = kit.logs()[-1].log_record
    assert rec.span_id == span.context.span_id
    assert kit.metric_sum("agentpress.evaluation.score", gen_ai__evaluation__name="relevance",
                          gen_ai__request__model="gpt-5-mini") == pytest.approx(0.5)
    # No LoggerProvider: the event goes onto the current (recording) span instead.
    _state.STATE.event_logger = None
    with kit.tracer_provider.get_tracer("t").start_as_current_span("judge"):
        record_score("thumbs", 1.0, label="thumbs_up")
    judge = kit.spans("judge")[0]
    assert [e.name for e in judge.events] == ["gen_ai.evaluation.result"]
