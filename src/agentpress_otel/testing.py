"""Public test kit: run ``instrument()`` against in-memory exporters and inspect what would be exported.

Example (pytest)::

    from agentpress_otel.testing import capture

    def test_my_agent():
        with capture(service_name="test") as cap:
            run_my_agent()
        span = cap.span("invoke_agent planner")
        assert span.attributes["agentpress.thread.id"] == "t-1"

Or use the ``telemetry_capture`` fixture: with the package installed, pytest finds it through the
``pytest11`` entry point (no import needed)::

    def test_my_agent(telemetry_capture):
        run_my_agent()
        assert telemetry_capture.span("invoke_agent planner")

What the kit captures has gone through the same redaction stage as OTLP export, so tests see what a
Collector would receive.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentpress_otel import _selftel, _setup

__all__ = ["Capture", "agentpress_structlog_processors", "capture", "metric_points", "telemetry_capture"]


class Capture:
    """What one :func:`capture` block recorded."""

    def __init__(
        self,
        tel: _setup.Telemetry,
        spans: InMemorySpanExporter,
        logs: InMemoryLogRecordExporter,
        reader: InMemoryMetricReader,
    ) -> None:
        self.telemetry = tel
        self._spans = spans
        self._logs = logs
        self._reader = reader

    def flush(self) -> None:
        """Drain background log queues and batch processors into the in-memory exporters."""
        for h in logging.getLogger().handlers:
            try:
                h.flush()
            except Exception:  # noqa: S112 - a user's broken handler must not break our flush
                continue
        self.telemetry.force_flush(timeout_s=5)

    def spans(self) -> list[ReadableSpan]:
        """Finished spans, oldest first."""
        self.flush()
        return list(self._spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (``AssertionError`` if there are none or several)."""
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {[s.name for s in self.spans()]}"
        return found[0]

    def logs(self) -> list[ReadableLogRecord]:
        """Exported log records, oldest first."""
        self.flush()
        return list(self._logs.get_finished_logs())

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> list of data points (every scope and resource merged)."""
        return metric_points(self._reader)

    def metric_sum(self, name: str, **attributes: Any) -> float:
        """Sum of a counter's values, or of a histogram's sums, over points matching ``attributes``."""
        total = 0.0
        for p in self.metrics().get(name, []):
            attrs = dict(p.attributes or {})
            if all(attrs.get(k) == v for k, v in attributes.items()):
                total += float(getattr(p, "value", getattr(p, "sum", 0.0)))
        return total

    def clear(self) -> None:
        self.flush()
        self._spans.clear()
        self._logs.clear()


@contextmanager
def capture(**options: Any) -> Iterator[Capture]:
    """Instrument with in-memory exporters (no network) for the duration of the block.

    ``options`` are :func:`agentpress_otel.instrument` options (``app=`` included). Any earlier global
    instrumentation is reset first and again afterwards. Inside the block telemetry runs in strict mode: an
    exception raised by agentpress-otel's own code is re-raised into the test instead of being counted and
    swallowed, so a telemetry bug fails the test that hit it.
    """
    _setup._reset_for_tests()
    was_strict = _selftel.set_strict(True)
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader()
    redact = options.get("redact", True)
    span_exp: Any = spans
    log_exp: Any = logs
    if redact:
        try:
            from agentpress_otel import redaction

            span_exp = redaction.RedactingSpanExporter(spans)
            log_exp = redaction.RedactingLogExporter(logs)
        except (ImportError, AttributeError):
            pass
    app = options.pop("app", None)
    tel = _setup.instrument(
        app,
        export_otlp=False,
        additional_span_processors=[SimpleSpanProcessor(span_exp)],
        additional_metric_readers=[reader],
        additional_log_processors=[SimpleLogRecordProcessor(log_exp)],
        **options,
    )
    try:
        yield Capture(tel, spans, logs, reader)
    finally:
        _setup._reset_for_tests()
        _selftel.set_strict(was_strict)


try:
    # The same fixture the pytest11 plugin registers (one definition); importable for projects that disable
    # setuptools plugin autoload (PYTEST_DISABLE_PLUGIN_AUTOLOAD).
    from agentpress_otel._pytest_plugin import telemetry_capture
except ImportError:  # pytest is optional for users
    telemetry_capture = None  # type: ignore[assignment]


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Collect ``reader`` now: metric name -> data points, every scope and resource merged.

    Example::

        reader = InMemoryMetricReader()
        ...
        assert metric_points(reader)["gen_ai.client.token.usage"]
    """
    out: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                out.setdefault(m.name, []).extend(m.data.data_points)
    return out


def agentpress_structlog_processors() -> list[Any]:
    """The structlog processor chain of AgentPress's ``utils/logger.py`` (JSON lines), for tests and demos
    that must look like the real backend.

    Example::

        structlog.configure(processors=agentpress_structlog_processors(), cache_logger_on_first_use=False)
    """
    import structlog

    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.dict_tracebacks,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.contextvars.merge_contextvars,
        structlog.processors.JSONRenderer(),
    ]


def span_names(spans: Sequence[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]
