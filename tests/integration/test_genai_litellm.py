"""Real LiteLLM against our loopback OpenAI-compatible server: spans, tokens, metrics, errors, streams."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported anywhere

import asyncio
import gc
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentpress_otel._context import thread_context
from agentpress_otel._harness.llm_server import LLMServer
from agentpress_otel.genai import _state, agent_run, llm_call
from agentpress_otel.integrations import litellm as ap_litellm
from agentpress_otel.testing import Kit, make_kit

pytestmark = pytest.mark.integration

_LOCAL = ("127.0.0.1", "::1", "localhost")


@pytest.fixture(scope="module")
def offline() -> Iterator[list[Any]]:
    """Record (and refuse) every non-loopback connection attempt made while these tests run."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in _LOCAL:
            attempts.append(address)
            raise OSError("network disabled in tests")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *a: Any, **kw: Any) -> Any:
        if host not in _LOCAL and host is not None:
            attempts.append(host)
            raise socket.gaierror("network disabled in tests")
        return real_getaddrinfo(host, *a, **kw)

    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.getaddrinfo = getaddrinfo
    try:
        yield attempts
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(scope="module")
def server(offline: list[Any]) -> Iterator[LLMServer]:
    with LLMServer(ttft_s=0.05, chunk_delay_s=0.005) as srv:
        yield srv


@pytest.fixture(scope="module")
def litellm_mod(offline: list[Any]) -> Any:
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # as AgentPress does
    litellm.modify_params = True
    ap_litellm.instrument()
    yield litellm
    ap_litellm.uninstrument()


@pytest.fixture
def kit(server: LLMServer, litellm_mod: Any) -> Iterator[Kit]:
    k = make_kit()
    _state.configure(k)
    server.reset()
    yield k
    _state.unconfigure()
    k.shutdown()
    gc.collect()  # LiteLLM's per-loop logging worker: see tests/integration/test_genai_agentpress_e2e.py


def _kw(server: LLMServer, prompt: str, **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-5-mini", "api_base": server.base_url, "api_key": "sk-test",
            "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}],
            **extra}


def _run_fresh_python(code: str, *, timeout: float) -> None:
    """Run ``code`` in a new interpreter (import-time behaviour); it must print ``ok`` last."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def _llm_spans(kit: Kit) -> list[Any]:
    return [s for s in kit.spans() if s.name.startswith("chat ")]


def test_completion_attributes_and_metrics_match_server(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A LiteLLM completion's span and metrics match what the LLM server served, the request untouched."""
    kwargs = _kw(server, "What is up [[words:12]] [[cached:3]]", temperature=0.2, max_tokens=50)
    before = dict(kwargs)
    with thread_context(thread_id="t1", project_id="p1"):
        resp = litellm_mod.completion(**kwargs)
    assert kwargs == before  # caller's request untouched
    served = server.requests[-1]
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert s.name == "chat gpt-5-mini" and s.kind == SpanKind.CLIENT
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.usage.input_tokens"] == served.prompt_tokens == resp.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == served.completion_tokens == 12
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3
    assert a["gen_ai.response.id"] == served.response_id
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 50
    assert a["server.address"] == "127.0.0.1" and a["server.port"] == server.port
    assert a["agentpress.thread.id"] == "t1" and a["gen_ai.conversation.id"] == "t1"
    assert a["agentpress.llm.cost_usd"] > 0
    assert "gen_ai.input.messages" not in a
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="input") == served.prompt_tokens
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="output") == served.completion_tokens
    assert kit.metric_sum("agentpress.llm.cost") == pytest.approx(a["agentpress.llm.cost_usd"])


