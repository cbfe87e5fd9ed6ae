"""Self-telemetry: lost spans and swallowed errors are counted and exported as metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
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
    """Every span is either exported or counted as dropped when the queue is full."""
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


def test_full_queue_evicts_the_oldest_and_keeps_the_newest() -> None:
    """What docs/configuration.md promises: a full queue still takes the new span and evicts the oldest."""
    names: list[str] = []

    class Recording(SlowExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            names.extend(s.name for s in spans)
            return super().export(spans)

    exporter = Recording(0.0)
    tp = TracerProvider()
    tp.add_span_processor(DropCountingSpanProcessor(CountingSpanExporter(lambda: exporter), max_queue_size=16))
    tracer = tp.get_tracer("t")
    for i in range(200):
        tracer.start_span(f"s{i}").end()
    exporter.gate.set()
    tp.force_flush()
    tp.shutdown()
    # At most one batch (4) left before the exporter blocked; the queue then kept the 16 newest.
    assert names[-16:] == [f"s{i}" for i in range(184, 200)]
    assert len(names) + _selftel.dropped("spans", "queue_full") == 200


def test_failed_exports_are_counted() -> None:
    """Spans whose export fails are counted as ``export_failed``."""
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
    """Drop and error counters are exported as metrics with their labels."""
    with capture(integrations=[]) as cap:
        _selftel.record_dropped("logs", "queue_full", 7)
        _selftel.record_error("unit-test", ValueError("boom"))
        assert cap.metric_sum("agentpress_otel.exporter.dropped", signal="logs", reason="queue_full") == 7
        assert cap.metric_sum("agentpress_otel.internal.errors", component="unit-test") == 1


def test_failed_metric_exports_count_every_lost_point() -> None:
    """Metric data points a Collector refused are counted like spans and logs (``signal="metrics"``)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        MetricExporter,
        MetricExportResult,
        MetricsData,
        PeriodicExportingMetricReader,
    )

    from agentpress_otel._export import CountingMetricExporter

    class Refusing(MetricExporter):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kw: object) -> MetricExportResult:
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("exporter bug")  # a raising exporter is counted too, never propagated
            return MetricExportResult.FAILURE

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return True

        def shutdown(self, timeout_millis: float = 30_000, **kw: object) -> None:
            return None

    inner = Refusing()
    reader = PeriodicExportingMetricReader(CountingMetricExporter(lambda: inner), export_interval_millis=3_600_000)
    mp = MeterProvider(metric_readers=[reader])
    counter = mp.get_meter("t").create_counter("c")
    for route in ("/a", "/b", "/c"):
        counter.add(1, {"route": route})
    mp.force_flush()
    mp.force_flush()
    assert inner.calls == 2
    assert _selftel.dropped("metrics", "export_failed") == 2 * 3  # two collections of three points each
    assert _selftel.errors("export.metrics") == 1
    mp.shutdown()


def _our_bug() -> None:
    """Stands for a bug in telemetry code: its frame must look like the package's own."""
    raise KeyError("bug")


# Compiled under the package's path, so the guard sees the innermost frame as the package's own code.
_ns: dict[str, object] = {}
exec(compile("def our_bug():\n    raise KeyError('bug')\n", _selftel.__file__, "exec"), _ns)  # noqa: S102
_package_bug = _ns["our_bug"]


def test_guard_swallows_and_counts_in_production() -> None:
    """Outside strict mode the guard swallows any Exception, ours or not, and counts it per component."""
    was = _selftel.set_strict(False)
    try:
        with _selftel.guard("unit.g"):
            _package_bug()  # type: ignore[operator]
        with _selftel.guard("unit.g"):
            _our_bug()
        assert _selftel.errors("unit.g") == 2

        @_selftel.guarded("unit.d", default=-1)
        def f() -> int:
            _package_bug()  # type: ignore[operator]
            return 1

        assert f() == -1
        assert _selftel.errors("unit.d") == 1
    finally:
        _selftel.set_strict(was)


def test_guard_reraises_package_bugs_in_strict_mode_only() -> None:
    """In strict mode an exception raised in package code propagates; one raised outside it is still swallowed."""
    assert _selftel.is_strict()  # the suite runs strict (tests/conftest.py)
    with pytest.raises(KeyError), _selftel.guard("unit.s"):
        _package_bug()  # type: ignore[operator]
    with _selftel.guard("unit.s"):
        _our_bug()  # raised in this test file: an outside fault the guard must survive
    with pytest.raises(KeyboardInterrupt), _selftel.guard("unit.s"):
        raise KeyboardInterrupt
    assert _selftel.errors("unit.s") == 2

    @_selftel.guarded("unit.sd")
    def g() -> None:
        _package_bug()  # type: ignore[operator]

    with pytest.raises(KeyError):
        g()


def test_strict_mode_keeps_a_background_thread_bug_for_the_end_of_the_test() -> None:
    """In strict mode a package bug on a worker thread does not end that thread: it is kept and handed over once."""
    import threading

    seen: list[str] = []

    def worker() -> None:
        with _selftel.guard("unit.bg"):
            _package_bug()  # type: ignore[operator]
        seen.append("still running")  # the loop goes on after the guard

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == ["still running"]
    kept = _selftel.take_strict_failures()
    assert [type(e) for e in kept] == [KeyError]
    assert _selftel.take_strict_failures() == []


def test_capture_raises_a_background_thread_bug_when_the_block_ends() -> None:
    """``testing.capture()`` re-raises, at the end of its block, a package bug kept from a background thread."""
    import threading

    from agentpress_otel.testing import capture

    def worker() -> None:
        with _selftel.guard("unit.bg"):
            _package_bug()  # type: ignore[operator]

    def run_in_block() -> None:
        with capture():
            t = threading.Thread(target=worker)
            t.start()
            t.join()

    with pytest.raises(KeyError):
        run_in_block()
    assert _selftel.is_strict()  # restored to the suite's setting


def test_capture_restores_strict_mode_when_instrument_rejects_an_option() -> None:
    """A ``capture()`` whose options are invalid raises the config error and leaves no strict mode or handle behind."""
    from agentpress_otel import ConfigError, current
    from agentpress_otel.testing import capture

    was = _selftel.set_strict(False)
    try:
        with pytest.raises(ConfigError), capture(sample_ratio=2.0):
            pass
        assert not _selftel.is_strict()
        assert current() is None
    finally:
        _selftel.set_strict(was)
