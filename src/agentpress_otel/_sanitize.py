"""Wire-safe copies of spans, log records and metrics: every string made encodable as UTF-8.

OTLP is protobuf, whose strings must be valid UTF-8. Python strings can hold lone surrogates (decoded
file names, ``surrogateescape`` input, sliced emoji), and one of them anywhere (span or event name,
tracer name, status description, log body, resource or scope attribute, metric label) makes the encoder
raise for the whole request. The exporter wrappers in ``_export`` call :func:`clean` only after an
encode failed, so the common path costs nothing; the copy keeps every item, with U+FFFD in place of
each unencodable character. The objects the application holds are never mutated.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

from opentelemetry._logs import LogRecord
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Status

from agentpress_otel import _selftel

_DEPTH = 32
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


_G_CLEAN = _selftel.guard("export.sanitize")

def wire_text(s: str) -> str:
    """``s`` if it encodes as UTF-8, else a copy with U+FFFD for each lone surrogate (pairs joined)."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        # Through UTF-16: a surrogate pair written as two code points becomes its real character.
        return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _attrs(attrs: Any, depth: int) -> Any:
    if attrs is None:
        return None
    new = {_clean(k, depth): _clean(v, depth) for k, v in attrs.items()}
    if isinstance(attrs, BoundedAttributes):
        bounded = BoundedAttributes(maxlen=None, attributes=new, immutable=True, extended_attributes=True)
        bounded.dropped = attrs.dropped  # the encoder reports the SDK's dropped count
        return bounded
    return new


def _span(s: ReadableSpan, d: int) -> ReadableSpan:
    status = s.status
    return ReadableSpan(
        name=wire_text(s.name),
        context=s.context,
        parent=s.parent,
        resource=_clean(s.resource, d),
        attributes=_attrs(s.attributes, d),
        events=[Event(wire_text(e.name), _attrs(e.attributes, d), e.timestamp) for e in s.events],
        links=[Link(ln.context, _attrs(ln.attributes, d)) for ln in s.links],
        kind=s.kind,
        status=Status(status.status_code, wire_text(status.description)) if status.description else status,
        start_time=s.start_time,
        end_time=s.end_time,
        instrumentation_scope=_clean(s.instrumentation_scope, d),
    )


def _log_record(lr: LogRecord, d: int) -> LogRecord:
    new = copy.copy(lr)
    new.body = _clean(lr.body, d)
    new.attributes = _attrs(lr.attributes, d)
    if isinstance(lr.severity_text, str):
        new.severity_text = wire_text(lr.severity_text)
    if isinstance(getattr(lr, "event_name", None), str):
        new.event_name = wire_text(lr.event_name)  # type: ignore[arg-type]
    return new


def _clean(obj: Any, depth: int = 0) -> Any:
    if isinstance(obj, str):
        return wire_text(obj)
    if isinstance(obj, int) and not isinstance(obj, bool) and not _INT64_MIN <= obj <= _INT64_MAX:
        return str(obj)  # OTLP ints are 64-bit: keep the value as text rather than lose the item
    if obj is None or isinstance(obj, (bool, int, float, bytes)) or depth > _DEPTH:
        return obj
    d = depth + 1
    if isinstance(obj, ReadableSpan):
        return _span(obj, d)
    if isinstance(obj, LogRecord):
        return _log_record(obj, d)
    if isinstance(obj, Resource):
        return Resource(_attrs(obj.attributes, d), obj.schema_url)
    if isinstance(obj, InstrumentationScope):
        return InstrumentationScope(wire_text(obj.name), _clean(obj.version, d), obj.schema_url,
                                    _attrs(obj.attributes, d))
    if isinstance(obj, Mapping):
        return {_clean(k, d): _clean(v, d) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_clean(v, d) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # ReadableLogRecord and the metric data classes (frozen): replace every field, recursively.
        return dataclasses.replace(obj, **{f.name: _clean(getattr(obj, f.name), d)
                                           for f in dataclasses.fields(obj) if f.init})
    return obj


def clean(item: Any) -> Any:
    """A copy of ``item`` (span, log record, metrics data) whose every string encodes as UTF-8.

    Example::

        exporter.export([clean(span)])
    """
    return _clean(item)


def _encoder(signal: str) -> Any:
    if signal == "spans":
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        return encode_spans
    if signal == "logs":
        from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs

        return encode_logs
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    return lambda items: [encode_metrics(m) for m in items]


def _encodes(encode: Any, items: Any) -> bool:
    try:
        encode(items)
        return True
    except Exception:  # noqa: BLE001 - whatever the encoder raises means "does not encode": the answer, not an error
        return False


def encodable_items(signal: str, items: Any) -> tuple[list[Any], int] | None:
    """``None`` when ``items`` encode as OTLP (the failure was elsewhere, e.g. the network); else the
    items to send (poison ones replaced by wire-safe copies) and how many could not be saved.

    Example::

        fixed = encodable_items("spans", batch)
    """
    try:
        encode = _encoder(signal)
    except ImportError:  # no OTLP exporter installed: nothing to check against
        return None
    if _encodes(encode, items):
        return None
    good: list[Any] = []
    lost = 0
    for item in items:
        if _encodes(encode, [item]):
            good.append(item)
            continue
        fixed = None
        with _G_CLEAN:  # an item even the copy cannot fix is counted as lost by the caller
            fixed = clean(item)
        if fixed is not None and _encodes(encode, [fixed]):
            good.append(fixed)
        else:
            lost += 1
    return good, lost
