"""A burst of 100,000 spans into a slow Collector: memory stays bounded and every lost span is counted.

Real OTLP/HTTP export to an OTLPSink that takes 50 ms per request (so the batch processor can export
~10k spans/s while the burst produces several times that). After the burst drains, every span is
either at the receiver or in ``agentpress_otel._selftel.dropped("spans")``: exported + dropped == created.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace

import agentpress_otel
from agentpress_otel import _selftel, _setup
from harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration

N = 100_000
QUEUE = 2048
# RSS, sampled every 20 ms (tracemalloc would slow the burst 5-10x). The queue holds 2048 small spans
# (~2-4 MiB) plus one encoded batch in flight; an unbounded queue would need ~200 MiB for this burst.
PEAK_GROWTH_MAX_KB = 64 * 1024


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture
def slow_sink() -> Iterator[OTLPSink]:
    with OTLPSink() as sink:
        sink.mode = "slow"
        sink.delay_s = 0.05
        try:
            yield sink
        finally:
            _setup._reset_for_tests()


def test_burst_with_slow_exporter_is_bounded_and_fully_accounted(slow_sink: OTLPSink) -> None:
    """A burst against a slow exporter keeps memory bounded, and every span is exported once or counted dropped."""
    tel = agentpress_otel.instrument(
        service_name="burst", endpoint=slow_sink.http_endpoint, protocol="http/protobuf", metrics=False,
        logs=False, integrations=(), max_queue_size=QUEUE, export_timeout_s=10,
    )
    tracer = trace.get_tracer("burst")
    gc.collect()
    base = _rss_kb()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _rss_kb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        t0 = time.monotonic()
        for i in range(N):
            with tracer.start_as_current_span("burst.op") as span:
                span.set_attribute("i", i)
                span.set_attribute("agentpress.thread.id", "t-1")
        burst_s = time.monotonic() - t0
        # Drain what is still queued (bounded: the queue holds at most QUEUE spans, ~4 slow batches).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            exported = len({s.span_id for s in slow_sink.spans()})
            if exported + _selftel.dropped("spans") >= N:
                break
            time.sleep(0.2)
    finally:
        stop.set()
        sampler.join(2)

    spans = slow_sink.spans()
    exported = len({s.span_id for s in spans})
    dropped = _selftel.dropped("spans")
    info = (f"burst {N} spans in {burst_s:.1f}s; exported {exported} (received {len(spans)}), dropped {dropped} "
            f"(by reason: queue_full {_selftel.dropped('spans', 'queue_full')}, export_failed "
            f"{_selftel.dropped('spans', 'export_failed')}); RSS {base} kB, peak growth {peak[0] - base} kB")
    print(info)
    assert len(spans) == exported, "duplicates at the receiver: " + info
    assert dropped > 0, "the slow exporter should not keep up with the burst: " + info
    assert exported + dropped == N, info
    assert peak[0] - base <= PEAK_GROWTH_MAX_KB, info
    assert tel.shutdown(timeout_s=2)
