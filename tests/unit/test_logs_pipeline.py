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
    log_integ.instrument(tel)  # raises Skip when it does not apply
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
    """A stdlib log record is exported with trace and context ids, redacted attributes and exception fields."""
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
    """Without a thread context, ids in OTel baggage are put on the log record."""
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
    """Records from the SDK and our own loggers, and those below per-logger levels, are not exported."""
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
    """A full log queue drops new records and counts each as ``queue_full``."""
    p = LogPipeline(logger_provider=None, max_queue_size=10)
    p._stop = True  # park the worker so the queue fills
    p._wake.set()
    assert p._thread is not None
    p._thread.join(1)
    p._stop = False  # a stopped pipeline rejects everything (see test_stop_counts_what_is_left)
    ok = [p.submit((0,)) for _ in range(25)]
    assert ok.count(True) == 10 and p.dropped == 15
    assert _selftel.dropped("logs", "queue_full") == 15


def test_sampling_never_drops_warnings() -> None:
    """Log sampling keeps every warning, samples lower levels at about the ratio, and honours logger levels."""
    pol = LevelPolicy(default="DEBUG", sample_ratio=0.0)
    assert not pol.keep("x", logging.INFO, None)
    assert pol.keep("x", logging.WARNING, None)
    pol = LevelPolicy(default="DEBUG", sample_ratio=0.5)
    kept = sum(pol.keep("x", logging.DEBUG, None) for _ in range(4000))
    assert 1600 < kept < 2400
    assert LevelPolicy(levels={"a": "ERROR"}).threshold("a.b.c") == logging.ERROR


def test_handler_never_raises_on_bad_format(sink: Any) -> None:
    """A record whose arguments do not fit its template is kept with the template and the error counted."""
    tel, exp = sink
    h = log_integ.handler()
    assert h is not None
    bad = logging.LogRecord("app", logging.INFO, __file__, 1, "%d items", ("not-a-number",), None)
    assert h.handle(bad) is True  # never raised: kept with its template, the error counted
    assert _selftel.errors("logs.format") == 1
    logging.getLogger("app").info("after")
    assert {"after", "%d items [unformattable arguments: TypeError]"} <= {r.body for r in _records(tel, exp)}


def test_stats_and_uninstrument_idempotent(sink: Any) -> None:
    """Stats count processed records; uninstrument removes the handler and instrumenting again works."""
    tel, exp = sink
    logging.getLogger("app").info("one")
    _records(tel, exp)
    assert stats()["processed"] >= 1
    log_integ.uninstrument()
    log_integ.uninstrument()
    assert log_integ.handler() is None
    log_integ.instrument(tel)  # raises Skip when it does not apply


def test_json_only_without_provider(capfd: pytest.CaptureFixture[str]) -> None:
    """Without a logger provider the JSON stdout output still works, redacted."""
    cfg = load_config({"log_json": True, "logs": False}, env={})
    tel = SimpleNamespace(config=cfg, logger_provider=None)
    log_integ.instrument(tel)  # raises Skip when it does not apply
    try:
        logging.getLogger("app").warning("password=hunter2 here")
        assert flush(2.0)
    finally:
        log_integ.uninstrument()
    out = capfd.readouterr().out
    assert "hunter2" not in out and "password=[REDACTED:secret:" in out
    assert trace.get_current_span() is not None


def test_stream_is_pluggable() -> None:
    """The JSON output goes to the stream the pipeline is given."""
    buf = io.StringIO()
    p = LogPipeline(logger_provider=None, json_stdout=True, stream=lambda: buf)
    rec = logging.LogRecord("n", logging.INFO, __file__, 1, "hello %s", ("w",), None)
    p.submit((0, rec, rec.getMessage(), {"thread_id": "t"}, None))
    assert p.flush(2.0)
    p.stop()
    doc = json.loads(buf.getvalue())
    assert doc["message"] == "hello w" and doc["thread_id"] == "t" and "trace_id" not in doc


def test_exporter_thread_warnings_do_not_feed_back(sink: Any) -> None:
    """Warnings logged on the exporter's own thread are not exported back; app warnings are."""
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


# ------------------------------------------------------------------------------------ audit fixes
class _BadStr:
    def __str__(self) -> str:
        raise RuntimeError("boom")

    __repr__ = __str__


