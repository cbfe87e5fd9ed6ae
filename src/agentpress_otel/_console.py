"""``OTEL_{TRACES,METRICS,LOGS}_EXPORTER=console``: one readable line per span, log record or metric point.

The SDK's console exporters print a multi-line JSON document per item, unreadable while developing. These
write one line each to stdout (the SDK's choice of stream), and run behind the same batch processors and
redaction stage as OTLP export, so they never block the caller and never print a secret OTLP would not send.

    12:04:05.120 span   POST /api/agent/start  SERVER  38.2 ms  UNSET  trace=4bf9…4736 span=00f0…02b7  http.route=…
    12:04:05.118 log    INFO   agent run started  trace=4bf9…4736 span=00f0…02b7  agentpress.thread.id=t-1
    12:04:35.000 metric gen_ai.client.token.usage  sum=1342 count=4  gen_ai.request.model=gpt-4o-mini
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentpress_otel._text import to_text, truncate

__all__ = ["ConsoleLogExporter", "ConsoleMetricExporter", "ConsoleSpanExporter"]

_MAX_VALUE = 120  # characters of one attribute value on the line
_lock = threading.Lock()  # spans, logs and metrics export from three threads: keep lines whole


def _clock(ns: int | None) -> str:
    if not ns:
        return "--:--:--.---"
    secs = ns / 1e9
    return time.strftime("%H:%M:%S", time.localtime(secs)) + f".{int(ns // 1_000_000 % 1000):03d}"


def _attrs(attrs: Mapping[str, Any] | None) -> str:
    if not attrs:
        return ""
    return "  " + " ".join(f"{k}={truncate(_one_line(v), _MAX_VALUE)}" for k, v in attrs.items())


def _one_line(value: Any) -> str:
    return to_text(value).replace("\n", "\\n")


def _ids(trace_id: int | None, span_id: int | None) -> str:
    if not trace_id:
        return ""
    return f"  trace={trace_id:032x} span={span_id or 0:016x}"


class _Writer:
    """What the three console exporters share: one locked write of whole lines, and nothing to flush or stop."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self._out = out

    def _write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        out = self._out or sys.stdout  # resolved late: pytest and the demo swap sys.stdout
        with _lock:
            out.write("".join(line + "\n" for line in lines))
            out.flush()

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        return None

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        return True


def _span_line(s: ReadableSpan) -> str:
    dur = ((s.end_time or 0) - (s.start_time or 0)) / 1e6
    ctx = s.get_span_context()
    return (f"{_clock(s.start_time)} span   {s.name}  {s.kind.name}  {dur:.1f} ms  {s.status.status_code.name}"
            f"{_ids(ctx.trace_id if ctx else None, ctx.span_id if ctx else None)}{_attrs(s.attributes)}")


def _log_line(item: ReadableLogRecord) -> str:
    r = item.log_record
    level = r.severity_text or (r.severity_number.name if r.severity_number else "-")
    return (f"{_clock(r.timestamp or r.observed_timestamp)} log    {level:<5}  {_one_line(r.body)}"
            f"{_ids(r.trace_id, r.span_id)}{_attrs(r.attributes)}")


def _metric_lines(metrics_data: MetricsData) -> list[str]:
    lines = []
    for rm in metrics_data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    if isinstance(p, HistogramDataPoint):
                        value = f"sum={p.sum:g} count={p.count}"
                    elif isinstance(p, NumberDataPoint):
                        value = f"{p.value:g}"
                    else:
                        value = type(p).__name__
                    lines.append(f"{_clock(p.time_unix_nano)} metric {m.name}  {value}{_attrs(p.attributes)}")
    return lines


class ConsoleSpanExporter(_Writer, SpanExporter):
    """One line per finished span (time, name, kind, duration, status, short ids, attributes), to ``out``."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._write([_span_line(s) for s in spans])
        return SpanExportResult.SUCCESS


class ConsoleLogExporter(_Writer, LogRecordExporter):
    """One line per log record (time, severity, body with newlines escaped, short ids, attributes)."""

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._write([_log_line(item) for item in batch])
        return LogRecordExportResult.SUCCESS


class ConsoleMetricExporter(_Writer, MetricExporter):
    """One line per data point: time, metric name, value (sum/count for histograms), attributes.

    Example::

        PeriodicExportingMetricReader(ConsoleMetricExporter())
    """

    def __init__(self, out: IO[str] | None = None) -> None:
        _Writer.__init__(self, out)
        MetricExporter.__init__(self)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self._write(_metric_lines(metrics_data))
        return MetricExportResult.SUCCESS
