"""GenAI helpers under hostile input and odd lifecycles: nothing raises into user code, every span ends
once, no caller data is retained, and prices are never guessed from a model's family."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
import math
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import StatusCode

from agentpress_otel import _selftel
from agentpress_otel._config import load_config
from agentpress_otel.genai import _state, _usage, agent_run, llm_call, record_score, tool_call
from agentpress_otel.genai import prices as prices_mod
from agentpress_otel.testing import Kit


def _attrs(kit: Kit, name: str) -> dict[str, Any]:
    (s,) = kit.spans(name)
    return dict(s.attributes or {})


# ------------------------------------------------------------- coroutine returning an async generator


async def test_generator_returned_by_coroutine_but_never_iterated_still_ends_span(kit: Kit) -> None:
    """A generator returned by a decorated coroutine and never iterated still ends its span, closed early."""
    async def chunks() -> AsyncIterator[str]:
        yield "a"

    @agent_run("run_thread", thread_id="t1")
    async def run_thread() -> AsyncIterator[str]:
        return chunks()

    for _ in range(5):
        gen = await run_thread()  # the caller fails before iterating (e.g. a billing check raises)
        assert inspect.isasyncgen(gen)  # the proxy is transparent
        del gen
    gc.collect()
    spans = kit.spans("invoke_agent run_thread")
    assert len(spans) == 5
    assert all((s.attributes or {})["agentpress.closed_early"] is True for s in spans)
    assert all(s.status.status_code == StatusCode.UNSET for s in spans)
    assert kit.metric_sum("agentpress.agent.active_runs") == 0
    assert kit.metric_count("gen_ai.invoke_agent.duration") == 5


async def test_generator_returned_by_coroutine_closed_before_iterating(kit: Kit) -> None:
    """A returned generator closed before iterating ends its span early; a fresh one still yields normally."""
    async def chunks() -> AsyncGenerator[str, None]:
        yield "a"

    @agent_run("run_thread")
    async def run_thread() -> AsyncGenerator[str, None]:
        return chunks()

    gen = await run_thread()
    await gen.aclose()
    assert (_attrs(kit, "invoke_agent")["agentpress.closed_early"]) is True
    gen2 = await run_thread()
    assert [c async for c in gen2] == ["a"]
    assert len(kit.spans("invoke_agent")) == 2
    assert kit.metric_count("gen_ai.invoke_agent.duration") == 2


# ----------------------------------------------------------------------- throw / athrow forwarding


def test_throw_is_forwarded_into_a_decorated_generator(kit: Kit) -> None:
    """``throw()`` reaches the decorated generator, which can recover, and its span is not an error."""
    def inner() -> Generator[str, None, None]:
        while True:
            try:
                yield "v"
            except ValueError:
                yield "recovered"

    w = tool_call("thrower")(inner)()
    assert next(w) == "v"
    assert w.throw(ValueError("x")) == "recovered"
    assert next(w) == "v"
    w.close()
    (s,) = kit.spans("execute_tool thrower")
    assert s.status.status_code == StatusCode.UNSET


def test_contextmanager_over_decorated_generator_still_suppresses(kit: Kit) -> None:
    """A contextmanager built on a decorated generator still suppresses exceptions, and records those it does not."""
    @contextlib.contextmanager
    @tool_call("cm")
    def suppressing() -> Iterator[None]:
        try:
            yield
        except KeyError:
            pass

    with suppressing():
        raise KeyError("k")
    (s,) = kit.spans("execute_tool cm")
    assert s.status.status_code == StatusCode.UNSET

    @contextlib.contextmanager
    @tool_call("cm_raises")
    def passing() -> Iterator[None]:
        yield

    with pytest.raises(KeyError), passing():
        raise KeyError("k")
    assert _attrs(kit, "execute_tool cm_raises")["error.type"] == "KeyError"


async def test_athrow_is_forwarded_into_a_decorated_async_generator(kit: Kit) -> None:
    """``athrow()`` reaches the decorated async generator, which can recover, and its span is not an error."""
    async def inner() -> AsyncGenerator[str, None]:
        while True:
            try:
                yield "v"
            except ValueError:
                yield "recovered"

    a = tool_call("athrower")(inner)()
    assert await a.__anext__() == "v"
    assert await a.athrow(ValueError("x")) == "recovered"
    await a.aclose()
    assert len(kit.spans("execute_tool athrower")) == 1

    async def chunks() -> AsyncGenerator[str, None]:
        try:
            yield "a"
        except ValueError:
            yield "handled"

    @agent_run("run_thread")
    async def run_thread() -> AsyncGenerator[str, None]:
        return chunks()

    gen = await run_thread()
    assert await gen.__anext__() == "a"
    assert await gen.athrow(ValueError("y")) == "handled"
    with pytest.raises(StopAsyncIteration):
        await gen.__anext__()
    assert kit.spans("invoke_agent run_thread")[0].status.status_code == StatusCode.UNSET


# -------------------------------------------------------------------------------- setters never raise


@pytest.mark.parametrize("bad", ["abc", float("nan"), float("inf"), [1], -5, True, object()])
def test_set_usage_ignores_and_counts_bad_values(kit: Kit, bad: Any) -> None:
    """set_usage() skips and counts invalid token values and keeps the valid ones."""
    before = _selftel.errors("genai.invalid_value")
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_usage(input_tokens=bad, output_tokens=7, cache_read_tokens=bad)
    a = _attrs(kit, "chat gpt-5")
    assert "gen_ai.usage.input_tokens" not in a and "gen_ai.usage.cache_read.input_tokens" not in a
    assert a["gen_ai.usage.output_tokens"] == 7
    assert _selftel.errors("genai.invalid_value") - before == 2
    assert kit.metric_sum("gen_ai.client.token.usage", gen_ai__token__type="output") == 7


def test_set_usage_converts_numeric_strings_and_floats(kit: Kit) -> None:
    """set_usage() accepts numeric strings and whole floats as token counts."""
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_usage(input_tokens="12", output_tokens=3.0)
    a = _attrs(kit, "chat gpt-5")
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 3


def test_timing_setters_validate_and_span_always_ends(kit: Kit) -> None:
    """Invalid timing values are counted and skipped; valid ones set time-to-first-chunk; the span ends."""
    before = _selftel.errors("genai.invalid_value")
    with llm_call(model="gpt-5", provider="openai") as c:
        c.chunk("now")
        c.chunk()
        c.set_time_to_first_chunk("abc")
        c.set_time_to_first_chunk(float("nan"))
        c.set_time_to_first_chunk(-1.0)
    assert _selftel.errors("genai.invalid_value") - before == 4
    a = _attrs(kit, "chat gpt-5")
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    with llm_call(model="gpt-5-mini", provider="openai") as c:
        c.set_time_to_first_chunk("0.25")
    assert _attrs(kit, "chat gpt-5-mini")["gen_ai.response.time_to_first_chunk"] == 0.25


def test_span_ends_even_when_end_processing_fails(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """The LLM span still ends when processing at its end raises."""
    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("price table broken")

    monkeypatch.setattr(prices_mod, "lookup", boom)
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_usage(input_tokens=1, output_tokens=1)
    assert len(kit.spans("chat gpt-5")) == 1


def test_decorated_llm_call_with_hostile_return_value(kit: Kit) -> None:
    """A decorated LLM function's odd return value is returned unchanged and the span still ends."""
    class Weird:
        def __getattr__(self, k: str) -> Any:
            raise KeyError(k)  # a common mistake: KeyError instead of AttributeError

    @llm_call(model="gpt-5", provider="openai")
    def call() -> Weird:
        return Weird()

    assert isinstance(call(), Weird)
    assert len(kit.spans("chat gpt-5")) == 1


