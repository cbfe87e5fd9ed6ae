"""Span export on the export thread: our OTLP encoder and batch redaction pre-check vs the SDK's way, same run.

Spans are made by a real SDK TracerProvider: LLM-call spans shaped like the LiteLLM integration's (13 attributes:
operation, provider, models, server, usage, finish reasons, cost...) and varied spans (random attribute types,
events, links). Per span, CPU of the calling thread, medians of ``ROUNDS`` interleaved rounds over 512 spans:

* encode, OTLP/HTTP: ``_otlp_spans`` request bytes (the exporter's long-lived encoder) vs the SDK's
  ``encode_spans(...).SerializePartialToString()`` (what its HTTP exporter sends);
* encode, OTLP/gRPC: the request message parsed from our bytes vs the SDK's ``encode_spans`` message;
* redaction + HTTP encoding, the whole export-thread step: ``RedactingSpanExporter`` with its batch pre-check and
  our encoder vs the same exporter redacting every span on its own and the SDK's encoder (the way before issue 19).

The spans carry our ``HashedResource`` on both sides, so the SDK's way above is spared the resource hash it pays per
span on a plain ``Resource``; the last row measures that hash on its own.

Also the metric drain's step: a GenAI histogram's values (one attribute set) through ``record_many`` vs the SDK's
``Histogram.record`` per value. Run: ``.venv/bin/python benchmarks/bench_export.py``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from _common import report
from agentpress_otel._otlp_spans import _SpanEncoder
from agentpress_otel._providers import HashedResource
from agentpress_otel.redaction import RedactingSpanExporter

ROUNDS = 9
N = 512
RESOURCE = {"service.name": "agentpress-api", "service.version": "1.4.2", "deployment.environment.name": "prod",
            "service.instance.id": "9f1c2a", "host.name": "api-7d9f", "host.arch": "amd64", "os.type": "linux",
            "process.pid": 4242, "process.runtime.name": "cpython", "process.runtime.version": "3.11.7",
            "telemetry.distro.name": "agentpress-otel", "telemetry.distro.version": "0.1.0",
            "telemetry.sdk.name": "opentelemetry", "telemetry.sdk.version": "1.45.2"}


def llm_spans(tp: TracerProvider, mem: InMemorySpanExporter) -> list[ReadableSpan]:
    tracer = tp.get_tracer("agentpress_otel.genai", "0.1.0", schema_url="https://opentelemetry.io/schemas/1.37.0")
    rng = random.Random(1)
    for i in range(N):
        with tracer.start_as_current_span("chat gpt-5-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-5-mini", "server.address": "api.openai.com", "server.port": 443}) as s:
            s.set_attributes({
                "gen_ai.response.model": "gpt-5-mini-2025-08-07", "gen_ai.response.id": f"chatcmpl-{i:06d}",
                "gen_ai.response.finish_reasons": ("stop",), "gen_ai.usage.input_tokens": rng.randint(50, 9000),
                "gen_ai.usage.output_tokens": rng.randint(1, 900), "openai.response.system_fingerprint": "fp_1",
                "agentpress.llm.cost_usd": rng.random() / 100, "agentpress.llm.prices_version": "2025-09-01"})
    out = list(mem.get_finished_spans())
    mem.clear()
    return out


def varied_spans(tp: TracerProvider, mem: InMemorySpanExporter) -> list[ReadableSpan]:
    tracer = tp.get_tracer("app")
    rng = random.Random(2)
    values: list[Any] = ["chat", "GET /api/agent-run/{id}/stream", True, 0, 7, -3, 2.5, ("a", "b"), (1, 2), b"raw"]
    for i in range(N):
        with tracer.start_as_current_span(f"op {i % 17}", kind=list(SpanKind)[i % 5]) as s:
            for _ in range(rng.randint(2, 12)):
                s.set_attribute(f"k{rng.randint(0, 30)}", rng.choice(values))
            if i % 4 == 0:
                s.add_event("retry", {"attempt": i % 3, "reason": "429"})
            if i % 7 == 0:
                s.add_link(s.get_span_context(), {"l": "v"})  # type: ignore[attr-defined]
            if i % 5 == 0:
                s.set_status(Status(StatusCode.ERROR, "upstream failed"))
    out = list(mem.get_finished_spans())
    mem.clear()
    return out


class _Null(SpanExporter):
    """Encodes what it is given, as the OTLP exporter would, and sends nothing."""

    def __init__(self, encode: Callable[[Sequence[ReadableSpan]], Any]) -> None:
        self.encode = encode

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.encode(spans)
        return SpanExportResult.SUCCESS


def per_span_us(fn: Callable[[], Any]) -> float:
    fn()
    t = time.thread_time()
    fn()
    return (time.thread_time() - t) / N * 1e6


def main() -> None:
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=HashedResource(RESOURCE))
    tp.add_span_processor(SimpleSpanProcessor(mem))
    sets = {"LLM spans": llm_spans(tp, mem), "varied spans": varied_spans(tp, mem)}
    enc = _SpanEncoder()
    before_chain = RedactingSpanExporter(_Null(lambda b: sdk_encode(b).SerializePartialToString()))
    before_chain._maybe_dirty = lambda r, b: None  # type: ignore[method-assign]  # every span redacted on its own
    after_chain = RedactingSpanExporter(_Null(enc.spans_request))
    pairs: dict[str, tuple[Callable[[Sequence[ReadableSpan]], Any], Callable[[Sequence[ReadableSpan]], Any]]] = {
        "encode, OTLP/HTTP bytes": (lambda b: enc.spans_request(b),
                                    lambda b: sdk_encode(b).SerializePartialToString()),
        "encode, OTLP/gRPC message": (lambda b: ExportTraceServiceRequest.FromString(enc.spans_request(b)),
                                      lambda b: sdk_encode(b)),
        "redaction + OTLP/HTTP encoding": (after_chain.export, before_chain.export),
    }
    rows = []
    plain = Resource(RESOURCE)
    for set_name, spans in sets.items():
        for what, (ours, sdk) in pairs.items():
            o: list[float] = []
            s: list[float] = []
            for rnd in range(ROUNDS):
                order = [(o, ours), (s, sdk)] if rnd % 2 == 0 else [(s, sdk), (o, ours)]
                for acc, fn in order:
                    acc.append(per_span_us(lambda fn=fn, spans=spans: fn(spans)))  # type: ignore[misc]
            mo, ms = statistics.median(o), statistics.median(s)
            rows.append({"name": f"span export, {set_name}, {what}: us per span vs the SDK's way", "value": mo,
                         "unit": "us", "baseline": ms, "ratio": mo / ms, "goal": "", "range": [min(o), max(o)]})
            print(f"{set_name:13} {what:32} ours {mo:6.1f} us ({min(o):.1f}-{max(o):.1f})  SDK's way {ms:6.1f} us  "
                  f"ratio {mo / ms:.2f}")
    # What HashedResource spares the SDK's encoders: Resource.__hash__ JSON-encodes the attributes every time.
    hashed = HashedResource(RESOURCE)
    t_plain = per_span_us(lambda: [hash(plain) for _ in range(N)])
    t_hashed = per_span_us(lambda: [hash(hashed) for _ in range(N)])
    rows.append({"name": "resource hash, 14 attributes: HashedResource vs SDK Resource", "value": t_hashed,
                 "unit": "us", "baseline": t_plain, "ratio": t_hashed / t_plain, "goal": ""})
    print(f"resource hash: {t_hashed:.2f} us (HashedResource) vs {t_plain:.2f} us (Resource)")
    rows.append(metric_row())
    report("export", rows, details={"rounds": ROUNDS, "spans_per_batch": N})


def metric_row() -> dict[str, Any]:
    """A GenAI histogram's values replayed at collection (the metric drain): ``record_many`` per attribute set vs
    the SDK's ``Histogram.record`` per value, six attributes, an SDK MeterProvider with a reader."""
    from opentelemetry.context import Context
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from agentpress_otel._metric_batch import record_many

    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    h = mp.get_meter("bench").create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s")
    attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5-mini",
             "gen_ai.response.model": "gpt-5-mini-2025-08-07", "server.address": "api.openai.com", "server.port": 443}
    values = [random.Random(3).expovariate(40) for _ in range(N)]
    empty = Context()

    def public() -> None:
        for v in values:
            h.record(v, attrs, context=empty)

    o: list[float] = []
    p: list[float] = []
    for rnd in range(ROUNDS):
        for acc, fn in ([(o, lambda: record_many(h, values, attrs)), (p, public)] if rnd % 2 == 0 else
                        [(p, public), (o, lambda: record_many(h, values, attrs))]):
            acc.append(per_span_us(fn))
    mp.shutdown()
    mo, mpub = statistics.median(o), statistics.median(p)
    print(f"histogram values at collection, 6 attributes: record_many {mo:.2f} us per value, "
          f"Histogram.record {mpub:.2f} us")
    return {"name": "GenAI histogram value replayed at collection: record_many vs Histogram.record, us per value",
            "value": mo, "unit": "us", "baseline": mpub, "ratio": mo / mpub, "goal": ""}


if __name__ == "__main__":
    main()
