"""genai._span_attrs.set_attributes leaves an SDK span exactly as ``Span.set_attributes`` leaves it.

Each case starts two real SDK spans the same way (same limits, same start attributes), ends one through the SDK's
``set_attributes`` and one through ours, exports both to an in-memory exporter and compares what was exported:
the attributes in order, their values and types, and the dropped-attribute count.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentpress_otel.genai import _span_attrs

START = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5-mini"}
END = {"gen_ai.response.model": "gpt-5-mini-2025", "gen_ai.response.id": "chatcmpl-1",
       "gen_ai.response.finish_reasons": ["stop", "length"], "gen_ai.usage.input_tokens": 69,
       "gen_ai.usage.output_tokens": 12, "gen_ai.response.time_to_first_chunk": 0.0123,
       "agentpress.llm.cost_usd": 4.125e-05, "agentpress.closed_early": True}


class _Odd:
    def __str__(self) -> str:
        return "odd"


def _exported(attrs: dict[Any, Any], *, ours: bool, limits: SpanLimits | None = None, end_first: bool = False,
              start: dict[str, Any] | None = None) -> tuple[Any, ...]:
    exporter = InMemorySpanExporter()
    tp = TracerProvider(span_limits=limits or SpanLimits())
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    span = tp.get_tracer("t").start_span("chat gpt-5-mini", attributes=START if start is None else start)
    if end_first:
        span.end()
    if ours:
        _span_attrs.set_attributes(span, attrs)
    else:
        span.set_attributes(attrs)
    span.end()
    (s,) = exporter.get_finished_spans()
    tp.shutdown()
    items = list((s.attributes or {}).items())
    return items, [type(v).__name__ for _, v in items], s.dropped_attributes


CASES: dict[str, tuple[dict[Any, Any], dict[str, Any]]] = {
    "clean end attributes": (END, {}),
    "a key set at start again (moves to the end)": ({**END, "gen_ai.request.model": "other"}, {}),
    "tuples and lists of numbers and booleans": ({"a": (1, 2), "b": [0.5, 1.5], "c": [True, False], "d": []}, {}),
    "a string over the length limit": ({**END, "gen_ai.output.messages": "x" * 100}, {"max_attribute_length": 40}),
    "a list item over the length limit": ({"gen_ai.response.finish_reasons": ["s" * 50]},
                                          {"max_attribute_length": 40}),
    "strings at the length limit": ({"x": "y" * 40, "z": ["w" * 40]}, {"max_attribute_length": 40}),
    "more than the span may hold": (END, {"max_span_attributes": 9}),
    "exactly what the span may hold": (END, {"max_span_attributes": 11}),
    "a None, bytes and an object": ({**END, "n": None, "b": b"raw", "o": _Odd()}, {}),
    "a list of mixed objects": ({"l": ["a", _Odd(), None]}, {}),
    "a non-string and an empty key": ({**END, 5: "five", "": "empty"}, {}),
    "an int subclass": ({"flag": logging.INFO, "b": True}, {}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_span_as_the_sdk_set_attributes(name: str) -> None:
    """Each case exports the same attributes, in the same order and types, with the same dropped count."""
    attrs, limits = CASES[name]
    sdk = _exported(attrs, ours=False, limits=SpanLimits(**limits))
    ours = _exported(attrs, ours=True, limits=SpanLimits(**limits))
    assert ours == sdk


def test_an_ended_span_is_left_alone() -> None:
    """Attributes set after the span ended are ignored, as the SDK ignores them."""
    assert _exported(END, ours=True, end_first=True) == _exported(END, ours=False, end_first=True)
    assert dict(_exported(END, ours=True, end_first=True)[0]) == START


def test_the_direct_path_is_taken_and_keeps_no_reference_to_the_callers_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality tests above would also pass if every call went through set_attributes: prove the clean case
    does not, and that a list the caller changes afterwards does not change the span (it is stored as a tuple)."""
    exporter = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    span = tp.get_tracer("t").start_span("s", attributes=START)
    monkeypatch.setattr(BoundedAttributes, "_set_items", lambda *a: pytest.fail("SDK cleaning path taken"))
    reasons = ["stop"]
    _span_attrs.set_attributes(span, {**END, "gen_ai.response.finish_reasons": reasons})
    reasons.append("later")
    monkeypatch.undo()
    span.end()
    (s,) = exporter.get_finished_spans()
    assert s.attributes is not None and s.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    tp.shutdown()


def test_a_non_sdk_span_gets_set_attributes() -> None:
    """A span that is not the SDK's gets its own set_attributes call with the same mapping."""
    seen: list[dict[str, Any]] = []

    class Other:
        def set_attributes(self, attrs: dict[str, Any]) -> None:
            seen.append(attrs)

    _span_attrs.set_attributes(Other(), END)  # type: ignore[arg-type]
    assert seen == [END]
