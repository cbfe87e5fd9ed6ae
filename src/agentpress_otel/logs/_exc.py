"""``exception.*`` fields of a log record, from whatever shape the logging library handed us.

stdlib gives an ``exc_info`` tuple; structlog gives a tuple, a formatted traceback, or ``dict_tracebacks``
output. All become ``{"type", "message", "stacktrace"}`` as the OTel exception conventions name them.
"""

from __future__ import annotations

import traceback
from typing import Any

from agentpress_otel import _selftel
from agentpress_otel._text import to_text


def exc_message(e: Any) -> str:
    """``str(exception)`` for ``exception.message``; a raising ``__str__`` must not lose the record."""
    try:
        return str(e)
    except Exception:  # noqa: BLE001 - a user exception's __str__ may raise anything; the record is kept
        return f"<unprintable {type(e).__name__} message>"


def from_exc_info(ei: tuple[Any, Any, Any], text: str | None = None) -> dict[str, str]:
    """exception.* fields from an ``exc_info`` tuple (``text``: an already formatted traceback)."""
    return {
        "type": _selftel.qualified_name(ei[0]),
        "message": exc_message(ei[1]),
        "stacktrace": text or "".join(traceback.format_exception(*ei)),
    }


def structlog_exc(raw: Any) -> dict[str, str] | None:
    """exception.* fields from an exc_info tuple, a formatted traceback or dict_tracebacks output."""
    if raw is None:
        return None
    if isinstance(raw, tuple):
        return from_exc_info(raw)
    if isinstance(raw, str):
        last = raw.strip().splitlines()[-1] if raw.strip() else ""
        typ, _, msg = last.partition(": ")
        return {"type": typ, "message": msg, "stacktrace": raw}
    if isinstance(raw, list) and raw and all(isinstance(s, dict) for s in raw):
        # structlog dict_tracebacks: rebuilt as the natural traceback text (the convention's
        # exception.stacktrace). Frame "locals" are never read: exporting local variables would leak data.
        top: dict[str, Any] = raw[0]
        return {
            "type": to_text(top.get("exc_type", "")),
            "message": to_text(top.get("exc_value", "")),
            "stacktrace": render_dict_traceback(raw),
        }
    return None


def render_dict_traceback(stacks: list[dict[str, Any]]) -> str:
    """structlog's ``[{exc_type, exc_value, frames, is_cause}, ...]`` (raised exception first) -> the text
    ``traceback.format_exception`` prints (causes first)."""
    out: list[str] = []
    for i, st in enumerate(reversed(stacks)):
        if i:
            out.append("\nThe above exception was the direct cause of the following exception:\n\n"
                       if stacks[len(stacks) - i].get("is_cause") else
                       "\nDuring handling of the above exception, another exception occurred:\n\n")
        frames = st.get("frames") or []
        if frames:
            out.append("Traceback (most recent call last):\n")
        for f in frames:
            if not isinstance(f, dict):
                continue
            out.append(f'  File "{to_text(f.get("filename", "?"))}", line {to_text(f.get("lineno", "?"))}, '
                       f'in {to_text(f.get("name", "?"))}\n')
            line = f.get("line")
            if line:
                out.append(f"    {to_text(line).strip()}\n")
        value = to_text(st.get("exc_value", ""))
        out.append(f"{to_text(st.get('exc_type', ''))}: {value}\n" if value else
                   f"{to_text(st.get('exc_type', ''))}\n")
    return "".join(out)