def test_set_response_single_string_finish_reason(kit: Kit) -> None:
    """A single string finish reason is recorded as a one-item tuple."""
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_response(id="r1", finish_reasons="stop")
    assert _attrs(kit, "chat")["gen_ai.response.finish_reasons"] == ("stop",)


def test_one_bad_request_param_keeps_the_span_and_the_rest(kit: Kit) -> None:
    """A bad request parameter is dropped while the span and the valid parameters are kept."""
    with llm_call(model="gpt-5", provider="openai", stop=5, n="x", temperature=0.5, top_p=[1],
                  response_format={"type": "text"}, max_tokens=10):
        pass
    a = _attrs(kit, "chat gpt-5")
    assert a["gen_ai.request.temperature"] == 0.5 and a["gen_ai.request.max_tokens"] == 10
    assert "gen_ai.request.stop_sequences" not in a and "gen_ai.request.top_p" not in a
    assert a["gen_ai.output.type"] == "text"


@pytest.mark.parametrize(("rf", "expected"), [
    ({"type": "text"}, "text"), ({"type": "json_object"}, "json"), ({"type": "json_schema", "json_schema": {}}, "json"),
    (dict, "json"), ({"type": "weird"}, None),
])
def test_response_format_to_output_type(kit: Kit, rf: Any, expected: str | None) -> None:
    """Each response_format maps to the expected ``gen_ai.output.type``."""
    with llm_call(model="gpt-5", provider="openai", response_format=rf):
        pass
    assert _attrs(kit, "chat").get("gen_ai.output.type") == expected


