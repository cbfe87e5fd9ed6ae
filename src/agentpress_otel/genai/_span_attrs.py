"""A GenAI span's end-of-call attributes, written into an SDK span without the SDK's second check of each value.

``Span.set_attributes`` runs every value through the SDK's attribute cleaning (type checks, a new tuple per
sequence, a warning path per odd value): about 4 µs for the ten attributes an LLM call sets when it ends. The
values :class:`~agentpress_otel.genai._op.Op` buffers are ours and nearly always already what that cleaning
returns unchanged (strings within the span's length limit, numbers, booleans, lists of those), so when they
are, and when the span's attribute count limit cannot drop any, they are written into the span's attribute map
as ``BoundedAttributes._setitem_locked`` writes them, under the same two locks. Anything else (an SDK whose
internals moved, a value of another type or over the length limit, a full span, an ended span) goes through
``set_attributes`` as before. The SDK version is pinned (pyproject.toml); tests/unit/test_genai_span_attrs.py
exports spans both ways and compares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.trace import Span

try:
    from opentelemetry.sdk.trace import _Span as _SdkSpan
except ImportError:  # pragma: no cover - another SDK layout: public path only
    _SdkSpan = None  # type: ignore[assignment,misc]

__all__ = ["set_attributes"]

#: Value types the SDK's cleaning returns as they are (exact types: a subclass, e.g. an IntEnum, goes public).
_SCALARS = frozenset({str, bool, int, float})


def set_attributes(span: Span, attrs: Mapping[str, Any]) -> None:
    """``span.set_attributes(attrs)``, exactly, without re-checking values that need no cleaning.

    Example::

        set_attributes(call.span, {"gen_ai.usage.input_tokens": 69, "gen_ai.response.finish_reasons": ["stop"]})
    """
    if type(span) is not _SdkSpan or not _set_clean(span, attrs):
        span.set_attributes(attrs)


def _clean(attrs: Mapping[str, Any], max_len: int | None) -> list[tuple[str, Any]] | None:
    """The items as the SDK's cleaning would store them (lists become tuples), or None if any needs that cleaning
    (a string over the span's length limit included: the SDK cuts it and warns)."""
    limit = max_len if max_len is not None else -1
    out = []
    for k, v in attrs.items():
        if type(k) is not str or not k:
            return None
        t = type(v)
        if t not in _SCALARS:
            if (t is not list and t is not tuple) or not all(type(x) in _SCALARS for x in v):
                return None
            v = tuple(v)  # the SDK stores sequences as tuples (and never the caller's list)
            if limit >= 0 and any(type(x) is str and len(x) > limit for x in v):
                return None
        elif t is str and limit >= 0 and len(v) > limit:
            return None
        out.append((k, v))
    return out


def _set_clean(span: Any, attrs: Mapping[str, Any]) -> bool:
    """Write ``attrs`` into an SDK span's attribute map when nothing in them needs the SDK's cleaning or limits."""
    bounded = getattr(span, "_attributes", None)
    if type(bounded) is not BoundedAttributes or bounded._immutable:
        return False
    store = getattr(bounded, "_dict", None)
    if type(store) is not dict:
        return False
    if bounded.maxlen is not None and len(store) + len(attrs) > bounded.maxlen:
        return False  # the SDK would drop the oldest attributes (and count them): its own path
    items = _clean(attrs, bounded.max_value_len)
    if items is None:
        return False
    with span._lock:
        if span._end_time is not None:
            return False  # ended: set_attributes logs its warning and ignores them
        with bounded._lock:
            for k, v in items:  # as _setitem_locked: a key set again moves to the end
                if k in store:
                    del store[k]
                store[k] = v
    return True
