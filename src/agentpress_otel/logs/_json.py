"""JSON values for the log worker: the stdout JSON line, and JSON text for OTLP attribute values.

orjson does the work; a document it rejects (a tuple key, a raising ``__str__``, a cycle, a huge int) is
retried once with a copy it always accepts, so a record is never missing from stdout.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from agentpress_otel import _selftel
from agentpress_otel._text import to_text
from agentpress_otel.redaction import Redactor

_LINE_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # orjson's integer range
_G_LINE = _selftel.guard("logs.json")


def _safe_str(v: Any) -> str:
    return to_text(v)  # str(), then repr(), then a placeholder: never raises


def jsonable(obj: Any, r: Redactor | None, depth: int = 0) -> Any:
    """A copy orjson always accepts: string keys, bounded depth, 64-bit ints, text for other leaves.

    Only used when orjson rejected the document. Keys and leaves turned into text are scanned too: the
    redactor never saw them as text.
    """
    if obj is None or isinstance(obj, (bool, str, float)):
        return obj
    if isinstance(obj, int):
        return obj if _INT_MIN <= obj <= _INT_MAX else str(obj)
    if depth > 32:
        return "[depth]"
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            ks = k if isinstance(k, str) else to_text(k)
            out[ks if r is None or ks is k else r.redact(ks)] = jsonable(v, r, depth + 1)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v, r, depth + 1) for v in obj]
    text = to_text(obj)
    return text if r is None else r.redact(text)


def _dumps(doc: Any, r: Redactor | None, opts: int) -> bytes | None:
    """orjson of ``doc``, else of its :func:`jsonable` copy; None (error counted) when both fail."""
    try:
        return orjson.dumps(doc, default=_safe_str, option=opts)
    except (TypeError, ValueError, orjson.JSONEncodeError):  # rejected: retried below with a safe copy
        pass
    with _G_LINE:
        return orjson.dumps(jsonable(doc, r), option=opts)
    return None  # the guard swallowed (and counted) an error


def json_line(doc: dict[str, Any], r: Redactor | None) -> bytes:
    """One JSON line for ``doc``; never raises, so a record is never missing from stdout."""
    out = _dumps(doc, r, _LINE_OPTS)
    if out is not None:
        return out
    keep = {k: _safe_str(doc[k]) for k in ("timestamp", "level", "logger", "message") if k in doc}
    return orjson.dumps(keep, option=_LINE_OPTS)


def json_text(v: Any, r: Redactor | None) -> str:
    """``v`` as compact JSON text (an OTLP attribute value for a container or object); never raises."""
    out = _dumps(v, r, orjson.OPT_NON_STR_KEYS)
    return out.decode() if out is not None else _safe_str(v)


_iso_second: tuple[int, str] = (-1, "")  # (second, "YYYY-MM-DDTHH:MM:SS"): records come in bursts


def iso(ts_ns: int) -> str:
    """``2026-12-06T22:27:07.123456Z`` (truncated to µs); the date part is formatted once per second."""
    global _iso_second
    sec, ns = divmod(ts_ns, 1_000_000_000)
    cached = _iso_second  # one tuple: threads see a consistent (second, text) pair
    if cached[0] == sec:
        prefix = cached[1]
    else:
        prefix = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (sec, prefix)
    return f"{prefix}.{ns // 1000:06d}Z"


_hex_last: tuple[Any, str, str] = (None, "", "")


def trace_hex(sc: Any) -> tuple[str, str]:
    """(trace id, span id) of a span context as the JSON line prints them; the records of a burst mostly share
    one span, so the last one is remembered."""
    global _hex_last
    last = _hex_last  # one tuple: threads see a consistent triple
    if last[0] is sc:
        return last[1], last[2]
    tid, sid = f"{sc.trace_id:032x}", f"{sc.span_id:016x}"
    _hex_last = (sc, tid, sid)
    return tid, sid