# ---------------------------------------------------------------------------------------- usage shapes


def test_record_usage_anthropic_shape_adds_cache_to_input(kit: Kit) -> None:
    """Anthropic usage adds cache reads and writes to the input tokens and prices them."""
    with llm_call(model="claude-sonnet-4", provider="anthropic") as c:
        assert c.record_usage({"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 1000,
                               "cache_creation_input_tokens": 200})
    a = _attrs(kit, "chat")
    assert a["gen_ai.usage.input_tokens"] == 1300
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.cache_creation.input_tokens"] == 200  # Baseline A name
    expected = (100 * 3.0 + 1000 * 0.30 + 200 * 3.75 + 50 * 15.0) / 1e6
    assert a["agentpress.llm.cost_usd"] == pytest.approx(expected)


def test_record_usage_openai_responses_shape(kit: Kit) -> None:
    """OpenAI Responses usage keeps input tokens as given and reads cached and reasoning tokens."""
    with llm_call(model="gpt-5", provider="openai") as c:
        assert c.record_usage({"input_tokens": 1200, "output_tokens": 300, "total_tokens": 1500,
                               "input_tokens_details": {"cached_tokens": 1000},
                               "output_tokens_details": {"reasoning_tokens": 200}})
    a = _attrs(kit, "chat")
    assert a["gen_ai.usage.input_tokens"] == 1200  # already includes the cached tokens
    assert a["gen_ai.usage.cache_read.input_tokens"] == 1000
    assert a["gen_ai.usage.reasoning.output_tokens"] == 200
    assert a["gen_ai.usage.output_tokens"] == 300


# ------------------------------------------------------------------------------ retention and deferral


class _History(list[Any]):
    """A message list we can hold a weak reference to."""


def test_pending_metrics_do_not_keep_the_message_history_alive(capture_kit: Kit) -> None:
    """Deferred metrics do not keep the caller's message history or the call object alive."""
    ins = _state.STATE.instruments
    assert ins.deferred
    history = _History([{"role": "user", "content": "x" * 1000}])
    ref = weakref.ref(history)
    call = llm_call(model="gpt-5", provider="openai", messages=history)
    call_ref = weakref.ref(call)
    with call as c:
        c.set_usage(input_tokens=10, output_tokens=5)
    del history, call, c
    gc.collect()
    assert len(ins.pending) == 1  # not collected yet...
    assert ref() is None and call_ref() is None  # ...but the caller's history and the call are gone
    a = _attrs(capture_kit, "chat")
    assert '"role":"user"' in a["gen_ai.input.messages"]  # content was captured at start
    # Exemplars still link the duration to the span.
    span = capture_kit.spans("chat")[0]
    (point,) = [p for _, p in capture_kit.points("gen_ai.client.operation.duration")]
    assert [e.span_id for e in point.exemplars] == [span.context.span_id]


