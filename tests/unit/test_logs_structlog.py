"""structlog integration: our processors inserted into an AgentPress-like chain, ids reach OTLP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider

from agentpress_otel._config import load_config
from agentpress_otel.integrations import structlog as sl_integ
from agentpress_otel.logs import flush
from agentpress_otel.redaction import RedactingLogExporter
from agentpress_otel.testing import agentpress_structlog_processors

SECRET = "ghp_" + "Ab1" * 12


def agentpress_chain(out: list[str]) -> None:
    """The processor chain of AgentPress utils/logger.py, rendering into ``out``."""

    structlog.configure(
        processors=agentpress_structlog_processors(),
        logger_factory=lambda *a: _ListLogger(out),
        wrapper_class=structlog.make_filtering_bound_logger(10),
        cache_logger_on_first_use=False,
    )


class _ListLogger:
    def __init__(self, out: list[str]) -> None:
        self.out = out

    def msg(self, line: str) -> None:
        self.out.append(line)

    info = warning = error = debug = exception = critical = msg


@pytest.fixture
def sink() -> Iterator[tuple[Any, InMemoryLogRecordExporter, list[str]]]:
    out: list[str] = []
    agentpress_chain(out)
    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(RedactingLogExporter(exp), schedule_delay_millis=50))
    tel = SimpleNamespace(config=load_config({"log_level": "DEBUG"}, env={}), logger_provider=lp)
    sl_integ.instrument(tel)  # raises Skip when it does not apply
    try:
        yield tel, exp, out
    finally:
        sl_integ.uninstrument()
        structlog.contextvars.clear_contextvars()
        lp.shutdown()


def _records(tel: Any, exp: InMemoryLogRecordExporter) -> list[Any]:
    assert flush(2.0)
    tel.logger_provider.force_flush()
    return [r.log_record for r in exp.get_finished_logs()]


def test_chain_keeps_user_processors_and_renderer_last(sink: Any) -> None:
    """Our structlog processors are inserted while the user's first processor and renderer stay in place."""
    procs = structlog.get_config()["processors"]
    assert isinstance(procs[-1], structlog.processors.JSONRenderer)
    assert sum(1 for p in procs if getattr(p, "_agentpress_otel", False)) == len(sl_integ.structlog_processors())
    assert procs[0] is structlog.stdlib.add_log_level


def test_bound_ids_trace_and_redaction_reach_otlp_and_stdout(sink: Any) -> None:
    """Bound ids, the trace id and redaction reach both the OTLP record and the printed line."""
    tel, exp, out = sink
    tp = TracerProvider()
    structlog.contextvars.bind_contextvars(thread_id="t-9", agent_run_id="r-9", request_id="q-9")
    log = structlog.get_logger()
    with tp.get_tracer("t").start_as_current_span("run") as span:
        log.info("tool done", tool="web", token=SECRET, note=f"leaked {SECRET}")
    recs = [r for r in _records(tel, exp) if r.body == "tool done"]
    assert len(recs) == 1
    rec = recs[0]
    a = rec.attributes
    assert a["agentpress.thread.id"] == "t-9" and a["agentpress.agent_run.id"] == "r-9"
    assert a["agentpress.request.id"] == "q-9" and a["tool"] == "web"
    assert rec.trace_id == span.get_span_context().trace_id
    assert SECRET not in json.dumps(dict(a))
    line = json.loads(out[-1])
    assert line["thread_id"] == "t-9" and line["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert SECRET not in out[-1]


def test_configure_after_instrument_is_patched(sink: Any) -> None:
    """An app that reconfigures structlog after instrument() still gets our processors."""
    _, _, out = sink
    agentpress_chain(out)  # the app (re)configures after instrument()
    procs = structlog.get_config()["processors"]
    assert sum(1 for p in procs if getattr(p, "_agentpress_otel", False)) == len(sl_integ.structlog_processors())
    assert isinstance(procs[-1], structlog.processors.JSONRenderer)


def test_exception_from_dict_tracebacks(sink: Any) -> None:
    """A structlog exception log is exported with its exception type at ERROR."""
    tel, exp, _ = sink
    log = structlog.get_logger()
    try:
        raise KeyError("missing")
    except KeyError:
        log.exception("boom")
    (rec,) = [r for r in _records(tel, exp) if r.body == "boom"]
    assert rec.attributes["exception.type"] == "KeyError"
    assert rec.severity_text == "ERROR"


class PlannerError(Exception):
    """A non-builtin exception: its exception.type is qualified, as Python's traceback prints it."""


def _fail_with_local_secret() -> None:
    api_key = SECRET  # a local variable: dict_tracebacks(show_locals) would put it in the frame dicts
    raise PlannerError(f"planner failed ({len(api_key)})")


def test_dict_tracebacks_become_the_natural_traceback_without_locals(sink: Any) -> None:
    """exception.stacktrace is the language's traceback text (exceptions semconv), never structlog's JSON
    frame list with local variables; exception.type is the qualified class name (as spans spell it)."""
    import traceback

    tel, exp, _ = sink
    log = structlog.get_logger()
    try:
        try:
            raise ValueError("inner cause")
        except ValueError as cause:
            raise RuntimeError("wrapper") from cause
    except RuntimeError:
        log.exception("chained")
    try:
        _fail_with_local_secret()
    except PlannerError:
        expected = traceback.format_exc()
        log.exception("planner")
    recs = {r.body: r for r in _records(tel, exp)}
    a = recs["planner"].attributes
    assert a["exception.type"] == f"{__name__}.PlannerError"
    assert a["exception.stacktrace"] == expected
    assert SECRET not in a["exception.stacktrace"]  # the frame local holding it is not exported
    chained = recs["chained"].attributes["exception.stacktrace"]
    assert chained.startswith("Traceback (most recent call last):")
    assert "The above exception was the direct cause of the following exception" in chained
    assert chained.rstrip().endswith("RuntimeError: wrapper")


def test_dict_traceback_frames_outside_the_except_block_are_rendered_as_text() -> None:
    """When only structlog's frame dicts are left (logged after the except block), they are rebuilt into the
    traceback text; the frames' ``locals`` are not read."""
    from agentpress_otel.logs._exc import structlog_exc as _structlog_exc

    try:
        _fail_with_local_secret()
    except PlannerError as e:
        # What structlog.processors.dict_tracebacks puts in the event (locals on, its default).
        raw = structlog.tracebacks.ExceptionDictTransformer(show_locals=True)((type(e), e, e.__traceback__))
    assert any(f.get("locals") for st in raw for f in st["frames"])  # the leak risk is really there
    exc = _structlog_exc(raw)
    assert exc is not None
    assert exc["stacktrace"].startswith("Traceback (most recent call last):")
    assert "_fail_with_local_secret" in exc["stacktrace"] and SECRET not in exc["stacktrace"]
    assert exc["stacktrace"].rstrip().endswith("PlannerError: planner failed (40)")


def test_uninstrument_restores_chain(sink: Any) -> None:
    """uninstrument() removes our processors and the configure() patch."""
    sl_integ.uninstrument()
    procs = structlog.get_config()["processors"]
    assert not any(getattr(p, "_agentpress_otel", False) for p in procs)
    assert not hasattr(structlog.configure, "__wrapped__")


def test_logger_cached_before_instrument_is_covered() -> None:
    """AgentPress creates and uses its module-level logger at import, before instrument() runs."""
    out: list[str] = []
    agentpress_chain(out)
    structlog.configure(cache_logger_on_first_use=True)
    early = structlog.get_logger()
    early.info("before instrument")  # caches the assembled logger and its processor list
    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(exp, schedule_delay_millis=50))
    tel = SimpleNamespace(config=load_config({}, env={}), logger_provider=lp)
    sl_integ.instrument(tel)  # raises Skip when it does not apply
    try:
        early.info("after instrument", api_key=SECRET)
        recs = _records(tel, exp)
        assert [r.body for r in recs] == ["after instrument"]
        assert SECRET not in out[-1]
    finally:
        sl_integ.uninstrument()
        lp.shutdown()


