"""Exporter wrappers that redact spans and log records on the export thread.

They sit between the batch processor and the OTLP exporter, so redaction costs nothing on the
application's threads and covers spans from every instrumentation (ours and third-party). They
build copies: the objects the application (or another processor) holds are never mutated. A
failure to redact one item drops that item (counted) rather than exporting it unredacted.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry._logs import LogRecord
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from agentpress_otel import _selftel
from agentpress_otel._export import E, ExporterWrapper
from agentpress_otel._otlp_wire import plain_attributes, plain_list
from agentpress_otel.redaction._engine import KEYS_MORE, KEYS_URL, URL_ATTRIBUTES, Redactor, default_redactor

_G_REDACT_METRICS = _selftel.guard("redaction.metrics")


class PreRedactedLogRecord(LogRecord):
    """A LogRecord whose body and attributes agentpress-otel already redacted (the log worker
    does it for the JSON line anyway); :class:`RedactingLogExporter` passes it through unscanned."""


def _attrs(r: Redactor, attrs: Mapping[str, Any] | None, max_len: int | None = None) -> Mapping[str, Any] | None:
    """``attrs`` redacted (the same object when nothing changed). ``max_len`` is the span's attribute length
    limit: a tag can be longer than what it replaces, and the copy must stay within the limit the span had."""
    new = r.redact_attributes(attrs)
    if new is None:
        return attrs
    dropped = attrs.dropped if isinstance(attrs, BoundedAttributes) else 0
    bounded = BoundedAttributes(maxlen=None, attributes=new, immutable=True, extended_attributes=True,
                                max_value_len=max_len)
    bounded.dropped = dropped  # keep the SDK's dropped-attribute count for the OTLP encoder
    return bounded


def add_scannable(r: Redactor, attrs: Mapping[Any, Any] | None, out: list[str], *, lists: bool = True) -> bool:
    """Append to ``out`` the strings of ``attrs`` when redacting them is only scanning those strings: str keys, none
    sensitive and none with key rules (URLs with a query, stack traces), values None, booleans, numbers or text
    (and, with ``lists``, lists of those); False when any needs more. The one pre-check of span attributes and log
    extras, for :meth:`Redactor.dirty`."""
    if not attrs:
        return True
    plan = r.key_plan(tuple(attrs))
    if plan == KEYS_MORE:
        return False
    if plan == KEYS_URL:
        for k in URL_ATTRIBUTES.intersection(attrs):
            # A URL without a query is only scanned (Redactor.redact_url); every HTTP client span has one, so
            # this keeps them out of the per-span path. Queries (key rules) and url.query itself need it.
            v = attrs[k]
            if k == "url.query" or type(v) is not str or "?" in v:
                return False
    for v in attrs.values():
        t = type(v)
        if t is str:
            out.append(v)
        elif v is None or t is int or t is float or t is bool:
            continue
        elif lists and (t is tuple or t is list):
            if not all(_add_scalar(x, out) for x in v):
                return False
        elif not _add_scalar(v, out):
            return False
    return True


def _add_scalar(v: Any, out: list[str]) -> bool:
    t = type(v)
    if t is str:
        out.append(v)
    elif not (v is None or t is int or t is float or t is bool):  # the common types first, then subclasses
        if isinstance(v, str):
            out.append(v)
        elif not isinstance(v, (int, float)):
            return False
    return True


def _add_span_texts(r: Redactor, s: ReadableSpan, out: list[str]) -> bool:
    """Append every string :meth:`RedactingSpanExporter._redact_item` would scan in ``s``; False if it would do
    more than scan them."""
    out.append(s.name)
    if s.status.description:
        out.append(s.status.description)
    return add_scannable(r, plain_attributes(s), out) and all(
        add_scannable(r, plain_attributes(ev), out) for ev in plain_list(s, "events")) and all(
        add_scannable(r, plain_attributes(ln), out) for ln in plain_list(s, "links"))


class _Redacting(ExporterWrapper[E]):
    """What the three wrappers share: ``inner``, the redactor, flush and shutdown handed on; for spans and logs,
    redact each item (an item that fails is dropped, counted, never exported unredacted) and pass the copies on."""

    _signal = ""
    success: Any = None
    failure: Any = None

    def __init__(self, inner: E, *, redactor: Redactor | None = None) -> None:
        self.inner = inner
        self._redactor = redactor
        self._guard = _selftel.guard(f"exporter.{self._signal}")

    def _redact_item(self, r: Redactor, item: Any) -> Any:
        raise NotImplementedError

    def _maybe_dirty(self, r: Redactor, batch: Sequence[Any]) -> set[int] | None:
        """Indices of the items :meth:`_redact_item` could change (None: all of them)."""
        return None

    def _export(self, batch: Sequence[Any]) -> Any:
        r = self._redactor or default_redactor()
        out: list[Any] = []
        dirty: set[int] | None = None
        with self._guard:  # a failed pre-check only costs speed: every item is then redacted on its own
            dirty = self._maybe_dirty(r, batch)
        for i, item in enumerate(batch):
            if dirty is not None and i not in dirty:
                out.append(item)
                continue
            try:
                out.append(self._redact_item(r, item))
            except Exception as exc:  # noqa: BLE001 - the guard's swallow, plus a drop count for the item
                _selftel.record_dropped(self._signal, "redaction_error")
                _selftel.swallow(f"redaction.{self._signal}", exc)
        if not out:
            return self.success
        try:
            return cast(Any, self.inner).export(out)
        except Exception as exc:  # noqa: BLE001 - the guard's swallow, plus a drop count for the batch
            _selftel.record_dropped(self._signal, "export_error", len(out))
            _selftel.swallow(f"exporter.{self._signal}", exc)
            return self.failure



class RedactingSpanExporter(_Redacting[SpanExporter], SpanExporter):
    """Wraps a span exporter; exports redacted copies of spans.

    Redacts the span name, attributes (URLs and query strings get key rules), event attributes
    (``exception.message``/``exception.stacktrace`` included), link attributes and the status
    description.

    Example::

        BatchSpanProcessor(RedactingSpanExporter(OTLPSpanExporter(endpoint=...)))
    """

    _signal, success, failure = "spans", SpanExportResult.SUCCESS, SpanExportResult.FAILURE

    def _maybe_dirty(self, r: Redactor, batch: Sequence[Any]) -> set[int] | None:
        # Most spans hold no secret: the strings of every span of the batch are checked together (one RE2 scan,
        # Redactor.dirty) and only a span with a candidate match or an attribute that is more than a string scan
        # (a sensitive key, a URL, a container...) goes through _redact_item. About 1 us per string attribute.
        return r.dirty(batch, lambda s, flat: _add_span_texts(r, s, flat))

    def _redact_item(self, r: Redactor, s: ReadableSpan) -> ReadableSpan:
        max_len = getattr(getattr(s, "_attributes", None), "max_value_len", None)  # the span's limit (SDK spans)
        attrs = _attrs(r, s.attributes, max_len)
        changed = attrs is not s.attributes
        events: list[Event] = []
        for ev in s.events:
            ea = _attrs(r, ev.attributes, max_len)
            if ea is not ev.attributes:
                changed = True
                events.append(Event(ev.name, ea, ev.timestamp))
            else:
                events.append(ev)
        links: list[Link] = []
        for ln in s.links:
            la = _attrs(r, ln.attributes, max_len)
            if la is not ln.attributes:
                changed = True
                links.append(Link(ln.context, la))
            else:
                links.append(ln)
        status = s.status
        if status.description:
            desc = r.redact(status.description)
            if desc is not status.description:
                changed = True
                status = Status(status.status_code, desc)
        name = r.redact(s.name)
        if name is not s.name:
            changed = True
        if not changed:
            return s
        return ReadableSpan(
            name=name,
            context=s.context,
            parent=s.parent,
            resource=s.resource,
            attributes=attrs,
            events=events,
            links=links,
            kind=s.kind,
            status=status,
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=s.instrumentation_scope,
        )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return cast(SpanExportResult, self._export(spans))


class RedactingLogExporter(_Redacting[LogRecordExporter], LogRecordExporter):
    """Wraps a log record exporter; exports copies with redacted bodies and attributes.

    Example::

        BatchLogRecordProcessor(RedactingLogExporter(OTLPLogExporter(endpoint=...)))
    """

    _signal, success, failure = "logs", LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE

    def _redact_item(self, r: Redactor, rec: ReadableLogRecord) -> ReadableLogRecord:
        lr = rec.log_record
        if type(lr) is PreRedactedLogRecord:
            return rec
        body = lr.body
        if isinstance(body, str):
            new_body: Any = r.redact(body)
        elif body is None or isinstance(body, (bool, int, float)):
            new_body = body
        else:
            # bytes and containers (and any object a third-party handler put there) are scanned
            new_body = r.redact_attribute("body", body)
        attrs = _attrs(r, lr.attributes, getattr(lr.attributes, "max_value_len", None))  # the record's limit
        if new_body is body and attrs is lr.attributes:
            return rec
        new_lr = copy.copy(lr)
        new_lr.body = new_body
        new_lr.attributes = attrs
        return dataclasses.replace(rec, log_record=new_lr)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        return cast(LogRecordExportResult, self._export(batch))


class RedactingMetricExporter(_Redacting[MetricExporter], MetricExporter):
    """Wraps a metric exporter; data point attributes (labels) are redacted like span attributes.

    Labels end up in Prometheus verbatim and for as long as the series lives: a token or an e-mail put in a
    label by mistake must not get there. Only points whose attributes change are copied.

    Example::

        PeriodicExportingMetricReader(RedactingMetricExporter(OTLPMetricExporter(endpoint=...)))
    """

    _signal = "metrics"

    def __init__(self, inner: MetricExporter, *, redactor: Redactor | None = None) -> None:
        _Redacting.__init__(self, inner, redactor=redactor)
        # The reader asks the exporter for temporality and aggregation: answer with the inner one's.
        MetricExporter.__init__(self, preferred_temporality=inner._preferred_temporality,
                                preferred_aggregation=inner._preferred_aggregation)


    @staticmethod
    def _redact(r: Redactor, data: MetricsData) -> MetricsData:
        changed = False
        rms = []
        for rm in data.resource_metrics:
            sms = []
            for sm in rm.scope_metrics:
                ms = []
                for m in sm.metrics:
                    points = getattr(m.data, "data_points", None)
                    if points:
                        new_points = []
                        for p in points:
                            attrs = r.redact_attributes(p.attributes)
                            new_points.append(p if attrs is None else dataclasses.replace(p, attributes=attrs))
                        if any(a is not b for a, b in zip(new_points, points, strict=True)):
                            changed = True
                            data_ = cast(Any, m.data)  # Sum | Gauge | Histogram | ...: all have data_points
                            m = dataclasses.replace(m, data=dataclasses.replace(data_, data_points=new_points))
                    ms.append(m)
                sms.append(dataclasses.replace(sm, metrics=ms))
            rms.append(dataclasses.replace(rm, scope_metrics=sms))
        return dataclasses.replace(data, resource_metrics=rms) if changed else data

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        data = None
        with _G_REDACT_METRICS:  # never export unredacted labels: this interval's points are lost (counted)
            data = self._redact(self._redactor or default_redactor(), metrics_data)
        if data is None:
            return MetricExportResult.FAILURE
        return self.inner.export(data, timeout_millis=timeout_millis, **kwargs)
