"""The public LLMCall lifecycle (start/activate/deactivate/activated/end), GenAI settings from Config, and
finish reasons cleaned in one place."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from opentelemetry import trace

import agentpress_otel
from agentpress_otel import _context, _selftel, genai
from agentpress_otel.genai import Activation, GenAISettings, LLMCall, _state, current_llm_call, llm_call
from agentpress_otel.testing import Kit, capture, make_kit


def test_start_does_not_make_the_span_current_and_activate_does(kit: Kit) -> None:
    """start() opens the span without making it current; activate()/deactivate() make it current for a stretch."""
    outer = trace.get_current_span()
    call = LLMCall(model="gpt-5", provider="openai").start()
    assert call.start() is call  # idempotent, chainable
    assert trace.get_current_span() is outer and current_llm_call() is None
    token = call.activate()
    assert isinstance(token, Activation)
    assert trace.get_current_span() is call.span and current_llm_call() is call
    with kit.tracer_provider.get_tracer("test").start_as_current_span("inner"):
        pass
    call.deactivate(token)
    assert trace.get_current_span() is outer and current_llm_call() is None
    assert not kit.spans("chat")  # still open after deactivate
    call.end()
    (chat,) = kit.spans("chat gpt-5")
    (inner,) = kit.spans("inner")
    assert inner.parent is not None and inner.parent.span_id == chat.context.span_id


def test_activated_block_keeps_the_span_open_and_end_records_the_error(kit: Kit) -> None:
    """``with call.activated()`` undoes the activation on exit (also on error) without ending; end(exc) fails it."""
    call = llm_call(model="gpt-5", provider="openai").start()
    seen: list[object] = []

    def request() -> None:
        with call.activated() as active:
            seen.extend((active, current_llm_call()))
            raise TimeoutError

    with pytest.raises(TimeoutError):
        request()
    assert seen == [call, call]
    assert current_llm_call() is None and not call.ended
    call.end(TimeoutError())
    call.end()  # idempotent
    (s,) = kit.spans("chat gpt-5")
    assert s.status.status_code == trace.StatusCode.ERROR
    assert (s.attributes or {})["error.type"] == "timeout"
    assert kit.metric_count("gen_ai.client.operation.duration", error__type="timeout") == 1


def test_activation_carries_the_agent_ids_and_is_task_local(kit: Kit) -> None:
    """An activation inside one asyncio task is not seen by a sibling task; the run's ids are current with it."""
    run = genai.agent_run("a", thread_id="t-9").start()

    async def main() -> tuple[str | None, str | None]:
        async def inside() -> str | None:
            token = run.activate()
            await asyncio.sleep(0)
            tid = _context.current_ids().get("thread_id")
            run.deactivate(token)
            return tid

        async def sibling() -> str | None:
            await asyncio.sleep(0)
            return _context.current_ids().get("thread_id")

        a, b = await asyncio.gather(inside(), sibling())
        return a, b

    assert asyncio.run(main()) == ("t-9", None)
    run.end()
    (s,) = kit.spans("invoke_agent a")
    assert (s.attributes or {})["gen_ai.conversation.id"] == "t-9"


def test_activate_before_start_and_deactivate_none_are_harmless(kit: Kit) -> None:
    """activate() on a call never started returns None, and deactivate(None) does nothing."""
    call = llm_call(model="gpt-5", provider="openai")
    assert call.activate() is None
    call.deactivate(None)
    assert _selftel.errors() == 0


def test_streamed_chunks_through_the_public_lifecycle(kit: Kit) -> None:
    """The lifecycle an integration drives for a stream: start, activate around the request, chunk, end."""
    call = llm_call(model="gpt-5", provider="openai", stream=True).start()
    with call.activated():
        pass  # the request is sent here; the stream is consumed after the wrapper returned
    for _ in range(3):
        call.chunk()
    call.set_response(finish_reasons="stop")
    call.end()
    a = dict(kit.spans("chat gpt-5")[0].attributes or {})
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.response.time_to_first_chunk"] >= 0
    assert kit.metric_count("gen_ai.client.operation.time_per_output_chunk") == 2