def test_without_a_metric_reader_nothing_is_queued() -> None:
    """Without a metric reader, no measurement is queued."""
    class Tel:
        tracer_provider = TracerProvider()
        meter_provider = MeterProvider(metric_readers=[])
        logger_provider = None
        config = load_config({})

    _state.configure(Tel())
    ins = _state.STATE.instruments
    assert not ins.deferred
    for _ in range(20):
        with llm_call(model="gpt-5", provider="openai") as c:
            c.set_usage(input_tokens=1, output_tokens=1)
        with tool_call("t"):
            pass
    assert len(ins.pending) == 0 and not ins.sums


def test_response_maps_are_bounded() -> None:
    """The response-id map stays bounded and keeps the newest entries."""
    lru = _usage._LRU(size=10)
    for i in range(1000):
        lru.put(i, (None, "p", "m"))  # type: ignore[arg-type]
    assert len(lru.young) + len(lru.old) <= 20
    assert lru.get(999) is not None and lru.get(0) is None


# ------------------------------------------------------------------------------------- metric labels


def test_metric_labels_follow_semconv(kit: Kit) -> None:
    """Metric labels follow the GenAI semantic conventions (error.type only on durations)."""
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_usage(input_tokens=5, output_tokens=1)
        c.fail(ValueError("x"))
    for attrs, _ in kit.points("gen_ai.client.token.usage"):
        assert "error.type" not in attrs  # semconv: error.type is a duration label only
    assert kit.metric_count("gen_ai.client.operation.duration", error__type="ValueError") == 1
    with agent_run("suna", model="gpt-5-mini"), tool_call("search", tool_type="extension"):
        pass
    assert kit.metric_count("gen_ai.invoke_agent.duration", gen_ai__request__model="gpt-5-mini") == 1
    assert kit.metric_count("gen_ai.execute_tool.duration", gen_ai__tool__type="extension") == 1


# ---------------------------------------------------------------------------------------------- scores


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf, "abc"])
def test_record_score_rejects_non_finite(kit: Kit, bad: Any) -> None:
    """record_score() rejects non-finite values, counts them, and records nothing."""
    before = _selftel.errors("genai.score")
    assert record_score("judge", bad) is False
    assert _selftel.errors("genai.score") - before == 1
    assert kit.metric_count("agentpress.evaluation.score") == 0
    kit.force_flush()
    assert kit.logs() == []


def test_record_score_rejects_missing_name(kit: Kit) -> None:
    """record_score() without a name records nothing."""
    assert record_score(None, 0.5) is False  # type: ignore[arg-type]
    assert kit.metric_count("agentpress.evaluation.score") == 0


def test_record_score_explanation_model_provider_and_return_value(kit: Kit) -> None:
    """record_score() stringifies the explanation, labels from arguments, and targets the current span by default."""
    tracer = kit.tracer_provider.get_tracer("t")
    with tracer.start_as_current_span("feedback_request"):
        # The evaluated call ran in another process: not found here, labelled from the arguments.
        assert record_score("thumbs", 1.0, label="up", explanation=123, response_id="elsewhere",  # type: ignore[arg-type]
                            model="gpt-5-mini", provider="openai") is False
        # No evaluated span named: the current span is the target.
        assert record_score("judge", 0.5) is True
    kit.force_flush()
    recs = [lr.log_record for lr in kit.logs()]
    assert dict(recs[0].attributes or {})["gen_ai.evaluation.explanation"] == "123"
    assert dict(recs[0].attributes or {})["gen_ai.response.id"] == "elsewhere"
    assert kit.metric_sum("agentpress.evaluation.score", gen_ai__evaluation__name="thumbs",
                          gen_ai__request__model="gpt-5-mini", gen_ai__provider__name="openai") == 1.0


# ---------------------------------------------------------------------------------------------- prices


