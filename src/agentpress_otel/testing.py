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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentpress_otel import _selftel, _setup, redaction
from agentpress_otel._config import Config, load_config
from agentpress_otel._context import ContextSpanProcessor
from agentpress_otel.genai import _state as genai_state

__all__ = ["Capture", "Kit", "Recorded", "agentpress_structlog_processors", "capture", "make_kit", "metric_points",
           "telemetry_capture"]

_G_FLUSH = _selftel.guard("testing.flush")


class Recorded:
    """Reading what was exported into in-memory exporters (shared by :class:`Capture` and :class:`Kit`).

    Metric attribute filters take keyword arguments; ``__`` stands for ``.`` (``error__type`` is ``error.type``).

    Example::

        assert rec.span("chat gpt-5").attributes["gen_ai.usage.input_tokens"] == 12
        assert rec.metric_count("gen_ai.client.operation.duration", error__type="timeout") == 1
    """

    def __init__(self, spans: InMemorySpanExporter, logs: InMemoryLogRecordExporter,
                 reader: InMemoryMetricReader) -> None:
        self.span_exporter = spans
        self.log_exporter = logs
        self.metric_reader = reader

    def flush(self) -> None:
        """Make pending telemetry visible to the in-memory exporters (nothing to do for synchronous ones)."""

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, oldest first; with ``name``, those whose name is or starts with it."""
        self.flush()
        out = list(self.span_exporter.get_finished_spans())
        return out if name is None else [s for s in out if s.name.startswith(name)]

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called exactly ``name`` (``AssertionError`` if there are none or several)."""
        spans = self.spans()
        found = [s for s in spans if s.name == name]
        assert len(found) == 1, f"expected one span {name!r}, found {len(found)}: {[s.name for s in spans]}"
        return found[0]

    def logs(self) -> list[ReadableLogRecord]:
        """Exported log records, oldest first."""
        self.flush()
        return list(self.log_exporter.get_finished_logs())

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> list of data points (every scope and resource merged), collected now."""
        return metric_points(self.metric_reader)

    def points(self, metric: str) -> Iterator[tuple[dict[str, Any], Any]]:
        """(attributes, data point) of each point of ``metric``, collected now."""
        for p in self.metrics().get(metric, []):
            yield dict(p.attributes or {}), p

    def _matching(self, metric: str, match: dict[str, Any]) -> Iterator[Any]:
        for attrs, p in self.points(metric):
            if all(attrs.get(k.replace("__", ".")) == v for k, v in match.items()):
                yield p

    def metric_sum(self, metric: str, **match: Any) -> float:
        """Sum of a counter's values, or of a histogram's sums, over points whose attributes match ``match``."""
        return sum(float(getattr(p, "value", getattr(p, "sum", 0.0))) for p in self._matching(metric, match))

    def metric_count(self, metric: str, **match: Any) -> int:
        """Number of histogram measurements over points whose attributes match ``match``."""
        return sum(int(getattr(p, "count", 0)) for p in self._matching(metric, match))

    def clear(self) -> None:
        """Forget the spans and log records exported so far."""
        self.flush()
        self.span_exporter.clear()
        self.log_exporter.clear()


class Capture(Recorded):
    """What one :func:`capture` block recorded; ``telemetry`` is the ``instrument()`` handle.

    Example::

        with capture(service_name="api") as cap:
            handle_request()
        assert cap.span("GET /health").resource.attributes["service.name"] == "api"
    """

    def __init__(self, tel: _setup.Telemetry, spans: InMemorySpanExporter, logs: InMemoryLogRecordExporter,
                 reader: InMemoryMetricReader) -> None:
        super().__init__(spans, logs, reader)
        self.telemetry = tel

    def flush(self) -> None:
        """Drain background log queues and batch processors into the in-memory exporters."""
        for h in logging.getLogger().handlers:
            with _G_FLUSH:  # a user's broken handler must not break our flush
                h.flush()
        self.telemetry.force_flush(timeout_s=5)


class Kit(Recorded):
    """SDK providers with in-memory exporters, wired like ``instrument()`` wires them but never made global.

    For testing code that takes providers without touching process-wide state. As a context manager it binds
    GenAI telemetry to itself (``genai.configure(kit)``) for the block, then unbinds and shuts down. See
    :func:`make_kit`.

    Example::

        with make_kit(capture_content=True) as kit:
            with genai.llm_call(model="gpt-5", provider="openai"):
                pass
            assert kit.spans("chat gpt-5")
    """

    def __init__(self, config: Config, tracer_provider: TracerProvider, meter_provider: MeterProvider,
                 logger_provider: LoggerProvider, spans: InMemorySpanExporter, reader: InMemoryMetricReader,
                 logs: InMemoryLogRecordExporter) -> None:
        super().__init__(spans, logs, reader)
        self.config = config
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.resource = Resource.get_empty()

    def __enter__(self) -> Kit:
        genai_state.configure(self)
        return self

    def __exit__(self, *exc: object) -> None:
        genai_state.unconfigure(owner=self)
        self.shutdown()

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Flush the tracer and logger providers."""
        self.tracer_provider.force_flush(int(timeout_s * 1000))
        self.logger_provider.force_flush(int(timeout_s * 1000))
        return True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Shut the three providers down."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()


def make_kit(**config: Any) -> Kit:
    """A :class:`Kit`: providers with in-memory exporters, ``ContextSpanProcessor`` first, and a resolved ``Config``.

    ``config`` are :func:`agentpress_otel.instrument` options (resolved with the environment, as there).

    Example::

        kit = make_kit(capture_content=True, content_max_chars=120)
    """
    cfg = load_config(config)
    tp = TracerProvider()
    tp.add_span_processor(ContextSpanProcessor())
    spans = InMemorySpanExporter()
    tp.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    lp = LoggerProvider()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return Kit(cfg, tp, mp, lp, spans, reader, logs)


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
    _selftel.take_strict_failures()  # kept from code before this block: not this block's
    try:
        with _instrumented(options) as cap:
            yield cap
    finally:
        _setup._reset_for_tests()
        _selftel.set_strict(was_strict)
    failures = _selftel.take_strict_failures()
    if failures:
        raise failures[0]  # a telemetry bug on a background thread (the log worker...) during the block


@contextmanager
def _instrumented(options: dict[str, Any]) -> Iterator[Capture]:
    spans = InMemorySpanExporter()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    reader = InMemoryMetricReader()
    span_exp: Any = spans
    log_exp: Any = logs
    if options.get("redact", True):
        span_exp = redaction.RedactingSpanExporter(spans)
        log_exp = redaction.RedactingLogExporter(logs)
    app = options.pop("app", None)
    tel = _setup.instrument(
        app,
        export_otlp=False,
        additional_span_processors=[SimpleSpanProcessor(span_exp)],
        additional_metric_readers=[reader],
        additional_log_processors=[SimpleLogRecordProcessor(log_exp)],
        **options,
    )
    yield Capture(tel, spans, logs, reader)


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
