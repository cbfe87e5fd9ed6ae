"""Request parameters of an LLM call (``temperature``, ``stop``, ``messages``...) -> ``gen_ai.request.*`` attributes.

Each parameter is checked on its own: one odd value (``stop=5``) skips that attribute (counted), not the span.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentpress_otel._text import field
from agentpress_otel.genai import _content
from agentpress_otel.genai._usage import invalid

_PARAM_ATTRS: dict[str, str] = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "reasoning_effort": "gen_ai.request.reasoning.level",
}

#: Parameters that carry content: recorded only when capturing, and never kept on the call afterwards.
CONTENT_PARAMS = ("messages", "tools")


def output_type(rf: Any) -> str | None:
    """``response_format`` -> ``gen_ai.output.type`` (``text`` | ``json``), None when unrecognised."""
    if isinstance(rf, type):  # a pydantic model class: structured (JSON) output
        return "json"
    t = field(rf, "type") if not isinstance(rf, str) else rf
    if t == "text":
        return "text"
    if t in ("json_object", "json_schema", "json"):
        return "json"
    return None


def _scalars(params: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    for key, v in params.items():
        attr = _PARAM_ATTRS.get(key)
        if attr is not None and v is not None:
            if isinstance(v, (int, float, str, bool)):
                attrs[attr] = v
            else:
                invalid(key, v)


def _stop(stop: Any, attrs: dict[str, Any]) -> None:
    if isinstance(stop, str):
        attrs["gen_ai.request.stop_sequences"] = [stop]
    elif isinstance(stop, (list, tuple)) and all(isinstance(x, str) for x in stop):
        attrs["gen_ai.request.stop_sequences"] = list(stop)
    else:
        invalid("stop", stop)


def _choice_count(n: Any, attrs: dict[str, Any]) -> None:
    if isinstance(n, int) and not isinstance(n, bool):
        if n != 1:
            attrs["gen_ai.request.choice.count"] = n
    else:
        invalid("n", n)


def _content_attrs(params: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    msgs = params.get("messages")
    if msgs is not None:
        attrs["gen_ai.input.messages"] = _content.prepare(_content.convert_messages(msgs))
    tools = params.get("tools")
    if tools:
        attrs["gen_ai.tool.definitions"] = _content.prepare(_content.convert_tool_definitions(tools))


def request_attributes(params: Mapping[str, Any], attrs: dict[str, Any], *, capture: bool) -> None:
    """Add the attributes ``params`` map to into ``attrs``; content (messages, tools) only when ``capture``.

    Example::

        attrs: dict[str, Any] = {}
        request_attributes({"temperature": 0.2, "stop": "END"}, attrs, capture=False)
        # {'gen_ai.request.temperature': 0.2, 'gen_ai.request.stop_sequences': ['END']}
    """
    _scalars(params, attrs)
    if params.get("stream"):
        attrs["gen_ai.request.stream"] = True
    stop = params.get("stop")
    if stop:
        _stop(stop, attrs)
    n = params.get("n")
    if n is not None:
        _choice_count(n, attrs)
    rf = params.get("response_format")
    if rf is not None:
        ot = output_type(rf)
        if ot is not None:
            attrs["gen_ai.output.type"] = ot
    if capture:
        _content_attrs(params, attrs)
