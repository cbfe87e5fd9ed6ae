"""Quality scores and user feedback: the ``gen_ai.evaluation.result`` event plus a score histogram."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import NonRecordingSpan, SpanContext

from agentpress_otel import _selftel
from agentpress_otel.genai import _spans, _state

EVENT_NAME = "gen_ai.evaluation.result"


def record_score(
    name: str,
    value: float | None,
    *,
    label: str | None = None,
    explanation: str | None = None,
    response_id: str | None = None,
    span_context: SpanContext | None = None,
    error_type: str | None = None,
) -> bool:
    """Record an evaluation (LLM-as-judge score, user thumbs up/down...) of an LLM response.

    The event is parented to ``span_context``, else to the LLM span that produced ``response_id`` (remembered
    for the last 4096 responses in this process), else to the current span. The histogram
    ``gen_ai.evaluation.score`` gets ``gen_ai.evaluation.name``, ``gen_ai.evaluation.score.label`` and, when
    the evaluated call is known, its provider and model. Returns True when the evaluated span was found.

    Example::

        record_score("user_feedback", 1.0, label="thumbs_up", response_id="chatcmpl-123")
    """
    try:
        st = _state.STATE
        provider = model = None
        found = False
        sc = span_context
        if sc is not None:
            hit = _spans.SPANS.get(sc.span_id)
            if hit is not None:
                provider, model = hit[1], hit[2]
            found = sc.is_valid
        elif response_id:
            hit = _spans.RESPONSES.get(response_id)
            if hit is not None:
                sc, provider, model = hit
                found = True
        if sc is None:
            cur = trace.get_current_span().get_span_context()
            if cur.is_valid:
                sc = cur
                found = True
                hit = _spans.SPANS.get(cur.span_id)
                if hit is not None:
                    provider, model = hit[1], hit[2]
        metric_attrs: dict[str, Any] = {"gen_ai.evaluation.name": name}
        if label is not None:
            metric_attrs["gen_ai.evaluation.score.label"] = label
        if provider:
            metric_attrs["gen_ai.provider.name"] = provider
        if model:
            metric_attrs["gen_ai.request.model"] = model
        if error_type:
            metric_attrs["error.type"] = error_type
        if value is not None:
            st.instruments.record(st.instruments.score, float(value), metric_attrs)
        attrs: dict[str, Any] = {"gen_ai.evaluation.name": name}
        if value is not None:
            attrs["gen_ai.evaluation.score.value"] = float(value)
        if label is not None:
            attrs["gen_ai.evaluation.score.label"] = label
        if explanation is not None:
            attrs["gen_ai.evaluation.explanation"] = explanation[:4096]
        if response_id:
            attrs["gen_ai.response.id"] = response_id
        if error_type:
            attrs["error.type"] = error_type
        logger = st.event_logger
        if logger is not None:
            ctx = trace.set_span_in_context(NonRecordingSpan(sc)) if sc is not None else None
            logger.emit(event_name=EVENT_NAME, attributes=attrs, context=ctx,
                        severity_number=SeverityNumber.INFO, body=None)
        else:
            # No log pipeline: fall back to an event on the span, if it is still recording.
            cur_span = trace.get_current_span()
            if cur_span.is_recording() and (sc is None or cur_span.get_span_context() == sc):
                cur_span.add_event(EVENT_NAME, attrs)
        return found
    except Exception as exc:
        _selftel.record_error("genai.score", exc)
        return False
