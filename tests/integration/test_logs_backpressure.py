"""With the OTLP endpoint down, 100,000 log calls complete without blocking, memory stays bounded
and the drops are counted (self-telemetry)."""

from __future__ import annotations

import logging
import time
import tracemalloc
from types import SimpleNamespace

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider

from agentpress_otel import _selftel
from agentpress_otel._config import load_config
from agentpress_otel._export import CountingLogExporter, DropCountingLogProcessor
from agentpress_otel._harness._proc import free_port
from agentpress_otel.integrations import logging as log_integ
from agentpress_otel.logs import stats
from agentpress_otel.redaction import RedactingLogExporter

pytestmark = pytest.mark.integration
N = 100_000


def test_endpoint_down_never_blocks_and_memory_is_bounded() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1/logs"  # nothing listens: connection refused
    lp = LoggerProvider()
    # The chain instrument() builds: counting batch processor -> redaction -> counting exporter -> OTLP.
    exporter = CountingLogExporter(lambda: OTLPLogExporter(endpoint=dead, timeout=1))
    lp.add_log_record_processor(DropCountingLogProcessor(RedactingLogExporter(exporter), max_queue_size=2048))
    cfg = load_config({"log_level": "INFO", "max_queue_size": 2048}, env={})
    tel = SimpleNamespace(config=cfg, logger_provider=lp)
    _selftel.reset()
    assert log_integ.instrument(tel)
    handler = log_integ.handler()
    assert handler is not None
    # Only our handler on this logger: pytest's capture handlers on the root would dominate the numbers.
    log = logging.getLogger("agentpress.load")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    worst = 0.0
    try:
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        t_all = time.perf_counter()
        for i in range(N):
            t0 = time.perf_counter()
            log.info("request %d done user=%s", i, "u-1", extra={"route": "/api/x", "i": i})
            dt = time.perf_counter() - t0
            worst = max(worst, dt)
        total = time.perf_counter() - t_all
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        s = dict(stats())
    finally:
        log.removeHandler(handler)
        log.propagate = True
        log_integ.uninstrument()
        t0 = time.perf_counter()
        lp.shutdown()
        shutdown_s = time.perf_counter() - t0
    dropped = _selftel.dropped("logs")
    print(
        f"\n{N} calls in {total:.2f}s (worst single call {worst * 1e3:.1f} ms), traced peak "
        f"{(peak - base) / 2**20:.1f} MiB, dropped (queue_full) {_selftel.dropped('logs', 'queue_full')}, "
        f"all log drops {dropped}, shutdown {shutdown_s:.2f}s, pipeline stats {s}"
    )
    # A blocking exporter shows up as multi-second calls (11 s with the Simple processor); ours never waits.
    assert worst < 1.0
    # Bounded: the queue (8192) + the BLRP queue (2048) + in-flight batch, never 100k records.
    assert peak - base < 64 * 2**20
    # The endpoint is down: every record is lost somewhere (our queue, the batch queue or a failed export),
    # and every loss is counted.
    assert dropped > 0
