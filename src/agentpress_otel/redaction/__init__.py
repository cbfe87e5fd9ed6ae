"""Secret and personal-data redaction for logs, spans and LLM content.

Public: :func:`redact`, :func:`redact_value`, :func:`redact_url`, :class:`Redactor`,
:func:`configure_redaction`, :func:`default_redactor`, :func:`is_sensitive_key`,
:class:`RedactingSpanExporter`, :class:`RedactingLogExporter`, :class:`RedactingMetricExporter`.
"""

from agentpress_otel.redaction._detectors import is_sensitive_key, luhn_ok
from agentpress_otel.redaction._engine import (
    URL_ATTRIBUTES,
    Redactor,
    configure_redaction,
    default_redactor,
    redact,
    redact_url,
    redact_value,
)
from agentpress_otel.redaction._exporters import (
    PreRedactedLogRecord,
    RedactingLogExporter,
    RedactingMetricExporter,
    RedactingSpanExporter,
)

__all__ = [
    "URL_ATTRIBUTES",
    "PreRedactedLogRecord",
    "RedactingLogExporter",
    "RedactingMetricExporter",
    "RedactingSpanExporter",
    "Redactor",
    "configure_redaction",
    "default_redactor",
    "is_sensitive_key",
    "luhn_ok",
    "redact",
    "redact_url",
    "redact_value",
]
