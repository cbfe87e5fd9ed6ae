"""Our direct OTLP span encoder writes the message the SDK's encoder builds, for every shape of span.

Spans are made by a real SDK TracerProvider (so their fields are what exporters really get) with every attribute
type OTel allows, events, links, remote and local parents, trace state, every status and kind, several resources
and scopes, dropped counts; both encoders' bytes are parsed with the OTLP protobuf classes and compared as
messages. The exporter test sends through a real OTLP/HTTP receiver and decodes what arrived.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from agentpress_otel._otlp_spans import OTLPSpanExporter, encode_spans
from agentpress_otel._providers import HashedResource

VALUES: list[Any] = ["chat", "", "caf\u00e9 \u2603", True, False, 0, 1, -1, 2**62, -(2**63), 0.0, -0.0, -2.5, 1e300,
                     float("inf"), b"\x00\x01raw", ("a", "b"), (1, 2, 3), (True, False), (0.5, 1.5), (), ["x"],
                     ("a", None, "b")]


def _spans(seed: int) -> list[Any]:
    rng = random.Random(seed)
    mem = InMemorySpanExporter()
    out = []
    for res in (Resource({"service.name": "a", "n": 1}), HashedResource({"service.name": "b"}, "https://s/1")):
        tp = TracerProvider(resource=res, span_limits=SpanLimits(max_span_attributes=6, max_events=2,
                                                                 max_links=2))
        tp.add_span_processor(SimpleSpanProcessor(mem))
        for scope in (("s1", None, None), ("s2", "1.0", "https://schema/2"), ("", None, None)):
            tracer = tp.get_tracer(scope[0], scope[1], schema_url=scope[2],
                                   attributes={"scope.attr": "x"} if scope[1] else None)
            for i in range(12):
                remote = SpanContext(rng.getrandbits(128) or 1, rng.getrandbits(64) or 1, is_remote=rng.random() < .5,
                                     trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v"), ("z", "1")])
                                     if rng.random() < .5 else None)
                ctx = set_span_in_context(NonRecordingSpan(remote)) if i % 3 else None
                links = [Link(remote, {"l": "v", "n": i})] * (i % 4)
                kind = list(SpanKind)[i % 5]
                with tracer.start_as_current_span(f"op {i}" if i % 7 else "", context=ctx, kind=kind,
                                                  links=links) as s:
                    for _ in range(rng.randint(0, 8)):
                        s.set_attribute(f"k{rng.randint(0, 9)}", rng.choice(VALUES))
                    for e in range(i % 4):
                        s.add_event(f"ev{e}" if e else "", {"a": rng.choice(VALUES)} if e % 2 else None)
                    if i % 5 == 1:
                        s.set_status(Status(StatusCode.ERROR, "boom \u2603"))
                    elif i % 5 == 2:
                        s.set_status(Status(StatusCode.OK))
                    elif i % 5 == 3:
                        s.set_status(Status(StatusCode.ERROR))
        out += mem.get_finished_spans()
        mem.clear()
    return out


@pytest.mark.parametrize("seed", range(5))
def test_same_message_as_the_sdk_encoder(seed: int) -> None:
    """Across kinds, parents, links, events, statuses, value types, resources and scopes: the same message."""
    spans = _spans(seed)
    want = sdk_encode(spans)
    raw = encode_spans(spans)
    got = ExportTraceServiceRequest.FromString(raw)
    assert got == want
    assert raw == want.SerializeToString()  # byte for byte, too (upb writes fields in number order)
    assert len(got.resource_spans) == 2 and sum(len(s.spans) for r in got.resource_spans for s in r.scope_spans) \
        == len(spans)


def test_the_value_cache_never_answers_for_an_equal_value_of_another_kind() -> None:
    """One encoder (as an exporter keeps it) across batches: a cached attribute must not stand in for a value that
    is equal but encodes differently (0.0 and -0.0, 1 and 1.0 and True, a tuple of text and a list or a tuple of
    booleans), in either order."""
    from agentpress_otel._otlp_spans import _SpanEncoder

    values: list[Any] = [0.0, -0.0, 0.0, 1, 1.0, True, 1, 2.5, 2.5, ("a",), ["a"], ("a",), (1,), (True,), (1.0,),
                         "1", ("stop",), ("stop",), ("a", "b"), ("a", "b", "c")]
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    encoder = _SpanEncoder()
    for order in (values, values[::-1]):
        for v in order:
            with tp.get_tracer("t").start_as_current_span("s"):
                pass
            spans = mem.get_finished_spans()
            mem.clear()
            spans[0]._attributes = {"v": v, "w": v}  # as given: the SDK's own set_attribute makes lists tuples
            assert encoder.spans_request(spans) == sdk_encode(spans).SerializeToString(), v


def test_unencodable_values_are_skipped_as_the_sdk_skips_them() -> None:
    """An out-of-range int or an object the SDK cannot encode loses that attribute only, in both encoders."""
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("t").start_as_current_span("x") as s:
        s.set_attribute("ok", "yes")
    span = mem.get_finished_spans()[0]
    # as a processor writing the private dict could (the SDK's own set_attribute refuses these)
    span._attributes = {"ok": "yes", "huge": 2**70, "obj": object(), "": "empty key", "after": 1}
    raw = encode_spans([span])
    got = ExportTraceServiceRequest.FromString(raw)
    assert got == sdk_encode([span])
    assert raw == sdk_encode([span]).SerializeToString()  # an empty key is left out, as upb leaves it out
    assert [kv.key for kv in got.resource_spans[0].scope_spans[0].spans[0].attributes] == ["ok", "", "after"]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_the_exporter_sends_the_same_request_to_a_real_receiver(protocol: str) -> None:
    """The exporter instrument() builds for each protocol (our encoder, the SDK's transport; over gRPC, the default,
    the request parsed from our bytes) delivers the batch to a real OTLP receiver equal to the SDK encoder's."""
    import sys
    from pathlib import Path

    from agentpress_otel._config import load_config
    from agentpress_otel._export import make_span_exporter

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.otlp_sink import OTLPSink

    spans = _spans(9 if protocol == "grpc" else 11)
    with OTLPSink() as sink:
        endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
        exp = make_span_exporter(load_config({"protocol": protocol, "endpoint": endpoint}, env={}))
        if protocol == "http/protobuf":
            assert isinstance(exp, OTLPSpanExporter) and exp._direct
        assert exp.export(spans).name == "SUCCESS"
        exp.shutdown()
        with sink.lock:
            got = list(sink.received.traces)
    assert got == [sdk_encode(spans)]


