"""OTLP side of the log worker: attribute values, severities, and handing a record to an SDK logger.

Everything here runs on the log worker thread, once per record.
"""

from __future__ import annotations

import logging
from time import time_ns
from typing import Any

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import Logger as _SdkLogger
from opentelemetry.sdk._logs import ReadableLogRecord, ReadWriteLogRecord, SynchronousMultiLogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import INVALID_SPAN_CONTEXT, SpanContext

from agentpress_otel._text import truncate
from agentpress_otel.logs._json import json_text
from agentpress_otel.redaction import Redactor

_SEVERITY = {
    logging.DEBUG: (SeverityNumber.DEBUG, "DEBUG"),
    logging.INFO: (SeverityNumber.INFO, "INFO"),
    logging.WARNING: (SeverityNumber.WARN, "WARN"),
    logging.ERROR: (SeverityNumber.ERROR, "ERROR"),
    logging.CRITICAL: (SeverityNumber.FATAL, "FATAL"),
}

#: A non-empty context holding no span (an empty one makes ``LogRecord`` read the worker's own context).
NO_SPAN = Context({"agentpress-otel.log-record": True})


def severity(levelno: int) -> tuple[SeverityNumber, str]:
    """OTel severity number and text of a stdlib level (custom levels map to the next lower standard one)."""
    s = _SEVERITY.get(levelno)
    if s is not None:
        return s
    for lvl in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG):
        if levelno >= lvl:
            return _SEVERITY[lvl]
    return SeverityNumber.TRACE, "TRACE"


def attr_value(v: Any, limit: int = 8192, r: Redactor | None = None) -> Any:
    """OTLP attribute values: primitives and homogeneous lists; everything else as JSON/str; cut to ``limit``."""
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        return v if len(v) <= limit else truncate(v, limit)
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return [truncate(x, limit) for x in v]
    return truncate(json_text(v, r), limit)


_INVALID = INVALID_SPAN_CONTEXT


def make_record(cls: type[LogRecord], ts_ns: int, sev: tuple[SeverityNumber, str], body: Any,
                attrs: dict[str, Any], sc: SpanContext | None) -> LogRecord:  # fmt: skip
    """``cls(timestamp=..., context=NO_SPAN, ...)`` with the span ids from ``sc``, minus the constructor's work.

    ``LogRecord.__init__`` looks up the span in the context it is given even when the ids are passed, and reads
    the clock; this sets the same fields directly (tests/unit/test_logs_pipeline.py compares both ways field by
    field against the pinned SDK version).
    """
    rec = object.__new__(cls)
    rec.timestamp = ts_ns
    rec.observed_timestamp = time_ns()
    rec.context = NO_SPAN
    if sc is None or not sc.is_valid:
        sc = _INVALID
    rec.trace_id = sc.trace_id
    rec.span_id = sc.span_id
    rec.trace_flags = sc.trace_flags
    rec.severity_number, rec.severity_text = sev
    rec.body = body
    rec.attributes = attrs
    rec.event_name = None
    rec.exception = None
    return rec


_BLRP_ON_EMIT = BatchLogRecordProcessor.on_emit
#: What the SDK's ``BatchLogRecordProcessor.on_emit`` puts in the ``context`` of the copy it queues (Context is
#: immutable, so one instance serves every record).
_EMPTY_CONTEXT = Context()


def _queue_of(lg: _SdkLogger) -> Any:
    """The SDK batch processor behind ``lg`` when it is the logger's only processor and the SDK's own
    ``on_emit`` would run (a subclass that overrides it, several processors, a concurrent multi-processor: None).
    """
    multi = lg._multi_log_record_processor
    if type(multi) is not SynchronousMultiLogRecordProcessor:
        return None
    procs = multi._log_record_processors
    if len(procs) != 1 or not isinstance(procs[0], BatchLogRecordProcessor):
        return None
    return procs[0]._batch_processor if type(procs[0]).on_emit is _BLRP_ON_EMIT else None


def emit(lg: Any, rec: LogRecord) -> None:
    """``lg.emit(rec)``, minus the SDK's second validation of every attribute value and its copies.

    The SDK's ``Logger.emit`` wraps the attributes in a new ``BoundedAttributes``, which checks and
    copies each value again: a third of the worker's time per record. Ours are already OTLP-valid
    (:func:`attr_value`: primitives, lists of strings, cut to the length limit), so an SDK logger gets
    its record handed to its processors directly, unless the SDK's own limits could apply (then, and
    for any other logger, its ``emit`` runs as usual). When the logger's one processor is the SDK's batch
    processor, the record goes straight into its queue as the ``ReadableLogRecord`` its ``on_emit`` would
    build: ``on_emit`` shallow-copies the record (``copy.copy``, the dearest step left) only to give the copy
    an empty context, and ours is built here for this one queue, so it gets the empty context itself
    (tests/unit/test_logs_pipeline.py decodes both ways' OTLP and compares them). The SDK version is pinned
    (pyproject.toml).
    """
    if type(lg) is _SdkLogger:
        try:
            limits = lg._log_record_limits
            attrs = rec.attributes
            if (
                lg._is_enabled()
                and limits.max_log_record_attribute_length is None
                and (attrs is None or len(attrs) <= (limits.max_log_record_attributes or 0))
            ):
                resource = lg._resource
                bp = _queue_of(lg)
                if bp is not None:
                    rec.context = _EMPTY_CONTEXT
                    ro = object.__new__(ReadableLogRecord)  # frozen dataclass: fields set as its __init__ does
                    ro.__dict__.update(log_record=rec, resource=resource if resource is not None else
                                       Resource.create({}), instrumentation_scope=lg._instrumentation_scope,
                                       limits=limits)  # fmt: skip
                    lg._logger_metrics.emit_log()
                    bp.emit(ro)
                    return
                rw = object.__new__(ReadWriteLogRecord)
                rw.log_record = rec
                rw.resource = resource
                rw.instrumentation_scope = lg._instrumentation_scope
                rw.limits = limits
                lg._logger_metrics.emit_log()
                lg._multi_log_record_processor.on_emit(rw)
                return
        except AttributeError:  # pragma: no cover - an SDK whose internals moved: the public path
            pass
    lg.emit(rec)
