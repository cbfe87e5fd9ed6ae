"""Unit tests for the log pipeline: stdlib + structlog -> in-memory OTel exporter and JSON stdout."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider

from agentpress_otel import _selftel
from agentpress_otel._config import load_config
from agentpress_otel.integrations import logging as log_integ
from agentpress_otel.logs import LevelPolicy, LogPipeline, flush, stats
from agentpress_otel.redaction import RedactingLogExporter

SECRET = "sk-proj-" + "Zq9" * 16


@pytest.fixture
def sink() -> Iterator[tuple[Any, InMemoryLogRecordExporter]]:
    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(RedactingLogExporter(exp), schedule_delay_millis=50))
    cfg = load_config({"log_json": True, "log_level": "DEBUG", "logger_levels": {"noisy": "ERROR"}}, env={})
    tel = SimpleNamespace(config=cfg, logger_provider=lp)
    _selftel.reset()
    assert log_integ.instrument(tel)
    try:
        yield tel, exp
    finally:
        log_integ.uninstrument()
        lp.shutdown()


def _records(tel: Any, exp: InMemoryLogRecordExporter) -> list[Any]:
    assert flush(2.0)
    tel.logger_provider.force_flush()
    return [r.log_record for r in exp.get_finished_logs()]


def test_stdlib_record_fields_ids_span_and_json(sink: Any, capfd: pytest.CaptureFixture[str]) -> None:
    tel, exp = sink
    tp = TracerProvider()
    from agentpress_otel._context import thread_context

    with thread_context(project_id="p-1", thread_id="t-1"), tp.get_tracer("t").start_as_current_span("s") as span:
        try:
            raise ValueError(f"bad key {SECRET}")
        except ValueError:
            logging.getLogger("agent.run").exception("run %s failed", "r-1", extra={"tool": "web", "api_key": "abc"})
    recs = _records(tel, exp)
    (rec,) = [r for r in recs if r.body == "run r-1 failed"]
    sc = span.get_span_context()
    assert rec.trace_id == sc.trace_id and rec.span_id == sc.span_id
    a = rec.attributes
    assert a["agentpress.project.id"] == "p-1" and a["agentpress.thread.id"] == "t-1"
    assert a["tool"] == "web" and a["api_key"].startswith("[REDACTED:")
    assert a["exception.type"] == "ValueError"
    assert SECRET not in a["exception.message"] and SECRET not in a["exception.stacktrace"]
    assert rec.severity_text == "ERROR"
    out = capfd.readouterr().out
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    (doc,) = [d for d in lines if d["message"] == "run r-1 failed"]
    assert doc["trace_id"] == f"{sc.trace_id:032x}" and doc["span_id"] == f"{sc.span_id:016x}"
    assert doc["project_id"] == "p-1" and doc["thread_id"] == "t-1" and doc["level"] == "error"
    assert doc["logger"] == "agent.run" and doc["extra"]["tool"] == "web"
    assert doc["exception"]["type"] == "ValueError" and SECRET not in out


def test_ids_from_baggage_when_no_context(sink: Any) -> None:
    tel, exp = sink
    ctx = baggage.set_baggage("agentpress.thread.id", "t-bag")
    tok = context.attach(ctx)
    try:
        logging.getLogger("agent").warning("from baggage")
    finally:
        context.detach(tok)
    (rec,) = [r for r in _records(tel, exp) if r.body == "from baggage"]
    assert rec.attributes["agentpress.thread.id"] == "t-bag"


def test_internal_loggers_and_levels_are_filtered(sink: Any) -> None:
    tel, exp = sink
    logging.getLogger("opentelemetry.sdk").warning("sdk noise")
    logging.getLogger("agentpress_otel.internal").warning("ours")
    logging.getLogger("noisy.child").warning("below ERROR for noisy")
    logging.getLogger("noisy").error("kept")
    logging.getLogger("app").debug("debug kept")
    bodies = {r.body for r in _records(tel, exp)}
    assert "kept" in bodies and "debug kept" in bodies
    assert not bodies & {"sdk noise", "ours", "below ERROR for noisy"}


def test_queue_full_drops_and_counts() -> None:
    _selftel.reset()
    p = LogPipeline(logger_provider=None, max_queue_size=10)
    p._stop = True  # park the worker so the queue fills
    p._wake.set()
    assert p._thread is not None
    p._thread.join(1)
    ok = [p.submit((0,)) for _ in range(25)]
    assert ok.count(True) == 10 and p.dropped == 15
    assert _selftel.dropped("logs", "queue_full") == 15


def test_sampling_never_drops_warnings() -> None:
    pol = LevelPolicy(default="DEBUG", sample_ratio=0.0)
    assert not pol.keep("x", logging.INFO, None)
    assert pol.keep("x", logging.WARNING, None)
    pol = LevelPolicy(default="DEBUG", sample_ratio=0.5)
    kept = sum(pol.keep("x", logging.DEBUG, None) for _ in range(4000))
    assert 1600 < kept < 2400
    assert LevelPolicy(levels={"a": "ERROR"}).threshold("a.b.c") == logging.ERROR


def test_handler_never_raises_on_bad_format(sink: Any) -> None:
    tel, exp = sink
    h = log_integ.handler()
    assert h is not None
    bad = logging.LogRecord("app", logging.INFO, __file__, 1, "%d items", ("not-a-number",), None)
    assert h.handle(bad) is False  # swallowed and counted, never raised
    assert _selftel.errors("logs.handler") == 1
    logging.getLogger("app").info("after")
    assert "after" in {r.body for r in _records(tel, exp)}


def test_stats_and_uninstrument_idempotent(sink: Any) -> None:
    tel, exp = sink
    logging.getLogger("app").info("one")
    _records(tel, exp)
    assert stats()["processed"] >= 1
    log_integ.uninstrument()
    log_integ.uninstrument()
    assert log_integ.handler() is None
    assert log_integ.instrument(tel)


def test_json_only_without_provider(capfd: pytest.CaptureFixture[str]) -> None:
    cfg = load_config({"log_json": True, "logs": False}, env={})
    tel = SimpleNamespace(config=cfg, logger_provider=None)
    assert log_integ.instrument(tel)
    try:
        logging.getLogger("app").warning("password=hunter2 here")
        assert flush(2.0)
    finally:
        log_integ.uninstrument()
    out = capfd.readouterr().out
    assert "hunter2" not in out and "password=[REDACTED:secret:" in out
    assert trace.get_current_span() is not None


def test_stream_is_pluggable() -> None:
    buf = io.StringIO()
    p = LogPipeline(logger_provider=None, json_stdout=True, stream=lambda: buf)
    rec = logging.LogRecord("n", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    p.submit((0, rec, rec.getMessage(), {"thread_id": "t"}, None))
    assert p.flush(2.0)
    p.stop()
    doc = json.loads(buf.getvalue())
    assert doc["message"] == "hello w" and doc["thread_id"] == "t" and "trace_id" not in doc


def test_exporter_thread_warnings_do_not_feed_back(sink: Any) -> None:
    tel, exp = sink
    import threading

    def export_thread() -> None:  # what urllib3/grpc do inside a failing OTLP export
        logging.getLogger("urllib3.connectionpool").warning("Retrying after connection refused")

    t = threading.Thread(target=export_thread, name="OtelBatchLogRecordProcessor")
    t.start()
    t.join()
    logging.getLogger("urllib3.connectionpool").warning("app-level urllib3 warning")
    bodies = {r.body for r in _records(tel, exp)}
    assert "app-level urllib3 warning" in bodies
    assert "Retrying after connection refused" not in bodies
