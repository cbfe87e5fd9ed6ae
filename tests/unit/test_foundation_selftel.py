"""Self-telemetry: lost spans and swallowed errors are counted and exported as metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from agentpress_otel import _selftel
from agentpress_otel._export import CountingSpanExporter, DropCountingSpanProcessor
from agentpress_otel.testing import capture


class SlowExporter(SpanExporter):
    def __init__(self, delay: float, fail: bool = False) -> None:
        self.delay, self.fail, self.exported = delay, fail, 0
        self.gate = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.gate.wait(5)
        time.sleep(self.delay)
        if self.fail:
            return SpanExportResult.FAILURE
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


def test_queue_full_drops_are_counted_exactly() -> None:
    _selftel.reset()
    exporter = SlowExporter(0.0)
    proc = DropCountingSpanProcessor(CountingSpanExporter(lambda: exporter), max_queue_size=16)
    tp = TracerProvider()
    tp.add_span_processor(proc)
    tracer = tp.get_tracer("t")
    for _ in range(500):  # the exporter is blocked on its gate: the queue overflows
        tracer.start_span("s").end()
    exporter.gate.set()
    tp.force_flush()
    dropped = _selftel.dropped("spans", "queue_full")
    assert dropped > 0
    assert exporter.exported + dropped == 500
    tp.shutdown()


def test_failed_exports_are_counted() -> None:
    _selftel.reset()
    exporter = SlowExporter(0.0, fail=True)
    exporter.gate.set()
    tp = TracerProvider()
    tp.add_span_processor(DropCountingSpanProcessor(CountingSpanExporter(lambda: exporter), max_queue_size=64))
    for _ in range(10):
        tp.get_tracer("t").start_span("s").end()
    tp.force_flush()
    assert _selftel.dropped("spans", "export_failed") == 10
    tp.shutdown()


def test_counters_are_exported_as_metrics() -> None:
    _selftel.reset()
    with capture(integrations=[]) as cap:
        _selftel.record_dropped("logs", "queue_full", 7)
        _selftel.record_error("unit-test", ValueError("boom"))
        assert cap.metric_sum("agentpress_otel.exporter.dropped", signal="logs", reason="queue_full") == 7
        assert cap.metric_sum("agentpress_otel.internal.errors", component="unit-test") == 1