# ------------------------------------------------------------------------------------ audit fixes
class _Client:
    def __repr__(self) -> str:
        return f"Client(key={SECRET})"


def test_non_string_values_are_redacted_in_the_line_and_over_otlp(sink: Any) -> None:
    """Secrets inside bytes, exceptions and objects are redacted in the line and over OTLP."""
    tel, exp, out = sink
    structlog.get_logger().info(
        "objects", payload=SECRET.encode(), error=ValueError(f"bad {SECRET}"), client=_Client(), n=3, ok=True
    )
    (rec,) = [r for r in _records(tel, exp) if r.body == "objects"]
    a = dict(rec.attributes)
    assert SECRET not in json.dumps(a, default=str) and SECRET not in out[-1]
    assert a["payload"].startswith("[REDACTED:github_token:")
    assert a["error"].startswith("ValueError: bad [REDACTED:github_token:")
    assert a["client"].startswith("Client(key=[REDACTED:github_token:")
    assert a["n"] == 3 and a["ok"] is True


def test_structlog_through_stdlib_is_exported_once() -> None:
    """ProcessorFormatter.wrap_for_formatter + stdlib.LoggerFactory: structlog's event reaches the stdlib
    root handler too; it must not become a second OTLP record (with the event dict's repr as body)."""
    import logging

    from agentpress_otel.integrations import logging as log_integ

    exp = InMemoryLogRecordExporter()
    lp = LoggerProvider()
    lp.add_log_record_processor(BatchLogRecordProcessor(exp, schedule_delay_millis=50))
    tel = SimpleNamespace(config=load_config({"log_level": "INFO"}, env={}), logger_provider=lp)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    log_integ.instrument(tel)
    sl_integ.instrument(tel)
    try:
        structlog.get_logger("agentpress.api").info("hello once", thread_id="t-1")
        logging.getLogger("agentpress.api").info("plain stdlib")  # foreign records are still exported
        recs = _records(tel, exp)
        assert [r.body for r in recs if r.body != "plain stdlib"] == ["hello once"]
        assert "plain stdlib" in [r.body for r in recs]
        (hello,) = [r for r in recs if r.body == "hello once"]
        assert hello.attributes["agentpress.thread.id"] == "t-1"
    finally:
        sl_integ.uninstrument()
        log_integ.uninstrument()
        lp.shutdown()
