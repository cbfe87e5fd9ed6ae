"""Message content capture: off by default, JSON-encoded, truncated, then redacted.

Redaction is the logs area's engine (``agentpress_otel.redaction.redact``), imported lazily; if it is
missing we truncate only. Runs only when capture is on, so the default path pays nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agentpress_otel import _selftel
from agentpress_otel.genai import _state

_redact: Callable[[str], str] | None = None
_redact_loaded = False


def _get_redactor() -> Callable[[str], str] | None:
    global _redact, _redact_loaded
    if not _redact_loaded:
        _redact_loaded = True
        try:
            from agentpress_otel.redaction import redact

            _redact = redact
        except Exception:  # module not there yet or failed to import: truncate only
            _redact = None
    return _redact


def _default(o: Any) -> Any:
    for attr in ("model_dump", "dict", "to_dict"):
        fn = getattr(o, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:  # noqa: S112 - try the next representation
                continue
    return str(o)


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    except Exception:
        try:
            return str(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def prepare(value: Any, max_chars: int | None = None) -> str:
    """JSON-encode ``value``, redact it, and cut it to ``content_max_chars``."""
    st = _state.STATE
    limit = st.content_max_chars if max_chars is None else max_chars
    text = to_text(value)
    # Cut before redacting (bounded work) but leave slack so a secret straddling the cut is still seen.
    if limit >= 0 and len(text) > limit + 256:
        text = text[: limit + 256]
    if st.redact_enabled:
        red = _get_redactor()
        if red is not None:
            try:
                out = red(text)
                text = out if isinstance(out, str) else str(out)
            except Exception as exc:
                _selftel.record_error("genai.redact", exc)
                return "[redaction failed]"
    if limit >= 0 and len(text) > limit:
        marker = "…[truncated]"
        text = text[: limit - len(marker)] + marker if limit > len(marker) else text[:limit]
    return text


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
                parts.append({"type": "text", "content": to_text(p)})
        return parts
    return [{"type": "text", "content": to_text(content)}]


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


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
        role = _get(m, "role") or "user"
        parts = _text_parts(_get(m, "content"))
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": _get(m, "tool_call_id"),
                      "response": _get(m, "content")}]
        for tc in _get(m, "tool_calls") or []:
            fn = _get(tc, "function")
            parts.append({"type": "tool_call", "id": _get(tc, "id"), "name": _get(fn, "name"),
                          "arguments": _get(fn, "arguments")})
        msg: dict[str, Any] = {"role": role, "parts": parts}
        if finish_reasons is not None and i < len(finish_reasons):
            msg["finish_reason"] = finish_reasons[i]
        out.append(msg)
    return out
