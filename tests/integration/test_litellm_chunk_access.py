"""Reading LiteLLM stream chunks (pydantic models) must not pay pydantic's raise-and-catch per field."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported anywhere

from agentpress_otel._harness.llm_server import LLMServer
from agentpress_otel.integrations import litellm as ap_litellm

pytestmark = pytest.mark.integration

_KEYS = ("id", "model", "usage", "choices", "finish_reason", "delta", "content", "tool_calls", "role",
         "index", "function", "name", "arguments", "no_such_field", "model_config")


def _walk(obj: Any, out: list[Any]) -> None:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return
    out.append(obj)
    for k in ("choices", "delta", "tool_calls", "function", "usage"):
        v = getattr(obj, k, None)
        for x in v if isinstance(v, list) else [v]:
            _walk(x, out)


def test_chunk_fields_read_like_getattr_without_pydantic_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real LiteLLM stream chunks read by our field reader equal getattr's, without pydantic's __getattr__."""
    litellm = pytest.importorskip("litellm")
    import pydantic

    async def chunks() -> list[Any]:
        with LLMServer() as srv:
            out = []
            for prompt in ("hi", "[[tool:get_weather]] weather?"):
                resp = await litellm.acompletion(
                    model="openai/gpt-5-mini", api_base=srv.base_url, api_key="sk-test", stream=True,
                    stream_options={"include_usage": True}, messages=[{"role": "user", "content": prompt}])
                out += [c async for c in resp]
            return out

    objs: list[Any] = []
    for c in asyncio.run(chunks()):
        _walk(c, objs)
    assert any(type(o).__name__ == "Delta" for o in objs)
    expected = [[getattr(o, k, None) for k in _KEYS] for o in objs]
    calls: list[str] = []
    real = pydantic.BaseModel.__getattr__

    def spy(self: Any, item: str) -> Any:
        calls.append(item)
        return real(self, item)

    monkeypatch.setattr(pydantic.BaseModel, "__getattr__", spy)
    got = [[ap_litellm._get(o, k) for k in _KEYS] for o in objs]
    assert got == expected
    assert calls == [], sorted(set(calls))


def test_litellm_log_records_carry_no_marker_attribute() -> None:
    """LiteLLM's own log filter stamps each record with ``litellm_redacted=object()``: not exported."""
    litellm_logging = pytest.importorskip("litellm._logging")
    from types import SimpleNamespace

    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    from agentpress_otel._config import load_config
    from agentpress_otel.integrations import logging as log_integ
    from agentpress_otel.logs import flush

    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(SimpleLogRecordProcessor(exp))
    log_integ.instrument(SimpleNamespace(config=load_config({"log_level": "INFO"}, env={}), logger_provider=lp))
    try:
        litellm_logging.verbose_logger.warning("Retrying request to %s", "/v1/chat/completions", extra={"attempt": 2})
        assert flush(5.0)
    finally:
        log_integ.uninstrument()
    body = "Retrying request to /v1/chat/completions"
    (rec,) = [r.log_record for r in exp.get_finished_logs() if r.log_record.body == body]
    assert rec.attributes["attempt"] == 2
    assert "litellm_redacted" not in rec.attributes
    assert not any("object at 0x" in str(v) for v in rec.attributes.values()), dict(rec.attributes)


def test_flattened_views_read_what_field_reads() -> None:
    """One flattened view per LiteLLM object (chunks, choices, deltas, usage, responses) reads the same values as
    ``field`` key by key, without pydantic's ``__getattr__``, and never changes the object it reads."""
    litellm = pytest.importorskip("litellm")
    from agentpress_otel._text import field
    from agentpress_otel.integrations import _litellm_stream as ls

    async def objects() -> list[Any]:
        with LLMServer() as srv:
            out: list[Any] = []
            for prompt in ("hi [[words:5]]", "[[tool:get_weather]] weather?", "cached [[cached:20]]"):
                kw = {"model": "openai/gpt-5-mini", "api_base": srv.base_url, "api_key": "sk-test",
                      "messages": [{"role": "user", "content": prompt}]}
                out.append(await litellm.acompletion(**kw))
                resp = await litellm.acompletion(stream=True, stream_options={"include_usage": True}, **kw)
                out += [c async for c in resp]
            return out

    objs: list[Any] = []
    for o in asyncio.run(objects()):
        _walk(o, objs)
        for c in getattr(o, "choices", None) or ():
            _walk(getattr(c, "message", None), objs)
    kinds = {type(o).__name__ for o in objs}
    assert {"ModelResponse", "ModelResponseStream", "Delta", "Usage"} <= kinds, kinds
    before = [repr(o) for o in objs]
    keys = (*ls._READ_KEYS, "no_such_field")
    flattened = 0
    for o in objs:
        view = ls._view(o)
        flattened += not isinstance(view, ls._FieldView)
        assert [view.get(k) for k in keys] == [field(o, k) for k in keys], type(o).__name__
        f = ls.flat(o)
        if f is not o:
            assert f.get("usage") is None or isinstance(f["usage"], dict) or f["usage"] is field(o, "usage")
    assert flattened == len(objs), "every LiteLLM object here is a plain pydantic model: all flattened"
    assert [repr(o) for o in objs] == before


