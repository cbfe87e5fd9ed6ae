"""Message content capture: off by default, JSON-encoded, redacted, then truncated.

Redaction is the logs area's engine (:func:`agentpress_otel.redaction.redact`); text and truncation are
:mod:`agentpress_otel._text`'s. Runs only when capture is on, so the default path pays nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agentpress_otel import _selftel
from agentpress_otel._text import field, to_text, truncate
from agentpress_otel.genai import _state
from agentpress_otel.redaction import redact

# Redaction sees this many characters past the limit, so a secret straddling the cut is still recognised.
_REDACT_SLACK = 256
_G_REDACT = _selftel.guard("genai.redact")
_FAILED = object()


def prepare(value: Any, max_chars: int | None = None) -> str:
    """JSON-encode ``value``, redact it, and cut it to ``content_max_chars`` (one ``…[N chars cut]…`` marker).

    Example::

        prepare([{"role": "user", "parts": []}])  # '[{"role":"user","parts":[]}]'
    """
    settings = _state.STATE.settings
    limit = settings.content_max_chars if max_chars is None else max_chars
    text = to_text(value, structured=True)
    # Cut before redacting (bounded work) but leave slack so a secret straddling the cut is still seen.
    pre_cut = 0
    if limit >= 0 and len(text) > limit + _REDACT_SLACK:
        pre_cut = len(text) - (limit + _REDACT_SLACK)
        text = text[: limit + _REDACT_SLACK]
    if settings.redact:
        out: object = _FAILED
        with _G_REDACT:
            out = redact(text)
        if out is _FAILED:  # never export content that could not be redacted: replace it
            return "[redaction failed]"
        text = out if isinstance(out, str) else to_text(out)
    return truncate(text, limit, already_cut=pre_cut) if limit >= 0 else text


def _text_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    if isinstance(content, Iterable) and not isinstance(content, Mapping):
        for p in content:
            if isinstance(p, Mapping) and p.get("type") == "text":
                parts.append({"type": "text", "content": p.get("text", "")})
            elif isinstance(p, Mapping) and p.get("type") == "image_url":
                url = p.get("image_url")
                uri = url.get("url") if isinstance(url, Mapping) else url
                parts.append({"type": "uri", "modality": "image", "uri": str(uri)[:256]})
            else:
                parts.append({"type": "text", "content": to_text(p, structured=True)})
        return parts
    return [{"type": "text", "content": to_text(content, structured=True)}]


def convert_tool_definitions(tools: Any) -> list[dict[str, Any]]:
    """Request ``tools`` -> ``gen_ai.tool.definitions``' registry shape (``model/gen-ai/gen-ai-tool-definitions.json``).

    The registry wants ``{type, name, description?, parameters?}`` at the top level; OpenAI Chat Completions
    nests them under ``function``, Anthropic calls the parameters ``input_schema``, and built-in tools
    (``{"type": "web_search"}``) have no name, so their type stands in for it (``name`` is required).
    """
    out: list[dict[str, Any]] = []
    if not isinstance(tools, Iterable) or isinstance(tools, (str, bytes, Mapping)):
        tools = [tools]
    for t in tools:
        if not isinstance(t, Mapping):
            continue
        typ = t.get("type") or "function"
        fn = t.get("function")
        src: Mapping[str, Any] = fn if isinstance(fn, Mapping) else t
        name = src.get("name")
        d: dict[str, Any] = {"type": str(typ), "name": str(name if name else typ)}
        if "description" in src:
            d["description"] = src["description"]
        params = src.get("parameters", src.get("input_schema"))
        if isinstance(params, Mapping) or (params is None and ("parameters" in src or "input_schema" in src)):
            d["parameters"] = params
        out.append(d)
    return out


def convert_messages(messages: Any, *, finish_reasons: list[str] | None = None) -> list[dict[str, Any]]:
    """OpenAI/LiteLLM chat messages -> the GenAI semconv ``{role, parts}`` JSON shape."""
    out: list[dict[str, Any]] = []
    if not isinstance(messages, Iterable) or isinstance(messages, (str, Mapping)):
        messages = [messages]
    for i, m in enumerate(messages):
        role = field(m, "role") or "user"
        parts = _text_parts(field(m, "content"))
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": field(m, "tool_call_id"),
                      "response": field(m, "content")}]
        for tc in field(m, "tool_calls") or []:
            fn = field(tc, "function")
            parts.append({"type": "tool_call", "id": field(tc, "id"), "name": field(fn, "name"),
                          "arguments": field(fn, "arguments")})
        msg: dict[str, Any] = {"role": role, "parts": parts}
        if finish_reasons is not None and i < len(finish_reasons):
            msg["finish_reason"] = finish_reasons[i]
        out.append(msg)
    return out
