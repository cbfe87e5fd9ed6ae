"""In-memory SDK providers wired like ``instrument()`` does, for our tests, demo checks and benchmarks.

Private. Replace with ``agentpress_otel.testing.capture()`` once the lead's test kit covers the same needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentpress_otel._config import Config, load_config
from agentpress_otel._context import ContextSpanProcessor


@dataclass
class Kit:
    config: Config
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    span_exporter: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    log_exporter: InMemoryLogRecordExporter
    resource: Resource = field(default_factory=Resource.get_empty)

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        out = list(self.span_exporter.get_finished_spans())
        return [s for s in out if name is None or s.name == name or s.name.startswith(name)]

    def logs(self) -> list[Any]:
        return list(self.log_exporter.get_finished_logs())

    def points(self, metric: str) -> Iterator[tuple[dict[str, Any], Any]]:
        data = self.metric_reader.get_metrics_data()
        if data is None:
            return
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == metric:
                        for p in m.data.data_points:
                            yield dict(p.attributes or {}), p

    def metric_sum(self, metric: str, **match: Any) -> float:
        """Sum of a counter, or of a histogram's ``sum``, over points whose attributes match."""
        total = 0.0
        for attrs, p in self.points(metric):
            if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()):
                total += getattr(p, "sum", getattr(p, "value", 0))
        return total

    def metric_count(self, metric: str, **match: Any) -> int:
        n = 0
        for attrs, p in self.points(metric):
            if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()):
                n += int(getattr(p, "count", 0))
        return n

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        self.tracer_provider.force_flush(int(timeout_s * 1000))
        self.logger_provider.force_flush(int(timeout_s * 1000))
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def make_kit(**config: Any) -> Kit:
    """Providers with in-memory exporters, ContextSpanProcessor first, and a resolved Config."""
    cfg = load_config(config)
    tp = TracerProvider()
    tp.add_span_processor(ContextSpanProcessor())
    exp = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    lp = LoggerProvider()
    lexp = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    lp.add_log_record_processor(SimpleLogRecordProcessor(lexp))
    return Kit(cfg, tp, mp, lp, exp, reader, lexp)