def test_instrument_picks_our_exporters_for_both_protocols() -> None:
    """instrument()'s OTLP span exporter is ours for grpc and http/protobuf."""
    from agentpress_otel._config import load_config
    from agentpress_otel._export import make_span_exporter

    for proto, name in (("grpc", "GrpcSpanExporter"), ("http/protobuf", "OTLPSpanExporter")):
        exp = make_span_exporter(load_config({"protocol": proto, "endpoint": "http://127.0.0.1:9"}, env={}))
        assert type(exp).__name__ == name and type(exp).__module__ == "agentpress_otel._otlp_spans", exp
        exp.shutdown()


def test_an_unencodable_value_is_logged_as_the_sdk_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    """A skipped attribute is reported on the SDK encoder's logger, as the SDK's encoder reports it."""
    mem = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("t").start_as_current_span("x"):
        pass
    span = mem.get_finished_spans()[0]
    span._attributes = {"huge": 2**70}
    with caplog.at_level("ERROR", logger="opentelemetry.exporter.otlp.proto.common._internal"):
        encode_spans([span])
    assert any("Failed to encode key huge" in r.getMessage() for r in caplog.records)


def test_rebuilt_spans_and_subclasses_are_read_through_their_own_api() -> None:
    """The encoder reads the SDK's attribute and event storage directly; spans rebuilt from plain lists and dicts
    (as the redaction exporter builds them) and a subclass that computes its attributes still give the SDK
    encoder's message."""
    from opentelemetry.sdk.trace import Event, ReadableSpan

    base = _spans(7)[:12]
    rebuilt = [ReadableSpan(name=s.name, context=s.context, parent=s.parent, resource=s.resource,
                            attributes=dict(s.attributes), events=[Event(e.name, dict(e.attributes or {}),
                                                                         e.timestamp) for e in s.events],
                            links=list(s.links), kind=s.kind, status=s.status, start_time=s.start_time,
                            end_time=s.end_time, instrumentation_scope=s.instrumentation_scope) for s in base]

    class Computed(ReadableSpan):
        @property
        def attributes(self) -> Any:
            return {"computed": True}

    computed = [Computed(name=s.name, context=s.context, resource=s.resource, attributes={"stored": 1},
                         instrumentation_scope=s.instrumentation_scope) for s in base[:3]]
    for spans in (rebuilt, computed):
        assert ExportTraceServiceRequest.FromString(encode_spans(spans)) == sdk_encode(spans)
    got = ExportTraceServiceRequest.FromString(encode_spans(computed))
    assert {kv.key for r in got.resource_spans for sc in r.scope_spans for sp in sc.spans
            for kv in sp.attributes} == {"computed"}
