"""Usage, finish reasons and value checks for LLM calls, plus the response-id map scores look calls up in.

Each value a caller hands us is checked here, once: token counts (:func:`count`), seconds (:func:`seconds`),
finish reasons (:func:`finish_reasons`) and provider usage objects (:func:`read_usage`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import SpanContext

from agentpress_otel import _selftel
from agentpress_otel._text import field
from agentpress_otel.genai import _semconv, _state


def invalid(what: str, value: Any) -> None:
    """Count (and warn about, once a minute) a value a setter ignored; the value itself is not logged."""
    _selftel.record_error("genai.invalid_value", ValueError(f"{what}: unusable {type(value).__name__}"))


def count(what: str, v: Any) -> int | None:
    """``v`` as a non-negative int token count, or None (counted) for NaN, negatives, bools, text..."""
    if type(v) is int and v >= 0:  # the common case, first
        return v
    n: int | None = None
    try:
        if isinstance(v, bool):
            n = None
        elif isinstance(v, float):
            n = int(v) if math.isfinite(v) else None
        elif isinstance(v, str):
            n = int(v.strip())
        else:
            n = operator.index(v)  # int subclasses, numpy integers
    except (TypeError, ValueError, OverflowError):
        n = None
    if n is None or n < 0:
        invalid(what, v)
        return None
    return n


def seconds(what: str, v: Any) -> float | None:
    """``v`` as finite seconds (int, float or numeric string), or None (counted)."""
    if type(v) is float and math.isfinite(v):
        return v
    try:
        f = None if isinstance(v, bool) else float(v)
    except (TypeError, ValueError, OverflowError):
        f = None
    if f is None or not math.isfinite(f):
        invalid(what, v)
        return None
    return f


def finish_reasons(value: Sequence[Any] | str | None) -> list[str] | None:
    """Finish reasons as a list of strings (a single string is one reason); None when empty or unusable (counted).

    The one place finish reasons are cleaned: responses, stream ends and output messages all come through here.

    Example::

        finish_reasons("stop")              # ['stop']
        finish_reasons(["stop", None, ""])  # ['stop']
    """
    if not value:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        out = [str(f) for f in value if f]
        return out or None
    invalid("finish_reasons", value)
    return None


def choice_finish_reasons(choices: Sequence[Any]) -> list[str]:
    """The finish reason of each choice of a response (choices without one are skipped)."""
    return finish_reasons([field(c, "finish_reason") for c in choices]) or []


def cache_write_attr() -> str:
    """The cache-write token attribute of the configured convention set (renamed in the latest set)."""
    return _semconv.CACHE_WRITE_ATTR if _state.STATE.instruments.latest else _semconv.CACHE_CREATION_ATTR


def _anthropic_input(pt: Any, cache_read: Any, cache_write: Any) -> int | None:
    """Anthropic's ``input_tokens`` excludes the cache: semconv's input count adds both cache counts back."""
    base = count("input_tokens", pt)
    extra = [count("cache_tokens", c) for c in (cache_read, cache_write) if c is not None]
    return None if base is None or None in extra else base + sum(x for x in extra if x)


def read_usage(usage: Any) -> dict[str, Any] | None:
    """A provider ``usage`` object or dict as ``LLMCall.set_usage`` keywords; None when it has no counts.

    Understood shapes: OpenAI Chat Completions / LiteLLM (``prompt_tokens``...), OpenAI Responses
    (``input_tokens`` with ``input_tokens_details``) and Anthropic Messages (``input_tokens`` plus cache counts).

    Example::

        read_usage({"prompt_tokens": 10, "completion_tokens": 2})  # {'input_tokens': 10, 'output_tokens': 2, ...}
    """
    if usage is None:
        return None
    pt = field(usage, "prompt_tokens")
    ct = field(usage, "completion_tokens")
    cache_read = (field(field(usage, "prompt_tokens_details"), "cached_tokens")
                  or field(usage, "cache_read_input_tokens"))
    cache_write = field(usage, "cache_creation_input_tokens")
    reasoning = field(field(usage, "completion_tokens_details"), "reasoning_tokens")
    if pt is None and ct is None:
        pt = field(usage, "input_tokens")
        ct = field(usage, "output_tokens")
        if pt is None and ct is None:
            return None
        in_details = field(usage, "input_tokens_details")
        if in_details is not None:  # OpenAI Responses
            cache_read = field(in_details, "cached_tokens")
            reasoning = field(field(usage, "output_tokens_details"), "reasoning_tokens")
        elif (cache_read is not None or cache_write is not None) and pt is not None:  # Anthropic
            pt = _anthropic_input(pt, cache_read, cache_write)
    return {"input_tokens": pt, "output_tokens": ct, "cache_read_tokens": cache_read or None,
            "cache_write_tokens": cache_write or None, "reasoning_tokens": reasoning or None}


# ------------------------------------------------------------------------------------- response-id map

class _LRU:
    """Bounded key -> (span context, provider, model) map for :func:`record_score`.

    Two generations of plain dicts instead of an OrderedDict: a put is one dict store (hot path), and
    when the young generation is full it becomes the old one. Holds between ``size`` and ``2*size`` keys.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.young: dict[str | int, tuple[SpanContext, str, str]] = {}
        self.old: dict[str | int, tuple[SpanContext, str, str]] = {}

    def put(self, key: str | int, value: tuple[SpanContext, str, str]) -> None:
        y = self.young
        y[key] = value
        if len(y) >= self.size:
            self.old, self.young = y, {}

    def get(self, key: str | int) -> tuple[SpanContext, str, str] | None:
        v = self.young.get(key)
        return v if v is not None else self.old.get(key)


#: Response id -> the LLM span that produced it (scores parent their event to it).
RESPONSES = _LRU()
#: Span id -> the LLM call's provider and model (scores given a span context label their metric with them).
SPANS = _LRU()
