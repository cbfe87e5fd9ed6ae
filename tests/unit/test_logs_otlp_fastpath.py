"""The log worker's shortcuts into the SDK produce what the SDK's own path produces.

The worker hands its records to the ``BatchLogRecordProcessor``'s queue directly (no ``Logger.emit``, no
``on_emit`` copy): these tests run the same log calls through the SDK's ``LoggingHandler`` and through ours, encode
both exporters' batches with the OTLP encoder the OTLP exporters use, and compare the decoded protobufs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agentpress_otel._context import thread_context
from agentpress_otel._export import DropCountingLogProcessor
from agentpress_otel.integrations.logging import OTelQueueHandler
from agentpress_otel.logs import LevelPolicy, LogPipeline
from agentpress_otel.logs._otlp import _queue_of
from agentpress_otel.redaction import RedactingLogExporter

SPAN = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=False,
                   trace_flags=TraceFlags(TraceFlags.SAMPLED))  # fmt: skip
RESOURCE = Resource({"service.name": "fastpath-test", "service.version": "1"})
LOGGER = "agent.fastpath"


def _provider(*processors: LogRecordProcessor) -> LoggerProvider:
    lp = LoggerProvider(resource=RESOURCE)
    for p in processors:
        lp.add_log_record_processor(p)
    return lp


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    log = logging.getLogger(LOGGER)
    saved = (log.level, log.propagate, list(log.handlers))
    log.handlers.clear()
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log
    log.setLevel(saved[0])
    log.propagate = saved[1]
    log.handlers[:] = saved[2]


def _log_calls(log: logging.Logger, sdk: bool) -> None:
    """The same calls for both handlers. Ours adds the context ids after the ``extra`` fields; the SDK handler
    gets them as ``extra`` fields under the same attribute names, so both records carry the same attributes."""
    ids = {"agentpress.project.id": "p-1", "agentpress.thread.id": "t-1"} if sdk else {}
    clock = _FixedClock()
    log.addFilter(clock)
    try:
        with thread_context(project_id="p-1", thread_id="t-1"):
            with trace.use_span(NonRecordingSpan(SPAN)):
                log.info("tool %s finished in %d ms", "web_search", 12,
                         extra={"route": "/api/agent/start", "tool": "web_search", "attempt": 2, **ids})  # fmt: skip
                log.warning("slow", extra={"ratio": 0.25, "cached": False, **ids})
            log.error("no span here", extra=ids)
            log.debug("unicode é ✓ %s", "ok", extra={"n": -(2**40), **ids})
    finally:
        log.removeFilter(clock)


class _FixedClock(logging.Filter):
    """Gives the records of one run the creation times of the other run (1 ms apart from a fixed instant)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.n += 1
        record.created = 1_700_000_000.25 + self.n / 1000
        return True


def _decoded(exp: InMemoryLogRecordExporter) -> ExportLogsServiceRequest:
    """The request the OTLP exporters would send for everything ``exp`` got, decoded, minus the clock reading."""
    req = ExportLogsServiceRequest.FromString(encode_logs(exp.get_finished_logs()).SerializeToString())
    for rl in req.resource_logs:
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                assert rec.observed_time_unix_nano > 0
                rec.observed_time_unix_nano = 0  # read from the clock when each record was built
    return req


def _ours(log: logging.Logger, *processors: LogRecordProcessor) -> LoggerProvider:
    lp = _provider(*processors)
    pipeline = LogPipeline(logger_provider=lp)
    log.handlers[:] = [OTelQueueHandler(pipeline, policy=LevelPolicy(default="DEBUG"))]
    try:
        _log_calls(log, sdk=False)
        assert pipeline.flush(5.0)
    finally:
        pipeline.stop()
    lp.force_flush()
    return lp


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_records_queued_directly_encode_like_the_sdk_handlers(logger: logging.Logger) -> None:
    """Same log calls, SDK ``LoggingHandler`` vs our pipeline (which skips ``Logger.emit`` and the batch processor's
    ``on_emit``): the OTLP requests are equal field for field (body, severity, timestamps, trace and span ids and
    flags, attributes in order, resource, scope), and the queued records carry the empty context the SDK's copy has.
    """
    sdk_exp = InMemoryLogRecordExporter()
    sdk_lp = _provider(BatchLogRecordProcessor(sdk_exp))
    logger.handlers[:] = [LoggingHandler(logger_provider=sdk_lp)]
    _log_calls(logger, sdk=True)
    sdk_lp.force_flush()

    ours_exp = InMemoryLogRecordExporter()
    lp = _ours(logger, BatchLogRecordProcessor(RedactingLogExporter(ours_exp)))
    assert _queue_of(lp.get_logger(LOGGER)) is not None  # the direct path was the one taken

    want, got = _decoded(sdk_exp), _decoded(ours_exp)
    assert len(got.resource_logs[0].scope_logs[0].log_records) == 4
    assert got == want, f"ours:\n{got}\nSDK:\n{want}"
    for rec in ours_exp.get_finished_logs():
        assert rec.log_record.context == Context() and rec.resource is RESOURCE
    for lp_ in (sdk_lp, lp):
        lp_.shutdown()


class _Stamping(LogRecordProcessor):
    """A processor of the app's that writes on the records it sees (what a shared record would leak)."""

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        log_record.log_record.body = "stamped"

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _OwnOnEmit(BatchLogRecordProcessor):
    """A batch processor subclass with its own ``on_emit``: it must be called."""

    seen = 0

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        type(self).seen += 1
        super().on_emit(log_record)


def test_other_processor_setups_take_the_sdks_path(logger: logging.Logger) -> None:
    """With a second processor, or a batch processor overriding ``on_emit``, records go through the SDK's
    ``on_emit`` (which copies each record per batch processor): a processor writing on the record after the batch
    processor queued it does not change what is exported, and an overridden ``on_emit`` runs."""
    exp = InMemoryLogRecordExporter()
    lp = _ours(logger, BatchLogRecordProcessor(exp), _Stamping())
    assert _queue_of(lp.get_logger(LOGGER)) is None
    bodies = [r.log_record.body for r in exp.get_finished_logs()]
    assert len(bodies) == 4 and "stamped" not in bodies and "slow" in bodies
    lp.shutdown()

    exp2 = InMemoryLogRecordExporter()
    lp2 = _ours(logger, _OwnOnEmit(exp2))
    assert _OwnOnEmit.seen == 4 and len(exp2.get_finished_logs()) == 4
    lp2.shutdown()


def test_production_processor_takes_the_direct_path_and_keeps_its_byte_budget(logger: logging.Logger) -> None:
    """``instrument()``'s log processor (the drop-counting batch processor, bounded in bytes) gets records through
    the direct path, and its queue still counts their bytes: after the export the budget is back to zero."""
    exp = InMemoryLogRecordExporter()
    proc = DropCountingLogProcessor(RedactingLogExporter(exp), max_queue_size=64)
    lp = _provider(proc)
    assert _queue_of(lp.get_logger(LOGGER)) is proc._batch_processor
    queue: Any = proc._batch_processor._queue
    pipeline = LogPipeline(logger_provider=lp)
    logger.handlers[:] = [OTelQueueHandler(pipeline)]
    try:
        logger.info("counted %s", "x" * 1000)
        assert pipeline.flush(5.0)
        assert queue._bytes > 1000  # the record's bytes were counted on the way in
    finally:
        pipeline.stop()
    lp.force_flush()
    assert queue._bytes == 0 and [r.log_record.body for r in exp.get_finished_logs()] == ["counted " + "x" * 1000]
    lp.shutdown()
