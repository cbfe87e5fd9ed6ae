"""Export: OTLP exporters behind wrappers that count what is lost and never raise.

The chain for each signal is ``Batch processor (bounded queue, background thread)`` →
``redaction wrapper`` (on the export thread) → ``_Counting*Exporter`` → OTLP exporter.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentpress_otel import _selftel
from agentpress_otel._config import Config

# Signal path suffixes for OTLP/HTTP when the endpoint is a base URL (OTEL_EXPORTER_OTLP_ENDPOINT semantics).
_HTTP_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


def _http_endpoint(cfg: Config, signal: str) -> str:
    return cfg.endpoint.rstrip("/") + _HTTP_PATHS[signal]


def _grpc_endpoint(cfg: Config) -> tuple[str, bool]:
    insecure = not cfg.endpoint.startswith("https://")
    return cfg.endpoint, insecure


def make_span_exporter(cfg: Config) -> SpanExporter:
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter

        ep, insecure = _grpc_endpoint(cfg)
        return GrpcSpanExporter(
            endpoint=ep, insecure=insecure, headers=cfg.headers or None, timeout=cfg.export_timeout_s
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(
        endpoint=_http_endpoint(cfg, "traces"), headers=cfg.headers or None, timeout=cfg.export_timeout_s
    )


def make_metric_exporter(cfg: Config) -> MetricExporter:
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        ep, insecure = _grpc_endpoint(cfg)
        return GrpcMetricExporter(
            endpoint=ep, insecure=insecure, headers=cfg.headers or None, timeout=cfg.export_timeout_s
        )
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter

    return HttpMetricExporter(
        endpoint=_http_endpoint(cfg, "metrics"), headers=cfg.headers or None, timeout=cfg.export_timeout_s
    )


def make_log_exporter(cfg: Config) -> LogRecordExporter:
    if cfg.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        ep, insecure = _grpc_endpoint(cfg)
        return GrpcLogExporter(
            endpoint=ep, insecure=insecure, headers=cfg.headers or None, timeout=cfg.export_timeout_s
        )
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(
        endpoint=_http_endpoint(cfg, "logs"), headers=cfg.headers or None, timeout=cfg.export_timeout_s
    )


class CountingSpanExporter(SpanExporter):
    """Counts spans lost to failed exports; rebuilds its inner exporter after fork (gRPC channels do not survive it)."""

    def __init__(self, factory: Callable[[], SpanExporter]) -> None:
        self._factory = factory
        self.inner = factory()
        self._pid = os.getpid()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.inner = self._factory()
        try:
            result = self.inner.export(spans)
        except Exception as exc:
            _selftel.record_error("export.spans", exc)
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            _selftel.record_dropped("spans", "export_failed", len(spans))
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()
        except Exception as exc:
            _selftel.record_error("export.spans", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


class CountingLogExporter(LogRecordExporter):
    def __init__(self, factory: Callable[[], LogRecordExporter]) -> None:
        self._factory = factory
        self.inner = factory()
        self._pid = os.getpid()

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.inner = self._factory()
        try:
            result = self.inner.export(batch)
        except Exception as exc:
            _selftel.record_error("export.logs", exc)
            result = LogRecordExportResult.FAILURE
        if result is not LogRecordExportResult.SUCCESS:
            _selftel.record_dropped("logs", "export_failed", len(batch))
        return result

    def shutdown(self) -> None:
        try:
            self.inner.shutdown()  # type: ignore[no-untyped-call]
        except Exception as exc:
            _selftel.record_error("export.logs", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


class _CountingDeque(collections.deque[Any]):
    """The SDK batch queue evicts the oldest item silently when full; this one counts each eviction.

    ``appendleft`` (producer) and ``pop`` (export worker) share a lock so the count is exact.
    """

    def __init__(self, maxlen: int, signal: str) -> None:
        super().__init__((), maxlen)
        self._signal = signal
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _guard(self) -> threading.Lock:
        if self._pid != os.getpid():  # a lock held by another thread at fork() would never be released
            self._pid = os.getpid()
            self._lock = threading.Lock()
        return self._lock

    def appendleft(self, item: Any) -> None:
        with self._guard():
            if len(self) == self.maxlen:
                _selftel.record_dropped(self._signal, "queue_full")
            super().appendleft(item)

    def pop(self, *args: Any) -> Any:
        with self._guard():
            return super().pop(*args)


def _install_counting_queue(proc: Any, max_queue_size: int, signal: str) -> None:
    try:
        proc._batch_processor._queue = _CountingDeque(max_queue_size, signal)
    except AttributeError as exc:  # SDK internals moved: keep working, lose only the drop count
        _selftel.record_error("export.queue", exc)


class DropCountingSpanProcessor(BatchSpanProcessor):
    """BatchSpanProcessor that counts spans evicted by a full queue (the SDK only logs them)."""

    def __init__(self, exporter: SpanExporter, *, max_queue_size: int, schedule_delay_millis: float = 1000) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=min(512, max_queue_size),
        )
        _install_counting_queue(self, max_queue_size, "spans")


class DropCountingLogProcessor(BatchLogRecordProcessor):
    """BatchLogRecordProcessor that counts log records evicted by a full queue."""

    def __init__(
        self, exporter: LogRecordExporter, *, max_queue_size: int, schedule_delay_millis: float = 1000
    ) -> None:
        super().__init__(
            exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=min(512, max_queue_size),
        )
        _install_counting_queue(self, max_queue_size, "logs")


class _DropTruncationWarnings(logging.Filter):
    """The SDK logs one warning per truncated attribute; count them instead of flooding the app's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "truncating" in str(record.msg):
            _selftel.record_dropped("attributes", "truncated")
            return False
        return True


def quiet_sdk_loggers() -> None:
    lg = logging.getLogger("opentelemetry.attributes")
    if not any(isinstance(f, _DropTruncationWarnings) for f in lg.filters):
        lg.addFilter(_DropTruncationWarnings())


__all__ = [
    "CountingLogExporter",
    "CountingSpanExporter",
    "DropCountingLogProcessor",
    "DropCountingSpanProcessor",
    "LogRecordProcessor",
    "make_log_exporter",
    "make_metric_exporter",
    "make_span_exporter",
    "quiet_sdk_loggers",
]