async def test_async_stream_with_usage_chunk(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """An async stream with a usage chunk ends its span after the stream with the served token counts."""
    stream = await litellm_mod.acompletion(**_kw(server, "stream me [[words:6]]", stream=True,
                                                 stream_options={"include_usage": True}))
    assert isinstance(stream, litellm_mod.CustomStreamWrapper)  # proxy is transparent
    assert _llm_spans(kit) == []  # still open while streaming
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    served = server.requests[-1]
    assert text == served.content
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert a["gen_ai.request.stream"] is True
    assert a["gen_ai.usage.input_tokens"] == served.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == served.completion_tokens == 6
    assert "agentpress.usage.estimated" not in a
    ttfc = a["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttfc, float)
    assert 0.04 <= ttfc < ((s.end_time or 0) - (s.start_time or 0)) / 1e9
    assert kit.metric_count("gen_ai.client.operation.time_to_first_chunk") == 1
    assert kit.metric_count("gen_ai.client.operation.time_per_output_chunk") >= 5
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="output") == 6


def test_sync_stream_without_usage_is_estimated(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A sync stream without usage gets token counts estimated with LiteLLM's counter, marked estimated."""
    chunks = list(litellm_mod.completion(**_kw(server, "no usage please [[words:5]]", stream=True)))
    assert chunks
    served = server.requests[-1]
    assert served.include_usage is False
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert a["agentpress.usage.estimated"] is True
    msgs = _kw(server, "no usage please [[words:5]]")["messages"]
    assert a["gen_ai.usage.output_tokens"] == litellm_mod.token_counter(model="gpt-5-mini", text=served.content)
    assert a["gen_ai.usage.input_tokens"] == litellm_mod.token_counter(model="gpt-5-mini", messages=msgs)


async def test_abandoned_async_stream_ends_span(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """An abandoned async stream ends its span marked closed early, not as an error."""
    stream = await litellm_mod.acompletion(**_kw(server, "long [[words:40]]", stream=True))
    n = 0
    async for _ in stream:
        n += 1
        if n == 2:
            break
    assert _llm_spans(kit) == []
    del stream
    gc.collect()
    (s,) = _llm_spans(kit)
    assert (s.attributes or {})["agentpress.closed_early"] is True
    assert s.status.status_code == StatusCode.UNSET


async def test_aclose_and_cancel_end_span_once(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """aclose() and cancellation each end the call's span exactly once."""
    stream = await litellm_mod.acompletion(**_kw(server, "a [[words:30]]", stream=True))
    await stream.__anext__()
    await stream.aclose()
    await stream.aclose()
    del stream
    gc.collect()  # the GC finalizer must not end it again either
    # The SDK ignores a second span.end(), so count the duration points: one per ended call.
    assert kit.metric_count("gen_ai.client.operation.duration") == 1

    async def consume() -> None:
        # Cancelled while waiting for the (slow) response: the wrapper sees CancelledError.
        await litellm_mod.acompletion(**_kw(server, "b [[slow:2]]", stream=True))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gc.collect()
    spans = _llm_spans(kit)
    assert len(spans) == 2
    assert any((s.attributes or {}).get("error.type") == "cancelled" for s in spans)
    assert kit.metric_count("gen_ai.client.operation.duration") == 2
    assert kit.metric_count("gen_ai.client.operation.duration", error__type="cancelled") == 1


def test_sync_stream_closed_early(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A sync stream closed early ends its span marked closed early."""
    stream = litellm_mod.completion(**_kw(server, "c [[words:30]]", stream=True))
    next(iter(stream))
    stream.close()
    (s,) = _llm_spans(kit)
    assert (s.attributes or {})["agentpress.closed_early"] is True


@pytest.mark.parametrize(
    ("magic", "etype"),
    [("[[error:429]]", "rate_limit"), ("[[error:500]]", "server_error"), ("[[error:401]]", "authentication_error")],
)
def test_errors_set_error_type(kit: Kit, server: LLMServer, litellm_mod: Any, magic: str, etype: str) -> None:
    """Each LiteLLM error sets the span's error status and the expected error.type, on the metric too."""
    with pytest.raises(Exception):
        litellm_mod.completion(**_kw(server, f"fail {magic}", max_retries=0))
    (s,) = _llm_spans(kit)
    assert s.status.status_code == StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == etype
    assert kit.metric_count("gen_ai.client.operation.duration", error__type=etype) == 1


async def test_timeout_sets_error_type(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A LiteLLM timeout sets error.type ``timeout``."""
    with pytest.raises(Exception):
        await litellm_mod.acompletion(**_kw(server, "slow [[slow:2]]", timeout=0.3, max_retries=0))
    (s,) = _llm_spans(kit)
    assert (s.attributes or {})["error.type"] == "timeout"


def test_retries_are_one_span(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """LiteLLM's retries are one span with the final attempt's usage."""
    resp = litellm_mod.completion(**_kw(server, "retry me [[flaky:429:2]]", num_retries=3, max_retries=0))
    assert resp.choices[0].message.content
    assert [r.status for r in server.requests if "retry me" in r.prompt] == [429, 429, 200]
    (s,) = _llm_spans(kit)
    assert s.status.status_code == StatusCode.UNSET
    ok = [r for r in server.requests if "retry me" in r.prompt and r.status == 200]
    assert (s.attributes or {})["gen_ai.usage.output_tokens"] == ok[-1].completion_tokens


async def test_router_one_span_with_provider(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A Router call is one span named after the model group, with the provider and deployment model."""
    router = litellm_mod.Router(model_list=[
        {"model_name": "fast", "litellm_params": {"model": "openai/gpt-5-mini", "api_base": server.base_url,
                                                  "api_key": "sk-test"}},
    ])
    resp = await router.acompletion(model="fast", messages=[{"role": "user", "content": "hi [[tool:get_weather]]"}])
    assert resp.choices[0].finish_reason == "tool_calls"
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert s.name == "chat fast" and a["gen_ai.provider.name"] == "openai"
    assert a["agentpress.llm.deployment_model"] == "gpt-5-mini"
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["gen_ai.usage.output_tokens"] == 10


async def test_agent_run_with_tasks_and_threads(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """LLM calls from tasks and threads inside agent_run() are its children with its ids."""
    async with agent_run("suna", thread_id="t7", agent_run_id="r7"):
        await asyncio.gather(
            litellm_mod.acompletion(**_kw(server, "one")),
            asyncio.create_task(litellm_mod.acompletion(**_kw(server, "two"))),
        )
        await asyncio.to_thread(lambda: litellm_mod.completion(**_kw(server, "three")))
    agent = kit.spans("invoke_agent")[0]
    llm = _llm_spans(kit)
    assert len(llm) == 3
    for s in llm:
        assert s.parent is not None and s.parent.span_id == agent.context.span_id
        assert (s.attributes or {})["agentpress.agent_run.id"] == "r7"


def test_explicit_llm_call_suppresses_nested_litellm_and_util_genai(kit: Kit, server: LLMServer,
                                                                     litellm_mod: Any) -> None:
    """Inside an explicit llm_call(), nested LiteLLM and util-genai calls add no second LLM span."""
    from opentelemetry.util.genai.handler import TelemetryHandler

    handler = TelemetryHandler(tracer_provider=kit.tracer_provider, meter_provider=kit.meter_provider)
    with llm_call(model="gpt-5-mini", provider="openai"):
        litellm_mod.completion(**_kw(server, "nested"))
        with handler.inference("openai", request_model="gpt-5-mini"):  # what openai-v2 instrumentation does
            pass
    assert len(_llm_spans(kit)) == 1


def test_capture_content_on(server: LLMServer, litellm_mod: Any) -> None:
    """With content capture on, messages are captured redacted, with the finish reason."""
    k = make_kit(capture_content=True)
    _state.configure(k)
    try:
        litellm_mod.completion(**_kw(server, "my key is sk-proj-AbC123dEf456GhI789jKl012MnO345 [[words:3]]"))
        a = dict(_llm_spans(k)[0].attributes or {})
        assert '"role":"user"' in str(a["gen_ai.input.messages"])
        assert "AbC123dEf456" not in str(a["gen_ai.input.messages"])  # redacted before it is set
        assert "[REDACTED:" in str(a["gen_ai.input.messages"])
        assert '"finish_reason":"stop"' in str(a["gen_ai.output.messages"])
    finally:
        _state.unconfigure()
        k.shutdown()


def test_uninstrument_is_idempotent_and_undoes(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """uninstrument() is idempotent and stops LiteLLM spans until instrumented again."""
    ap_litellm.uninstrument()
    ap_litellm.uninstrument()
    try:
        litellm_mod.completion(**_kw(server, "plain"))
        assert _llm_spans(kit) == []
    finally:
        ap_litellm.instrument()
        ap_litellm.instrument()
    litellm_mod.completion(**_kw(server, "again"))
    assert len(_llm_spans(kit)) == 1


def test_nothing_reached_the_network(kit: Kit, offline: list[Any], server: LLMServer, litellm_mod: Any) -> None:
    """Self-contained (any order, or alone): the guard works, and a completion, a stream without usage
    (tokenizer estimate) and provider mapping reach nothing but loopback."""
    with pytest.raises(OSError):
        socket.getaddrinfo("example.com", 443)  # the guard is live: it records and refuses
    assert offline.pop() == "example.com"
    litellm_mod.completion(**_kw(server, "net [[words:3]]"))
    list(litellm_mod.completion(**_kw(server, "net stream [[words:3]]", stream=True)))
    ap_litellm.provider_for("anthropic/claude-sonnet-4-20250514")
    assert len(_llm_spans(kit)) == 2
    assert offline == []


@pytest.mark.parametrize(
    ("model", "provider", "bare"),
    [
        ("openai/gpt-5", "openai", "gpt-5"),
        ("gpt-5-mini", "openai", "gpt-5-mini"),
        ("anthropic/claude-sonnet-4-20250514", "anthropic", "claude-sonnet-4-20250514"),
        ("gemini/gemini-2.5-pro", "gcp.gemini", "gemini-2.5-pro"),
        ("xai/grok-4", "x_ai", "grok-4"),
        ("openrouter/moonshotai/kimi-k2", "openrouter", "moonshotai/kimi-k2"),
        ("openrouter/qwen/qwen3-235b-a22b", "openrouter", "qwen/qwen3-235b-a22b"),
    ],
)
def test_provider_mapping(litellm_mod: Any, model: str, provider: str, bare: str) -> None:
    """Model strings map to the expected provider and bare model name."""
    assert ap_litellm.provider_for(model) == (provider, bare)


def test_instrument_before_import_patches_on_import_and_stays_offline() -> None:
    """instrument() must not import LiteLLM (slow) and must make its import offline; patch on import."""
    code = (
        "import os, sys, socket\n"
        "os.environ.pop('LITELLM_LOCAL_MODEL_COST_MAP', None)\n"
        "bad = []\n"
        "real = socket.getaddrinfo\n"
        "def gai(host, *a, **k):\n"
        "    if host not in ('127.0.0.1', 'localhost', '::1'):\n"
        "        bad.append(host); raise socket.gaierror('offline')\n"
        "    return real(host, *a, **k)\n"
        "socket.getaddrinfo = gai\n"
        "from agentpress_otel.integrations import litellm as ap\n"
        "ap.instrument()\n"
        "assert 'litellm' not in sys.modules\n"
        "import litellm, wrapt\n"
        "assert isinstance(litellm.acompletion, wrapt.FunctionWrapper)\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'True'\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    _run_fresh_python(code, timeout=180)


def test_instrument_leaves_an_explicit_cost_map_choice_alone() -> None:
    """The variable also picks the prices the app's own LiteLLM cost calls use: an explicit value wins."""
    code = (
        "import os, sys\n"
        "os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] = 'False'\n"
        "from agentpress_otel.integrations import litellm as ap\n"
        "ap.instrument()\n"
        "assert 'litellm' not in sys.modules\n"
        "assert os.environ['LITELLM_LOCAL_MODEL_COST_MAP'] == 'False'\n"
        "print('ok')\n"
    )
    _run_fresh_python(code, timeout=120)


async def test_streamed_tool_call(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """A streamed tool call passes through, with finish reason and usage on the span."""
    stream = await litellm_mod.acompletion(**_kw(server, "weather? [[tool:get_weather]]", stream=True,
                                                 stream_options={"include_usage": True}))
    names = []
    async for chunk in stream:
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
    assert names == ["get_weather"]
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert a["gen_ai.usage.output_tokens"] == server.requests[-1].completion_tokens == 10


async def test_streamed_tool_call_captured_as_tool_call_part(server: LLMServer, litellm_mod: Any) -> None:
    """A streamed tool call is captured as a tool_call part with its name, id and arguments."""
    k = make_kit(capture_content=True)
    _state.configure(k)
    try:
        stream = await litellm_mod.acompletion(**_kw(server, "weather? [[tool:get_weather]]", stream=True))
        args = ""
        async for chunk in stream:
            for c in chunk.choices:
                for tc in c.delta.tool_calls or []:
                    args += (tc.function and tc.function.arguments) or ""
        (s,) = _llm_spans(k)
        out = json.loads(str((s.attributes or {})["gen_ai.output.messages"]))
        parts = out[0]["parts"]
        assert [p["type"] for p in parts] == ["tool_call"], parts  # not assistant text
        assert parts[0]["name"] == "get_weather" and parts[0]["id"]
        assert parts[0]["arguments"] == args and json.loads(args)
        assert out[0]["finish_reason"] == "tool_calls"
    finally:
        _state.unconfigure()
        k.shutdown()


def test_usage_estimate_of_a_long_history_is_bounded(kit: Kit, server: LLMServer, litellm_mod: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No usage chunk and a long history: the estimate tokenizes a bounded sample, not everything."""
    history = [{"role": "system", "content": "You are terse. " * 2000}]
    history += [{"role": "user", "content": f"message {i}: " + "lorem ipsum dolor sit amet " * 600} for i in range(25)]
    exact = litellm_mod.token_counter(model="gpt-5-mini", messages=history)
    assert exact > 50_000
    counted: list[int] = []
    real = litellm_mod.token_counter

    def spy(*args: Any, **kwargs: Any) -> Any:  # only our module calls litellm.token_counter by attribute
        msgs = kwargs.get("messages") or []
        counted.append(len(kwargs.get("text") or "") + sum(len(str(m.get("content"))) for m in msgs))
        return real(*args, **kwargs)

    monkeypatch.setattr(litellm_mod, "token_counter", spy)
    kw = {**_kw(server, "x"), "messages": [*history, {"role": "user", "content": "go [[words:3]]"}], "stream": True}
    list(litellm_mod.completion(**kw))
    a = dict(_llm_spans(kit)[0].attributes or {})
    assert a["agentpress.usage.estimated"] is True
    assert abs(a["gen_ai.usage.input_tokens"] - exact) / exact < 0.1
    assert counted and max(counted) <= ap_litellm.ESTIMATE_SAMPLE_CHARS, counted


def test_capture_env_var_turns_content_on_end_to_end(server: LLMServer, litellm_mod: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT alone, through instrument(), captures content."""
    from agentpress_otel.testing import capture

    monkeypatch.delenv("AGENTPRESS_OTEL_CAPTURE_CONTENT", raising=False)
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    try:
        with capture(service_name="capture-env", integrations=["litellm"], logs=False) as cap:
            litellm_mod.completion(**_kw(server, "capture me [[words:3]]"))
            (s,) = [s for s in cap.spans() if s.name.startswith("chat ")]
        a = dict(s.attributes or {})
        assert "capture me" in str(a["gen_ai.input.messages"])
        assert '"role":"assistant"' in str(a["gen_ai.output.messages"])
        monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "NO_CONTENT")
        with capture(service_name="capture-env", integrations=["litellm"], logs=False) as cap:
            litellm_mod.completion(**_kw(server, "not me [[words:3]]"))
            (s,) = [s for s in cap.spans() if s.name.startswith("chat ")]
        assert "gen_ai.input.messages" not in (s.attributes or {})
    finally:
        ap_litellm.instrument()  # capture() uninstruments on exit; the module fixture's patch must stay


def test_abandoned_sync_stream_ends_span_on_gc(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """An abandoned sync stream ends its span, marked closed early, when garbage collected."""
    stream = litellm_mod.completion(**_kw(server, "d [[words:30]]", stream=True))
    next(iter(stream))
    assert _llm_spans(kit) == []
    del stream
    gc.collect()
    (s,) = _llm_spans(kit)
    assert (s.attributes or {})["agentpress.closed_early"] is True


def test_dropped_sync_stream_is_closed_at_once_in_the_dropping_thread(
    kit: Kit, server: LLMServer, litellm_mod: Any
) -> None:
    """Without this, the provider response waits for the cyclic GC, which may finalize it inside httpcore's
    pool lock on another thread and deadlock (encode/httpcore#990): seen as a hung test on a busy machine."""
    import openai._streaming as oai_streaming

    made: list[Any] = []
    real_init = oai_streaming.Stream.__init__

    def spy(self: Any, *a: Any, **k: Any) -> None:
        real_init(self, *a, **k)
        made.append(self)

    oai_streaming.Stream.__init__ = spy  # type: ignore[method-assign]
    try:
        stream = litellm_mod.completion(**_kw(server, "e [[words:30]]", stream=True))
        next(iter(stream))
        (provider_stream,) = made
        made.clear()
        gc.disable()  # only refcounting may act: the close must not depend on a GC pass
        try:
            del stream
            assert provider_stream.response.is_closed
            (s,) = _llm_spans(kit)
            assert (s.attributes or {})["agentpress.closed_early"] is True
        finally:
            gc.enable()
    finally:
        oai_streaming.Stream.__init__ = real_init  # type: ignore[method-assign]


# ---------------------------------------------------------------------------- semantic conventions (issue 18)
_SCHEMA = Path(__file__).parent.parent / "data" / "semconv" / "gen-ai-tool-definitions.json"


def test_metrics_carry_server_port_and_openai_response_fields(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """server.port is conditionally required on every gen_ai.client.* metric once server.address is set
    (gen-ai-metrics.md); openai.response.system_fingerprint is recommended when OpenAI returns it (openai.md)."""
    litellm_mod.completion(**_kw(server, "hi [[words:4]]", stream=False))
    for _chunk in litellm_mod.completion(**_kw(server, "streamed [[words:6]]", stream=True,
                                             stream_options={"include_usage": True})):
        pass
    seen = 0
    for name in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage",
                 "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.operation.time_per_output_chunk"):
        for attrs, _ in kit.points(name):
            seen += 1
            assert attrs["server.address"] == "127.0.0.1" and attrs["server.port"] == server.port, (name, attrs)
    assert seen >= 4
    for span in _llm_spans(kit):  # the plain response and the stream's first chunk
        assert dict(span.attributes or {})["openai.response.system_fingerprint"] == "fp_local", span.name


def test_agent_run_model_has_no_routing_prefix_and_rolls_up_usage(kit: Kit, server: LLMServer,
                                                                   litellm_mod: Any) -> None:
    """invoke_agent reports the model as its chat spans do, plus the recommended token usage and finish
    reasons of the calls it made (gen-ai-agent-spans.md, invoke_agent)."""
    with agent_run("suna", thread_id="t-roll", model="openai/gpt-5-mini"):
        litellm_mod.completion(**_kw(server, "one [[words:5]]"))
        litellm_mod.completion(**_kw(server, "two [[words:7]]"))
    (agent,) = kit.spans("invoke_agent")
    a = dict(agent.attributes or {})
    chats = [dict(s.attributes or {}) for s in _llm_spans(kit)]
    assert a["gen_ai.request.model"] == "gpt-5-mini" == chats[0]["gen_ai.request.model"]
    assert a["gen_ai.usage.input_tokens"] == sum(c["gen_ai.usage.input_tokens"] for c in chats)
    assert a["gen_ai.usage.output_tokens"] == sum(c["gen_ai.usage.output_tokens"] for c in chats) == 12
    assert a["gen_ai.response.finish_reasons"] == ("stop", "stop")
    (point,) = [attrs for attrs, _ in kit.points("gen_ai.invoke_agent.duration")]
    assert point["gen_ai.request.model"] == "gpt-5-mini"


def test_failed_call_emits_the_operation_exception_event(kit: Kit, server: LLMServer, litellm_mod: Any) -> None:
    """gen_ai.client.operation.exception (recommended, severity WARN), parented to the failed call's span."""
    with pytest.raises(Exception) as info:
        litellm_mod.completion(**_kw(server, "fail [[error:500]]", max_retries=0))
    (span,) = _llm_spans(kit)
    kit.force_flush()
    events = [r.log_record for r in kit.logs() if r.log_record.event_name == "gen_ai.client.operation.exception"]
    assert len(events) == 1
    ev = events[0]
    assert ev.severity_number is not None and ev.severity_number.value == 13  # WARN
    assert ev.span_id == span.context.span_id and ev.trace_id == span.context.trace_id
    cls = type(info.value)
    assert (ev.attributes or {})["exception.type"] == f"{cls.__module__}.{cls.__qualname__}"
    assert str((ev.attributes or {})["exception.stacktrace"]).startswith("Traceback (most recent call last):")


def test_tool_definitions_validate_against_the_registry_schema(server: LLMServer, litellm_mod: Any) -> None:
    """gen_ai.tool.definitions from OpenAI-shaped ``tools`` (name nested under ``function``) must be the
    registry's shape: model/gen-ai/gen-ai-tool-definitions.json, vendored verbatim in tests/data/semconv."""
    import jsonschema

    schema = json.loads(_SCHEMA.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    tools = [
        {"type": "function", "function": {"name": "web_search", "description": "Search the web",
                                          "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                                         "required": ["q"]}}},
        {"type": "function", "function": {"name": "sb_shell", "parameters": {"type": "object"}}},
    ]
    k = make_kit(capture_content=True)
    _state.configure(k)
    try:
        litellm_mod.completion(**_kw(server, "use a tool [[words:2]]", tools=tools))
        value = json.loads(str(dict(_llm_spans(k)[0].attributes or {})["gen_ai.tool.definitions"]))
    finally:
        _state.unconfigure()
        k.shutdown()
    assert [e.message for e in validator.iter_errors(value)] == []
    # Valid as FunctionToolDefinition specifically (the generic branch alone accepts any typed, named object).
    func = schema["$defs"]["FunctionToolDefinition"]
    for item in value:
        assert [e.message for e in jsonschema.Draft202012Validator(func).iter_errors(item)] == []
    assert [(t["type"], t["name"]) for t in value] == [("function", "web_search"), ("function", "sb_shell")]
    assert value[0]["parameters"]["required"] == ["q"] and value[0]["description"] == "Search the web"


# --- one stream proxy for every path (issue 20)

PATHS = ("completion", "acompletion", "router.completion", "router.acompletion")
STOPS = ("exhaust", "close", "break")


def _call_for(path: str, litellm_mod: Any, server: LLMServer, prompt: str) -> tuple[Any, dict[str, Any]]:
    kw = _kw(server, prompt, stream=True)
    if not path.startswith("router."):
        return getattr(litellm_mod, path), kw
    router = litellm_mod.Router(model_list=[{"model_name": "fast", "litellm_params": {
        "model": "openai/gpt-5-mini", "api_base": server.base_url, "api_key": "sk-test"}}])
    return getattr(router, path.split(".")[1]), {**kw, "model": "fast"}


def _check_proxy(stream: Any, litellm_mod: Any) -> None:
    from agentpress_otel.integrations._litellm_stream import _Stream

    assert type(stream) is _Stream, type(stream)
    assert isinstance(stream, litellm_mod.CustomStreamWrapper)  # still transparent


async def _run_stream(path: str, stop: str, litellm_mod: Any, server: LLMServer) -> int:
    """Open and read a stream as a caller would, stopping as ``stop`` says, then drop it; returns chunks read.

    Sync paths run in a worker thread, as sync code does in an async app (and LiteLLM 1.75's sync Router,
    called on a running event loop, loses the context of its nested call: a second, unrelated span)."""
    fn, kw = _call_for(path, litellm_mod, server, "stream [[words:8]]")
    n = 0
    if path.endswith("acompletion"):
        stream = await fn(**kw)
        _check_proxy(stream, litellm_mod)
        async for _ in stream:
            n += 1
            if stop != "exhaust" and n == 2:
                break
        if stop == "close":
            await stream.aclose()
        del stream
        return n

    def sync() -> int:
        nonlocal n
        stream = fn(**kw)
        _check_proxy(stream, litellm_mod)
        for _ in stream:
            n += 1
            if stop != "exhaust" and n == 2:
                break
        if stop == "close":
            stream.close()
        del stream
        return n

    return await asyncio.to_thread(sync)


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("path", PATHS)
async def test_every_path_gets_the_one_proxy_and_ends_once(kit: Kit, server: LLMServer, litellm_mod: Any,
                                                          path: str, stop: str) -> None:
    """completion, acompletion and both Router methods return the same proxy type; exhausting, closing or
    breaking out (then dropping it) ends the span once, marked closed early unless the stream was read to the end."""
    assert await _run_stream(path, stop, litellm_mod, server) >= 2
    gc.collect()
    gc.collect()  # twice: the finalizer of a dropped proxy may run in the second pass
    spans = _llm_spans(kit)
    assert len(spans) == 1, [(x.name, dict(x.attributes or {})) for x in spans]
    (s,) = spans
    a = dict(s.attributes or {})
    assert s.status.status_code == StatusCode.UNSET
    assert a.get("agentpress.closed_early", False) is (stop != "exhaust"), a
    assert a["gen_ai.request.model"] == ("fast" if path.startswith("router.") else "gpt-5-mini")
    assert kit.metric_count("gen_ai.client.operation.duration") == 1
    if stop == "exhaust":
        assert a["gen_ai.response.finish_reasons"] == ("stop",)
        assert a["gen_ai.response.time_to_first_chunk"] > 0


def test_odd_chunk_shapes_are_skipped_not_raised(kit: Kit) -> None:
    """Chunks of unexpected shapes (choices not a list, a non-text content, tool_calls a string) are skipped one
    field at a time, in strict mode too: the valid fields still land on the span, which ends normally."""
    from agentpress_otel.genai import LLMCall
    from agentpress_otel.integrations._litellm_stream import _StreamState

    call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
    state = _StreamState(call, "gpt-5-mini", None)
    for chunk in ({"id": "c-1", "model": "gpt-5-mini", "choices": 5},
                  {"choices": [{"delta": {"content": 3, "tool_calls": "x"}}]},
                  {"choices": [None, {"delta": None, "finish_reason": "stop"}]},
                  {"usage": {"prompt_tokens": 7, "completion_tokens": 2}}):
        state.observe(chunk)
    state.finish_stream()
    (s,) = _llm_spans(kit)
    a = dict(s.attributes or {})
    assert a["gen_ai.response.id"] == "c-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (7, 2)
    assert "agentpress.usage.estimated" not in a


def test_stream_proxy_refuses_the_iteration_its_stream_lacks(kit: Kit) -> None:
    """The one proxy class offers both ways of iterating; over a plain generator ``async for`` is refused with the
    TypeError Python gives, before any chunk is read (the span is not marked as an error by the refusal)."""
    import asyncio

    from agentpress_otel.genai import LLMCall
    from agentpress_otel.integrations._litellm_stream import _Stream, _StreamState

    call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
    proxy = _Stream((c for c in ({"choices": [{"delta": {"content": "hi"}}]},)), _StreamState(call, "gpt-5-mini", None),
                    is_async=False)

    async def read_async() -> None:
        async for _ in proxy:
            pass

    with pytest.raises(TypeError, match="__aiter__"):
        asyncio.run(read_async())
    assert [c["choices"][0]["delta"]["content"] for c in proxy] == ["hi"]  # the sync way still works
    (s,) = _llm_spans(kit)
    assert s.status.status_code.name != "ERROR"
    assert "error.type" not in dict(s.attributes or {})


_CHATTY_APP = """
import logging, os, sys
logging.basicConfig(level=logging.INFO)  # an app that prints its INFO lines, as most do
import agentpress_otel
tel = agentpress_otel.instrument(service_name="chatty", endpoint=os.environ["EP"], protocol="http/protobuf",
                                 integrations=["litellm", "logging"])
import litellm
litellm.suppress_debug_info = True
litellm.completion(model="openai/gpt-5-mini", api_base=os.environ["LLM"], api_key="sk-test",
                   messages=[{"role": "user", "content": "hi"}])
logging.getLogger("app").info("app line after the call")
tel.shutdown(timeout_s=10)
print("ok")
"""


@pytest.mark.parametrize("levels", ["", "LiteLLM=INFO"])
def test_litellm_info_line_is_printed_not_exported_unless_asked(server: LLMServer, levels: str) -> None:
    """In a real process that logs at INFO, LiteLLM's per-call "LiteLLM completion() ..." line is printed as without
    us but not exported over OTLP (its chat span says the same); AGENTPRESS_OTEL_LOGGER_LEVELS=LiteLLM=INFO exports
    it. The app's own INFO line is exported either way. A real OTLP/HTTP receiver takes what the process sends."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.otlp_sink import OTLPSink

    with OTLPSink() as sink:
        env = {**os.environ, "EP": sink.http_endpoint, "LLM": server.base_url, "AGENTPRESS_OTEL_LOGGER_LEVELS": levels}
        out = subprocess.run([sys.executable, "-c", _CHATTY_APP], capture_output=True, text=True, timeout=180,
                             env=env)
        assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
        with sink.lock:
            bodies = [lr.body.string_value for r in sink.received.logs for rl in r.resource_logs
                      for sl in rl.scope_logs for lr in sl.log_records]
    assert "LiteLLM completion()" in out.stderr  # printed: the precondition of what follows
    assert "app line after the call" in bodies, bodies
    exported = [b for b in bodies if "LiteLLM completion()" in b]
    assert bool(exported) == (levels == "LiteLLM=INFO"), bodies


_HTTP_SPAN_APP = r"""
import asyncio, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
if sys.argv[1] == "litellm-first":
    import litellm
import agentpress_otel
tel = agentpress_otel.instrument(service_name="http-span-app", endpoint=os.environ["EP"], protocol="http/protobuf")
import litellm
litellm.suppress_debug_info = True
kw = dict(model="openai/gpt-5-mini", api_base=os.environ["LLM"], api_key="sk-test",
          messages=[{"role": "user", "content": "say hi [[words:3]]"}])
async def main():
    await litellm.acompletion(**kw)
    resp = await litellm.acompletion(stream=True, stream_options={"include_usage": True}, **kw)
    async for _ in resp:
        pass
asyncio.run(main())
tel.shutdown()
print("ok")
"""


@pytest.mark.parametrize(("order", "mode"), [("instrument-first", "failures"), ("litellm-first", "failures"),
                                             ("instrument-first", "all"), ("litellm-first", "all")])
def test_async_litellm_calls_send_a_traceparent_and_count_their_http_request(server: LLMServer, order: str,
                                                                             mode: str) -> None:
    """LiteLLM's async calls go through its aiohttp transport, not httpx's: in a real process with the default
    instrument(), whichever of LiteLLM and us is imported first, http.client.request.duration has each call's request
    and the LLM server receives a traceparent of the call's trace. By default (llm_http_spans=failures) a call's one
    successful request has no span of its own: it carries the chat span's context. With
    AGENTPRESS_OTEL_LLM_HTTP_SPANS=all each request is a CLIENT span under its chat span and carries that span's."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.otlp_sink import OTLPSink

    server.reset()
    with OTLPSink() as sink:
        env = {**os.environ, "EP": sink.http_endpoint, "LLM": server.base_url, "AGENTPRESS_OTEL_LLM_HTTP_SPANS": mode}
        out = subprocess.run([sys.executable, "-c", _HTTP_SPAN_APP, order], capture_output=True, text=True,
                             timeout=180, env=env)
        assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
        spans = sink.spans()
        points = [(dict((a.key, a.value) for a in p.attributes), p) for m in sink.iter_metrics()
                  if m.name == "http.client.request.duration" for p in m.histogram.data_points]
    chats = {s.span_id: s for s in spans if s.name.startswith("chat ")}
    http = [s for s in spans if s.kind == 3 and not s.name.startswith("chat ")]  # SPAN_KIND_CLIENT in OTLP
    assert len(chats) == 2 and len(http) == (2 if mode == "all" else 0), [(s.name, s.kind) for s in spans]
    for s in http:
        assert s.parent_span_id in chats and s.name == "POST"
    seen = [r.headers.get("traceparent", "")[:52] for r in server.requests]  # the flags byte aside
    carriers = http if mode == "all" else list(chats.values())
    assert sorted(seen) == sorted(f"00-{s.trace_id.hex()}-{s.span_id.hex()}" for s in carriers)
    port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
    assert sum(p.count for _, p in points) == 2, points
    assert all(a["server.address"].string_value == "127.0.0.1" and a["server.port"].int_value == port
               and a["http.response.status_code"].int_value == 200 for a, _ in points), points
    # The exemplars link each point to the span its request ran under: its own, or its chat span when folded.
    linked = {e.span_id for _, p in points for e in p.exemplars}
    assert linked and linked <= {s.span_id for s in carriers}, (linked, carriers)


_RETRY_APP = r"""
import asyncio, os
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import agentpress_otel
tel = agentpress_otel.instrument(service_name="retry-app", endpoint=os.environ["EP"], protocol="http/protobuf")
import litellm
litellm.suppress_debug_info = True
kw = dict(model="openai/gpt-5-mini", api_base=os.environ["LLM"], api_key="sk-test", num_retries=2,
          messages=[{"role": "user", "content": "retry me [[flaky:429:2]] [[words:3]]"}])
asyncio.run(litellm.acompletion(**kw))
tel.shutdown()
print("ok")
"""


def test_failed_and_retried_llm_requests_keep_their_http_spans(server: LLMServer) -> None:
    """Default instrument() in a real process, a LiteLLM call with num_retries=2 against a server that answers 429
    twice: all three requests are CLIENT spans under the one chat span. The first, folded into the chat span while
    it ran, gets its span after the fact (429, error.type, its own start and end inside the chat span's); the two
    retries get theirs as they go and carry them as traceparent."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.otlp_sink import OTLPSink

    server.reset()
    with OTLPSink() as sink:
        env = {**os.environ, "EP": sink.http_endpoint, "LLM": server.base_url}
        out = subprocess.run([sys.executable, "-c", _RETRY_APP], capture_output=True, text=True, timeout=180, env=env)
        assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
        spans = sink.spans()
    (chat,) = [s for s in spans if s.name.startswith("chat ")]
    http = sorted((s for s in spans if s.name == "POST"), key=lambda s: s.start_time_unix_nano)
    codes = [next(a.value.int_value for a in s.attributes if a.key == "http.response.status_code") for s in http]
    assert codes == [429, 429, 200], [(s.name, s.attributes) for s in spans]
    for s in http:
        assert s.parent_span_id == chat.span_id and s.kind == 3
        assert chat.start_time_unix_nano <= s.start_time_unix_nano < s.end_time_unix_nano <= chat.end_time_unix_nano
    errors = [next((a.value.string_value for a in s.attributes if a.key == "error.type"), None) for s in http]
    assert errors == ["429", "429", None] and [s.status.code for s in http] == [2, 2, 0]  # ERROR, ERROR, UNSET
    seen = [r.headers.get("traceparent", "")[:52] for r in server.requests]
    assert seen == [f"00-{chat.trace_id.hex()}-{s.span_id.hex()}" for s in (chat, http[1], http[2])]