def test_finish_reasons_are_cleaned_in_one_place(capture_kit: Kit) -> None:
    """Empty finish reasons are dropped the same way in set_response, record_response and output messages."""
    with llm_call(model="gpt-5", provider="openai") as c:
        c.set_response(finish_reasons=("stop", None, ""))  # type: ignore[arg-type]
    resp = {"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": "hi"}},
                        {"finish_reason": None, "message": {"role": "assistant", "content": "x"}}]}
    with llm_call(model="gpt-4o", provider="openai") as c:
        c.record_response(resp)
    with llm_call(model="gpt-4.1", provider="openai") as c:
        c.set_output_messages([{"role": "assistant", "content": "ok"}], finish_reasons="stop")
    assert (capture_kit.spans("chat gpt-5")[0].attributes or {})["gen_ai.response.finish_reasons"] == ("stop",)
    a = dict(capture_kit.spans("chat gpt-4o")[0].attributes or {})
    assert a["gen_ai.response.finish_reasons"] == ("length",)
    assert '"finish_reason":"length"' in str(a["gen_ai.output.messages"])
    out = str((capture_kit.spans("chat gpt-4.1")[0].attributes or {})["gen_ai.output.messages"])
    assert '"finish_reason":"stop"' in out


def test_settings_are_frozen_and_come_from_config(kit: Kit) -> None:
    """GenAI reads one frozen settings object, resolved from the Config the handle was built with."""
    with make_kit(capture_content=True, content_max_chars=50, redact=False):
        st = _state.STATE.settings
        assert st == GenAISettings(capture_content=True, content_max_chars=50, redact=False)
        with pytest.raises(dataclasses.FrozenInstanceError):
            st.capture_content = False  # type: ignore[misc]
        assert llm_call(model="m", provider="p").capture is True
    assert _state.STATE.settings == GenAISettings()


def test_capture_variable_is_read_by_instrument_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    """AGENTPRESS_OTEL_CAPTURE_CONTENT acts through instrument()'s Config; GenAI has no env parser of its own."""
    monkeypatch.setenv("AGENTPRESS_OTEL_CAPTURE_CONTENT", "true")
    genai.unconfigure()
    assert llm_call(model="m", provider="p").capture is False  # not instrumented: nothing resolved the variable
    with capture(service_name="t") as cap:
        assert cap.telemetry.config.sources["capture_content"] == "AGENTPRESS_OTEL_CAPTURE_CONTENT"
        with llm_call(model="m", provider="p", messages=[{"role": "user", "content": "hi"}]):
            pass
        assert '"content":"hi"' in str((cap.span("chat m").attributes or {})["gen_ai.input.messages"])
    with capture(service_name="t", capture_content=False) as cap:  # the argument wins over the variable
        with llm_call(model="m", provider="p", messages=[{"role": "user", "content": "hi"}]):
            pass
        assert "gen_ai.input.messages" not in (cap.span("chat m").attributes or {})
    assert agentpress_otel.genai.GenAISettings is GenAISettings


def test_chunk_stamps_give_every_gap_and_linked_first_chunk_time(kit: Kit) -> None:
    """Chunk timestamps are kept and turned into metric values when the metrics are replayed: the time to first
    chunk is the first stamp minus the start, the time per output chunk gets each gap between stamps (the first
    MAX_CHUNK_GAPS of a stream), ``chunks`` counts every call, and both duration and time to first chunk keep
    their exemplar (trace link) through the collect-time drain."""
    from itertools import pairwise

    from agentpress_otel.genai._llm import MAX_CHUNK_GAPS

    call = llm_call(model="gpt-5", provider="openai", stream=True).start()
    t0 = call._t0
    stamps = [t0 + 0.25 + 0.01 * i + 0.003 * (i % 3) for i in range(MAX_CHUNK_GAPS + 900)]
    for t in stamps:
        call.chunk(now=t)
    call.end()
    assert call.chunks == len(stamps)
    span = kit.span("chat gpt-5")
    assert (span.attributes or {})["gen_ai.response.time_to_first_chunk"] == stamps[0] - t0
    gaps = [b - a for a, b in pairwise(stamps[:MAX_CHUNK_GAPS + 1])]
    points = kit.metrics()  # one collection: exemplars are handed out once per collection
    (tpoc,) = points["gen_ai.client.operation.time_per_output_chunk"]
    assert (tpoc.count, tpoc.min, tpoc.max) == (MAX_CHUNK_GAPS, min(gaps), max(gaps))
    assert tpoc.sum == pytest.approx(sum(gaps))
    assert not tpoc.exemplars  # values without a context carry none, as before
    (ttfc,) = points["gen_ai.client.operation.time_to_first_chunk"]
    assert ttfc.count == 1 and [e.span_id for e in ttfc.exemplars] == [span.context.span_id]
    (duration,) = points["gen_ai.client.operation.duration"]
    assert duration.count == 1