@pytest.mark.parametrize(("model", "price"), [
    ("gpt-4.1-nano", prices_mod.Price(0.10, 0.40, 0.025)),
    ("openai/gpt-4.1-nano-2025-04-14", prices_mod.Price(0.10, 0.40, 0.025)),
    ("o3-pro", prices_mod.Price(20.00, 80.00)),
    ("o3-mini", prices_mod.Price(1.10, 4.40, 0.55)),
    ("gemini/gemini-2.5-flash-lite", prices_mod.Price(0.10, 0.40, 0.025)),
    ("gpt-4o-2024-05-13", prices_mod.Price(5.00, 15.00)),
    ("gpt-5-chat-latest", prices_mod.DEFAULT_PRICES["gpt-5"]),
    ("gemini-2.5-pro-preview-06-05", prices_mod.DEFAULT_PRICES["gemini-2.5-pro"]),
    ("xai/grok-4-0709", prices_mod.DEFAULT_PRICES["grok-4"]),
    ("bedrock/us.anthropic.claude-3-7-sonnet-20250219-v1:0", prices_mod.DEFAULT_PRICES["claude-3-7-sonnet"]),
    ("vertex_ai/claude-sonnet-4@20250514", prices_mod.DEFAULT_PRICES["claude-sonnet-4"]),
    ("openrouter/moonshotai/kimi-k2:free", prices_mod.Price(0.0, 0.0, 0.0, 0.0)),
    ("openrouter/some-vendor/unlisted-model:free", prices_mod.Price(0.0, 0.0, 0.0, 0.0)),
])
def test_price_variants(model: str, price: prices_mod.Price) -> None:
    """Model name variants resolve to the expected price entries."""
    assert prices_mod.lookup(model) == price


@pytest.mark.parametrize("model", [
    "grok-4-fast", "gpt-5-pro", "o1-pro", "gpt-4.1-mega", "openrouter/openai/gpt-5:nitro",
    "qwen/qwen3-235b-a22b-2507", "gemini-2.5-flash-image-preview", "claude-sonnet-4-5",
])
def test_unlisted_variants_are_unpriced_not_priced_as_their_family(kit: Kit, model: str) -> None:
    """An unlisted variant is unpriced and counted, not priced as its model family."""
    assert prices_mod.lookup(model) is None
    with llm_call(model=model, provider="x") as c:
        c.set_usage(input_tokens=10, output_tokens=10)
    assert "agentpress.llm.cost_usd" not in _attrs(kit, "chat")
    assert kit.metric_sum("agentpress.llm.unpriced", gen_ai__request__model=model) == 1


def test_free_variant_costs_zero(kit: Kit) -> None:
    """A ``:free`` model variant costs zero and is not counted as unpriced."""
    with llm_call(model="moonshotai/kimi-k2:free", provider="openrouter") as c:
        c.set_usage(input_tokens=1000, output_tokens=1000)
    assert _attrs(kit, "chat")["agentpress.llm.cost_usd"] == 0.0
    assert kit.metric_sum("agentpress.llm.unpriced") == 0


# ------------------------------------------------------------------------------------- configuration


def test_invalid_capture_env_value_warns_and_captures_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """An invalid content-capture env value warns and captures nothing; ``span_only`` captures."""
    logger = logging.getLogger("agentpress_otel.internal")
    logger.addHandler(caplog.handler)
    try:
        cfg = load_config({}, env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "bogus"})
    finally:
        logger.removeHandler(caplog.handler)
    assert cfg.capture_content is False
    assert any("bogus" in r.getMessage() for r in caplog.records)
    assert load_config({}, env={"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only"}).capture_content


async def test_cancel_while_suspended_in_generator_wrapper(kit: Kit) -> None:
    """Cancelling a task suspended in a decorated async generator ends its span with error.type cancelled."""
    @tool_call("slow_gen")
    async def gen() -> AsyncIterator[int]:
        yield 1
        await asyncio.sleep(10)
        yield 2

    async def consume() -> None:
        async for _ in gen():
            pass

    t = asyncio.create_task(consume())
    await asyncio.sleep(0.01)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert _attrs(kit, "execute_tool slow_gen")["error.type"] == "cancelled"