def _stream_chunks() -> list[Any]:
    """A stream as LiteLLM's own types carry it: text in deltas (extras), two tool calls whose ids and names come
    first and whose arguments come in fragments, interleaved; the finish reason only on the last content chunk; the
    usage only on a final chunk without choices."""
    from litellm.types.utils import (
        ChatCompletionDeltaToolCall,
        Delta,
        Function,
        ModelResponseStream,
        StreamingChoices,
        Usage,
    )

    def chunk(delta: Any = None, finish: str | None = None, **kw: Any) -> Any:
        choices = [] if delta is None else [StreamingChoices(index=0, delta=delta, finish_reason=finish)]
        return ModelResponseStream(id="chatcmpl-s1", model="gpt-5-mini-2025", choices=choices, **kw)

    def tool(index: int, args: str, call_id: str | None = None, name: str | None = None) -> Any:
        return ChatCompletionDeltaToolCall(id=call_id, type="function", index=index,
                                           function=Function(name=name, arguments=args))

    return [
        chunk(Delta(content="Hel", role="assistant"), system_fingerprint="fp_s1"),
        chunk(Delta(content="lo world")),
        chunk(Delta(tool_calls=[tool(0, "", "call_1", "get_weather")])),
        chunk(Delta(tool_calls=[tool(1, "", "call_2", "get_time")])),
        chunk(Delta(tool_calls=[tool(0, '{"city":')])),
        chunk(Delta(tool_calls=[tool(1, "{}")])),
        chunk(Delta(tool_calls=[tool(0, '"Paris"}')]), finish="tool_calls"),
        chunk(usage=Usage(prompt_tokens=31, completion_tokens=17, total_tokens=48)),
    ]


@pytest.mark.parametrize("way", ["sync", "async"])
def test_every_field_of_litellm_chunks_reaches_the_span(way: str) -> None:
    """LiteLLM's stream objects read by the per-chunk path (fields in the model dict and in the extras): the text,
    both tool calls with their assembled arguments, the finish reason of the last content chunk, the usage of the
    choice-less last chunk, the response id, model and fingerprint of the first, and one time per output chunk per
    gap, all as a plain getattr reading of the same chunks gives them (content capture on)."""
    pytest.importorskip("litellm")
    from agentpress_otel.genai import LLMCall
    from agentpress_otel.integrations._litellm_stream import _Stream, _StreamState
    from agentpress_otel.testing import make_kit

    chunks = _stream_chunks()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    args: dict[int, str] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            args[tc.index] = args.get(tc.index, "") + (tc.function.arguments or "")
    assert text == "Hello world" and args == {0: '{"city":"Paris"}', 1: "{}"}

    with make_kit(capture_content=True) as kit:
        call = LLMCall(model="gpt-5-mini", provider="openai", stream=True).start()
        if way == "sync":
            got = list(_Stream(iter(chunks), _StreamState(call, "gpt-5-mini", None), is_async=False))
        else:
            async def agen() -> Any:
                for c in chunks:
                    yield c

            async def read() -> list[Any]:
                return [c async for c in _Stream(agen(), _StreamState(call, "gpt-5-mini", None), is_async=True)]

            got = asyncio.run(read())
        assert got == chunks  # passed through untouched
        a = dict(kit.span("chat gpt-5-mini").attributes or {})
        assert a["gen_ai.response.id"] == "chatcmpl-s1" and a["gen_ai.response.model"] == "gpt-5-mini-2025"
        assert a["openai.response.system_fingerprint"] == "fp_s1"
        assert a["gen_ai.response.finish_reasons"] == ("tool_calls",)
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (31, 17)
        assert "agentpress.usage.estimated" not in a
        (msg,) = json.loads(str(a["gen_ai.output.messages"]))
        assert msg["finish_reason"] == "tool_calls"
        parts = msg["parts"]
        assert [p["content"] for p in parts if p["type"] == "text"] == [text]
        assert [(p["id"], p["name"], p["arguments"]) for p in parts if p["type"] == "tool_call"] == [
            ("call_1", "get_weather", args[0]), ("call_2", "get_time", args[1])]
        assert kit.metric_count("gen_ai.client.operation.time_per_output_chunk") == len(chunks) - 1
        assert kit.metric_count("gen_ai.client.operation.time_to_first_chunk") == 1