def _record(msg: str, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("edge", logging.INFO, __file__, 1, msg, (), None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_json_line_written_for_every_record_even_unserialisable_ones() -> None:
    """orjson rejects tuple keys and default=str re-raises a failing __str__: the line must still be written."""
    buf = io.StringIO()
    p = LogPipeline(logger_provider=None, json_stdout=True, stream=lambda: buf)
    recs = [
        _record("tuple key", m={(1, SECRET): "x", 1: SECRET}),
        _record("bad str", b=_BadStr()),
        _record("huge int", n=1 << 70),
        _record("bytes", payload=SECRET.encode()),
    ]
    for rec in recs:
        assert p.submit((0, rec, rec.getMessage(), {}, None))
    assert p.flush(2.0)
    p.stop()
    docs = {d["message"]: d for d in map(json.loads, buf.getvalue().splitlines())}
    assert set(docs) == {"tuple key", "bad str", "huge int", "bytes"}
    assert SECRET not in buf.getvalue()  # a secret in a non-string key is scanned too
    assert docs["bad str"]["extra"]["b"] == "<unprintable _BadStr>"
    assert docs["huge int"]["extra"]["n"] == str(1 << 70)
    assert docs["bytes"]["extra"]["payload"].startswith("[REDACTED:openai_key:")


class _BlockingLogger:
    def __init__(self, gate: Any) -> None:
        self.gate = gate

    def emit(self, record: Any) -> None:
        self.gate.wait(5)  # an exporter stuck on a dead endpoint, or a slow processor


class _BlockingProvider:
    def __init__(self, gate: Any) -> None:
        self.gate = gate

    def get_logger(self, name: str, *args: Any, **kwargs: Any) -> _BlockingLogger:
        return _BlockingLogger(self.gate)


def test_stop_counts_what_is_left_in_the_queue_as_dropped() -> None:
    """Stopping counts what is left in the queue as dropped, so every record is processed or counted."""
    import threading

    gate = threading.Event()
    p = LogPipeline(logger_provider=_BlockingProvider(gate), max_queue_size=100)  # type: ignore[arg-type]
    rec = _record("m")
    assert all(p.submit((0, rec, "m", {}, None)) for _ in range(50))
    p.stop(timeout_s=0.2)  # the worker is stuck on its first record: the drain cannot finish
    assert p.dropped >= 40 and _selftel.dropped("logs", "shutdown") == p.dropped
    assert not p.submit((0, rec, "late", {}, None))  # after stop nothing is queued for a worker that is gone
    gate.set()
    assert p._thread is not None
    p._thread.join(2)
    # every record is either handed to the provider or counted as lost, exactly
    assert p.processed + p.dropped == 51
    assert _selftel.dropped("logs") == p.dropped


def test_long_stack_trace_keeps_head_and_innermost_frames() -> None:
    """A huge stack trace is cut to its head and innermost frames, redacted, within 4,000 characters."""
    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(exp, schedule_delay_millis=50))
    buf = io.StringIO()
    p = LogPipeline(logger_provider=lp, json_stdout=True, stream=lambda: buf, max_attr_chars=4000)
    frames = "".join(f'  File "/app/mod{i}.py", line {i}, in f{i}\n    g()\n' for i in range(3000))
    tb = "Traceback (most recent call last):\n" + frames + f"RuntimeError: failed with {SECRET}\n"
    assert len(tb) > 65_536  # over the redactor's limit too
    try:
        raise RuntimeError("failed")
    except RuntimeError:
        import sys

        rec = logging.LogRecord("n", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    rec.exc_text = tb
    p.submit((0, rec, "boom", {}, None))
    assert p.flush(2.0)
    p.stop()
    lp.force_flush()
    (lr,) = [r.log_record for r in exp.get_finished_logs()]
    for st in (lr.attributes["exception.stacktrace"], json.loads(buf.getvalue())["exception"]["stacktrace"]):
        assert st.startswith('Traceback (most recent call last):\n  File "/app/mod0.py"')
        assert "mod2999.py" in st and "RuntimeError: failed with [REDACTED:openai_key:" in st
        assert "chars cut]" in st and SECRET not in st
    assert len(lr.attributes["exception.stacktrace"]) <= 4000
    lp.shutdown()


def test_exception_whose_str_raises_is_still_exported() -> None:
    """An exception whose ``str()`` raises is still exported with its qualified type."""
    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(exp, schedule_delay_millis=50))
    p = LogPipeline(logger_provider=lp)

    class Weird(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no message")

    try:
        raise Weird()
    except Weird:
        import sys

        rec = logging.LogRecord("n", logging.ERROR, __file__, 1, "weird", (), sys.exc_info())
    p.submit((0, rec, "weird", {}, None))
    assert p.flush(2.0)
    p.stop()
    lp.force_flush()
    (lr,) = [r.log_record for r in exp.get_finished_logs()]
    assert lr.attributes["exception.type"] == f"{__name__}.{Weird.__qualname__}"  # qualified, as on spans
    assert "unprintable" in lr.attributes["exception.message"]
    lp.shutdown()


def test_bad_logger_levels_are_rejected_by_config() -> None:
    """Bad logger levels raise as an argument and are ignored as a whole from env."""
    from agentpress_otel._config import ConfigError

    with pytest.raises(ConfigError, match="httpx"):
        load_config({"logger_levels": {"httpx": "LOUD"}}, env={})
    with pytest.warns(RuntimeWarning, match="AGENTPRESS_OTEL_LOGGER_LEVELS"):
        cfg = load_config({}, env={"AGENTPRESS_OTEL_LOGGER_LEVELS": "httpx=LOUD,app=DEBUG"})
    assert cfg.logger_levels == {}  # the variable is ignored as a whole, the integration still starts
    ok = load_config({"logger_levels": {"a": "warn", "b": 10}}, env={})
    assert LevelPolicy(levels=ok.logger_levels).threshold("a.x") == logging.WARNING



def test_marker_objects_are_not_exported_as_attributes(sink: Any) -> None:
    """A bare ``object()`` on a record is a library's marker (LiteLLM's ``litellm_redacted``): no attribute."""
    tel, exp = sink
    logging.getLogger("agent.run").info("marked", extra={"litellm_redacted": object(), "kept": "yes"})
    (rec,) = [r for r in _records(tel, exp) if r.body == "marked"]
    assert rec.attributes["kept"] == "yes"
    assert "litellm_redacted" not in rec.attributes
    assert not any("object at 0x" in str(v) for v in rec.attributes.values()), dict(rec.attributes)

def test_json_timestamp_is_exact_rfc3339_microseconds() -> None:
    """The JSON ``timestamp`` is the record's ns time cut to µs, RFC 3339 in UTC ("Z"); no float rounding."""
    from datetime import UTC, datetime, timedelta

    from agentpress_otel.logs._json import iso as _iso

    for ts in (0, 1_700_000_000_123_456_789, 1_700_000_000_999_999_999, 1_700_000_001_000_000_500, 1_764_000_000_5):
        text = _iso(ts)
        assert text.endswith("Z") and len(text) == len("2026-01-01T00:00:00.000000Z"), text
        got = datetime.fromisoformat(text.replace("Z", "+00:00"))
        assert got == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts // 1000), (ts, text)


def test_fast_log_record_has_the_fields_the_sdk_constructor_sets() -> None:
    """The worker builds its OTLP records without ``LogRecord.__init__`` (it looks up a span the worker already
    has): every field the pinned SDK's constructor sets must be set, to the same value, for a record with and
    without a span."""
    from opentelemetry._logs import LogRecord
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

    from agentpress_otel.logs._otlp import NO_SPAN, make_record, severity

    sev = severity(logging.WARNING)
    sc = SpanContext(0x1234, 0x56, is_remote=False, trace_flags=TraceFlags(1))
    for span in (sc, None):
        fast = make_record(LogRecord, 1_700_000_000_000_000_001, sev, "body", {"a": 1}, span)
        ctx = NO_SPAN if span is None else set_span_in_context(NonRecordingSpan(span), NO_SPAN)
        sdk = LogRecord(timestamp=1_700_000_000_000_000_001, context=ctx, severity_number=sev[0],
                        severity_text=sev[1], body="body", attributes={"a": 1})
        want, got = vars(sdk), vars(fast)
        assert set(got) == set(want), set(got) ^ set(want)
        for k in want:
            if k in ("observed_timestamp", "context"):
                continue  # the clock, and the context object handed in
            assert got[k] == want[k], (k, got[k], want[k])
        assert abs(got["observed_timestamp"] - want["observed_timestamp"]) < 5_000_000_000


def test_secrets_among_a_batch_of_clean_records_are_redacted(sink: Any, capfd: pytest.CaptureFixture[str]) -> None:
    """The worker checks a whole batch of records in one scan and redacts only the flagged ones: a secret in one
    record's ``extra`` value, a card number opening the next record's message, and a sensitive ``extra`` key, all
    among hundreds of clean records, are redacted in OTLP and in the JSON lines; clean records pass unchanged."""
    tel, exp = sink
    log = logging.getLogger("agent.batch")
    card = "4111 1111 1111 1111"
    for i in range(600):
        if i == 300:
            log.info("clean message %d", i, extra={"note": f"key {SECRET}"})
        elif i == 301:
            log.info(f"{card} charged for run %d", i)
        elif i == 450:
            log.info("clean message %d", i, extra={"api_key": "plain-looking-value"})
        else:
            log.info("clean message %d", i, extra={"route": "/api/agent/start", "n": i})
    recs = {str(r.body): r for r in _records(tel, exp)}
    out = capfd.readouterr().out
    assert SECRET not in out and card not in out and "plain-looking-value" not in out
    assert recs["clean message 300"].attributes["note"].startswith("key [REDACTED:openai_key:")
    (charged,) = [b for b in recs if "charged for run" in b]
    assert charged.startswith("[REDACTED:card:") and charged.endswith("charged for run 301")
    assert recs["clean message 450"].attributes["api_key"].startswith("[REDACTED:")
    clean = recs["clean message 7"]
    assert clean.attributes["route"] == "/api/agent/start" and clean.attributes["n"] == 7
    assert len([b for b in recs if b.startswith("clean message")]) == 599


def test_extra_fields_per_record_with_the_names_cached_per_call_site() -> None:
    """``extra=`` names are looked up once per set of record attribute names: records of one call site with other
    values, other ``extra`` keys or an attribute a filter added each get exactly their own fields, in order,
    without private (``_``) names or bare ``object()`` markers."""
    from agentpress_otel.logs._pipeline import STDLIB, from_stdlib

    log = logging.getLogger("agent.cache")

    def entry(**extra: Any) -> dict[str, Any]:
        rec = log.makeRecord(log.name, logging.INFO, __file__, 1, "m %s", ("x",), None, extra=extra)
        if extra.pop("_filter_adds", False):
            rec.added_by_filter = "f"
        return from_stdlib((STDLIB, rec, rec.getMessage(), {}, None)).extras

    assert entry(a=1, b="two") == {"a": 1, "b": "two"}
    assert entry(a=3, b="four") == {"a": 3, "b": "four"}  # same names, the values of this record
    assert list(entry(b=1, a=2)) == ["b", "a"]  # other order: its own order
    assert entry(a=1, marker=object(), _private=2) == {"a": 1}
    assert entry(a=1, _filter_adds=True) == {"a": 1, "added_by_filter": "f"}
    assert entry() == {}


def test_idle_worker_sleeps_until_a_record_arrives(monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle pipeline's worker waits on its wake event, about once a second as a safety net (not ten times);
    a record put into the queue wakes it at once, even when another thread's record got there first (two threads
    appending at once), with the safety net out of reach."""
    import threading
    import time

    from agentpress_otel.logs import _pipeline

    waits: list[float | None] = []

    class Counting(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            return super().wait(timeout)

    p = LogPipeline(logger_provider=None)
    try:
        old = p._wake
        p._wake = Counting()  # the worker reads it on every round; it leaves its wait on the old one at the timeout
        old.set()
        time.sleep(1.5)
        assert 1 <= len(waits) <= 3, waits  # was 15 at 0.1 s
        assert set(waits) == {_pipeline.IDLE_WAKE_S}
        monkeypatch.setattr(_pipeline, "IDLE_WAKE_S", 30.0)
        p._wake.set()  # into a 30 s wait now
        deadline = time.monotonic() + 2
        while waits[-1] != 30.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        rec = logging.LogRecord("app", logging.INFO, __file__, 1, "m", None, None)
        p._q.append((0, (0, rec, "first", {}, None)))  # another thread's record, its wake-up lost to the race
        assert p.submit((0, rec, "m", {}, None))
        deadline = time.monotonic() + 1
        while p._q and time.monotonic() < deadline:
            time.sleep(0.005)
        assert not p._q  # woken by the submit, not by the safety net 30 s away
    finally:
        p.stop()
