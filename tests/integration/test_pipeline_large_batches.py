"""Spans with content capture (kilobytes of messages each) through the shipped Collector config to a backend with
the usual 4 MiB gRPC message limit (Tempo's default; our Tempo stand-in is a Collector with the same default).

Before issue 17 the Tempo exporter batched by item count (up to 8192 spans per request): a second of such spans
made one request of ~9 MiB, the backend refused it as too large, and the exporter dropped it as a permanent error.
Export batches are now bounded in bytes (max 3 MiB)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from agentpress_otel._harness._proc import wait_until
from agentpress_otel._harness.collector import Collector, StandIn, start_collector, start_standin
from conftest import need
from harness.null_http import NullHTTP

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
REQUESTS, SPANS_PER_REQUEST, VALUE_BYTES = 10, 300, 3000



@pytest.fixture(scope="module")
def pipeline() -> Iterator[tuple[Collector, StandIn]]:
    null = ThreadingHTTPServer(("127.0.0.1", 0), NullHTTP)
    threading.Thread(target=null.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{null.server_address[1]}"
    tempo = need(lambda: start_standin("traces"))
    col = start_collector(traces_endpoint=tempo.endpoint, logs_endpoint=url + "/otlp",
                          remote_write_url=url + "/api/v1/write", env={"OTELCOL_TAIL_DECISION_WAIT": "1s"})
    try:
        yield col, tempo
    finally:
        col.stop()
        tempo.stop()
        null.shutdown()


def _request(rng: random.Random, marker: str) -> bytes:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=marker)))
    ss = rs.scope_spans.add()
    now = time.time_ns()
    words = ["summarise", "the", "quarterly", "report", "revenue", "customers", "table", "tool", "result"]
    for _ in range(SPANS_PER_REQUEST // 10):
        tid = rng.randbytes(16)
        for i in range(10):
            s = ss.spans.add()
            s.trace_id, s.span_id, s.name = tid, rng.randbytes(8), "chat gpt-5-mini"
            s.start_time_unix_nano, s.end_time_unix_nano = now, now + 1_000_000
            s.status.code = 2 if i == 0 else 0  # error traces: tail sampling keeps all of them
            text = " ".join(rng.choice(words) for _ in range(VALUE_BYTES // 6))[:VALUE_BYTES]
            s.attributes.append(KeyValue(key="gen_ai.output.messages", value=AnyValue(string_value=text)))
    return bytes(req.SerializeToString())


def test_a_second_of_content_spans_reaches_a_4_mib_backend(pipeline: tuple[Collector, StandIn]) -> None:
    """A second of content-heavy spans reaches a backend with a 4 MiB message limit without failures."""
    import grpc

    col, tempo = pipeline
    marker = f"large-{random.getrandbits(32):08x}"
    rng = random.Random(17)
    with grpc.insecure_channel(f"127.0.0.1:{col.grpc_port}") as ch:
        call = ch.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for _ in range(REQUESTS):  # ~9 MiB within one export flush interval
            call(_request(rng, marker), timeout=10)
    want = REQUESTS * SPANS_PER_REQUEST

    def delivered() -> int:
        return sum(1 for s in tempo.spans() if s.resource.get("service.name") == marker)

    wait_until(lambda: delivered() >= want, timeout=60, interval=0.25, what=f"{want} spans at the Tempo stand-in")
    failed = sum(col.metric_sum(n, exporter="otlp_grpc/tempo") for n in
                 ("otelcol_exporter_send_failed_spans", "otelcol_exporter_send_failed_spans_total"))
    assert failed == 0, col.log_tail()
    assert delivered() == want
