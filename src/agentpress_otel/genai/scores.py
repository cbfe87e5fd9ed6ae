"""Quality scores and user feedback: the ``gen_ai.evaluation.result`` event plus a score histogram."""

from __future__ import annotations

import math
from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext

from agentpress_otel import _selftel, _text
from agentpress_otel.genai import _state, _usage

EVENT_NAME = "gen_ai.evaluation.result"

_G_SCORE = _selftel.guard("genai.score")


def record_score(
    name: str,
    value: float | None,
    *,
    label: str | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    span_context: SpanContext | None = None,
    error_type: str | None = None,
    model: str | None = None,
    provider: str | None = None,
) -> bool:
    """Record an evaluation (LLM-as-judge score, user thumbs up/down...) of an LLM response.

    The event is parented to ``span_context``, else to the LLM span that produced ``response_id`` (remembered
    for the last 4096-8192 LLM calls in this process), else to the current span. The histogram
    ``agentpress.evaluation.score`` gets ``gen_ai.evaluation.name``, ``gen_ai.evaluation.score.label``,
    ``error.type`` and the evaluated call's ``gen_ai.provider.name`` / ``gen_ai.request.model``: from
    ``provider=`` / ``model=`` when given (feedback handled in another process than the LLM call), else
    from the remembered call.

    Returns True when the event is attached to the span the caller meant: a valid ``span_context``, the
    span of ``response_id`` found in this process, or, when neither is given, a valid current span.
    Returns False when the score is rejected (``name`` not a non-empty string, ``value`` not a finite
    number; counted in ``agentpress_otel.internal.errors{component="genai.score"}``, nothing recorded), or
    when the evaluated span is not known here: the event and histogram are still recorded, the event
    parented to the current span (if any) and carrying ``gen_ai.response.id``.

    Example::

        record_score("user_feedback", 1.0, label="thumbs_up", response_id="chatcmpl-123",
                     model="gpt-5-mini", provider="openai")
    """
    score = _checked_score(name, value)
    if score is False:
        return False
    with _G_SCORE:
        sc, prov, mod, found = _target(span_context, response_id)
        prov = str(provider) if provider else prov
        mod = str(model) if model else mod
        label = None if label is None else str(label)
        err = str(error_type) if error_type else None
        base: dict[str, Any] = {"gen_ai.evaluation.name": name}
        if label is not None:
            base["gen_ai.evaluation.score.label"] = label
        if score is not None:
            metric_attrs = {**base, **_present({"gen_ai.provider.name": prov, "gen_ai.request.model": mod,
                                                "error.type": err})}
            st = _state.STATE
            st.instruments.record(st.instruments.score, score, metric_attrs)
        attrs = {**base, **_present({
            "gen_ai.evaluation.score.value": score,
            "gen_ai.evaluation.explanation": None if explanation is None else _text.to_text(
                explanation, structured=True)[:4096],
            "gen_ai.response.id": str(response_id) if response_id else None,
            "error.type": err,
        })}
        _emit(attrs, sc)
        return found
    return False


def _checked_score(name: object, value: float | None) -> float | bool | None:
    """The score as a finite float (None when absent), or False (counted) when ``name`` or ``value`` is unusable."""
    problem = None
    score: float | None = None
    if not isinstance(name, str) or not name:
        problem = "evaluation name must be a non-empty string"
    elif value is not None:
        try:
            score = float(value)
        except (TypeError, ValueError, OverflowError):
            score = math.nan
        if not math.isfinite(score):
            problem = "score must be a finite number"
    if problem is not None:
        _selftel.record_error("genai.score", ValueError(problem))
        return False
    return score


def _present(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}


def _target(span_context: SpanContext | None, response_id: str | None) -> tuple[SpanContext | None, str | None,
                                                                                str | None, bool]:
    """(span to parent the event to, its provider, its model, whether it is the span the caller meant)."""
    prov = mod = None
    found = False
    sc = span_context
    if sc is not None:
        hit = _usage.SPANS.get(sc.span_id)
        if hit is not None:
            prov, mod = hit[1], hit[2]
        found = sc.is_valid
    elif response_id:
        hit = _usage.RESPONSES.get(response_id)
        if hit is not None:
            sc, prov, mod = hit
            found = True
    if sc is None:
        cur = trace.get_current_span().get_span_context()
        if cur.is_valid:
            sc = cur
            # The current span is the target only when the caller named no other one.
            found = not response_id
            hit = _usage.SPANS.get(cur.span_id)
            if hit is not None:
                prov, mod = hit[1], hit[2]
    return sc, prov, mod, found


def _emit(attrs: dict[str, Any], sc: SpanContext | None) -> None:
    logger = _state.STATE.event_logger
    if logger is not None:
        ctx = trace.set_span_in_context(NonRecordingSpan(sc)) if sc is not None else None
        logger.emit(event_name=EVENT_NAME, attributes=attrs, context=ctx,
                    severity_number=SeverityNumber.INFO, body=None)
        return
    # No log pipeline: fall back to an event on the span, if it is still recording.
    cur_span = trace.get_current_span()
    if cur_span.is_recording() and (sc is None or cur_span.get_span_context() == sc):
        cur_span.add_event(EVENT_NAME, attrs)
