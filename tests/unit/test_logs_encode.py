"""Our OTLP log encoder (``logs/_encode.py``) writes the bytes the SDK's ``encode_logs`` serializes to.

Each batch is encoded both ways and compared byte for byte: records from the SDK's ``LoggingHandler`` and from our
pipeline, scalar edge values, containers, several resources and scopes, dropped-attribute counts. A record the
SDK's encoder must decide about makes ours step aside (None), and the exporter then sends the SDK's encoding.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler, ReadableLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, use_span

from agentpress_otel import _export
from agentpress_otel._config import load_config
from agentpress_otel._context import thread_context
from agentpress_otel.integrations.logging import OTelQueueHandler
from agentpress_otel.logs import LevelPolicy, LogPipeline
from agentpress_otel.logs._encode import GrpcLogExporter, HttpLogExporter, encode_request, translate

RES = Resource({"service.name": "enc", "deployment.environment.name": "test"}, schema_url="https://opentelemetry.io/s")
SCOPE = InstrumentationScope("agent.run", "1.2", "https://opentelemetry.io/scope", {"lib": "x"})
SPAN = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, False, TraceFlags(TraceFlags.SAMPLED))


def _rec(body: Any = "hello", attrs: Any = None, *, res: Resource = RES, scope: InstrumentationScope | None = SCOPE,
         **fields: Any) -> ReadableLogRecord:  # fmt: skip
    lr = LogRecord(timestamp=fields.pop("timestamp", 1_700_000_000_000_000_001), observed_timestamp=1_700_000_000_5,
                   context=Context(), severity_text=fields.pop("severity_text", "INFO"),
                   severity_number=fields.pop("severity_number", SeverityNumber.INFO), body=body,
                   attributes=attrs, event_name=fields.pop("event_name", None))  # fmt: skip
    for k, v in fields.items():
        setattr(lr, k, v)
    return ReadableLogRecord(log_record=lr, resource=res, instrumentation_scope=scope)


def _same_as_sdk(batch: Sequence[ReadableLogRecord]) -> None:
    ours = encode_request(batch)
    assert ours is not None, "the encoder stepped aside"
    assert ours == encode_logs(batch).SerializeToString()


def test_scalar_bodies_and_attributes_encode_like_the_sdk() -> None:
    """Every scalar the flat shape allows, including the defaults protobuf leaves out and the ones a ``oneof``
    keeps (empty string, False, 0, 0.0), negative and extreme 64-bit ints, floats, unicode, None."""
    values: list[Any] = ["", "x", "é ✓ 日本", "a" * 300, True, False, 0, 1, -1, 127, 128, 2**63 - 1, -(2**63), 0.0,
                         -2.5, 1e300, math.inf, None]  # fmt: skip
    batch = [_rec(v, {"k": v, "k2": v}) for v in values]
    batch += [_rec("same", {"route": "/api/agent/start", "n": i}) for i in range(3)]  # cached pairs come back
    batch.append(_rec(None, None, severity_text=None, severity_number=None, timestamp=None))
    batch.append(_rec("", {}, severity_text="", event_name="gen_ai.evaluation.result"))
    batch.append(_rec("traced", {"a": 1}, trace_id=SPAN.trace_id, span_id=SPAN.span_id, trace_flags=SPAN.trace_flags))
    _same_as_sdk(batch)


def test_resources_scopes_and_dropped_counts_encode_like_the_sdk() -> None:
    """Records of two resources (one of them as two equal objects) and three scopes (one None), interleaved, group
    as the SDK groups them; a ``BoundedAttributes`` over its limit gives the dropped count."""
    other = Resource({"service.name": "other"})
    bounded = BoundedAttributes(maxlen=2, attributes={"a": 1, "b": 2, "c": 3, "d": 4})
    batch = [
        _rec("1"),
        _rec("2", res=other),
        _rec("3", scope=InstrumentationScope("other")),
        _rec("4", res=Resource(dict(RES.attributes), schema_url=RES.schema_url)),  # equal to RES, another object
        _rec("5", scope=None),
        _rec("6", bounded),
    ]
    assert batch[-1].dropped_attributes == 2
    _same_as_sdk(batch)
    _same_as_sdk([])


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_records_of_both_handlers_encode_like_the_sdk() -> None:
    """What the SDK ``LoggingHandler`` and our pipeline hand to the exporter (code attributes, ids, trace ids)."""
    batches = []
    for ours in (False, True):
        exp = InMemoryLogRecordExporter()
        lp = LoggerProvider(resource=RES)
        lp.add_log_record_processor(BatchLogRecordProcessor(exp))
        log = logging.getLogger(f"enc.handler.{ours}")
        log.propagate = False
        pipeline = LogPipeline(logger_provider=lp) if ours else None
        log.handlers[:] = [OTelQueueHandler(pipeline, policy=LevelPolicy(default="DEBUG")) if pipeline
                           else LoggingHandler(logger_provider=lp)]  # fmt: skip
        log.setLevel(logging.DEBUG)
        with thread_context(project_id="p-1", thread_id="t-1"), use_span(NonRecordingSpan(SPAN)):
            log.info("tool %s finished in %d ms", "web_search", 3, extra={"tool": "web_search", "attempt": 2})
            log.warning("ratio", extra={"ratio": 0.5, "cached": False})
        log.error("no span")
        if pipeline is not None:
            assert pipeline.flush(5.0)
            pipeline.stop()
        lp.force_flush()
        batches.append(exp.get_finished_logs())
        log.handlers.clear()
        lp.shutdown()
    for batch in batches:
        assert len(batch) == 3
        _same_as_sdk(batch)


def test_containers_bytes_and_out_of_range_ints_encode_like_the_sdk() -> None:
    """Map, list and bytes bodies and attributes (nested), and an int beyond 64 bits (the SDK skips that attribute)."""
    batch = [
        _rec({"k": "v", "n": [1, 2.5, None, {"deep": True}]}, None),
        _rec(["a", "b"], {"list": ("a", "b"), "ints": [1, -2], "map": {"x": "y"}}),
        _rec(b"raw", {"bytes": b"\x00\xff"}),
        _rec("ok", {"big": 2**64, "kept": 1}),
    ]
    _same_as_sdk(batch)


@pytest.mark.parametrize(
    ("body", "attrs", "fields"),
    [
        (object(), None, {}),  # a body the SDK's encoder refuses (the whole batch fails, as before)
        ("ok", {"bad": "\ud800"}, {}),  # a lone surrogate is no UTF-8
        ("\ud800", None, {}),
        ("ok", {"t": 1}, {"timestamp": 1.5}),  # a float timestamp: the SDK's encoder refuses the batch
        ("ok", {"t": 1}, {"trace_id": 1 << 128}),
    ],
)
def test_records_outside_the_flat_shape_go_to_the_sdk_encoder(
    body: Any, attrs: Any, fields: dict[str, Any]
) -> None:
    """A body of an unknown type, text that is not UTF-8 or a field of the wrong type: the encoder steps aside and
    ``translate`` (the exporter's encoder) gives exactly what the SDK's encoder gives, or its error."""
    batch = [_rec("first"), _rec(body, attrs, **fields)]
    assert encode_request(batch) is None
    try:
        want = encode_logs(batch)
    except Exception as exc:  # the SDK's own error for such a record must come through unchanged
        with pytest.raises(type(exc)):
            translate(batch)
        return
    assert translate(batch) == want


@pytest.mark.parametrize(("protocol", "cls"), [("grpc", GrpcLogExporter), ("http/protobuf", HttpLogExporter)])
def test_both_protocols_send_the_sdk_encoders_request_to_a_real_receiver(protocol: str, cls: type) -> None:
    """The configured exporter for each protocol is ours, and a real OTLP receiver gets the request the SDK's encoder
    makes; a batch our encoder steps aside for arrives too, encoded by the SDK."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from harness.otlp_sink import OTLPSink

    flat = [_rec("a", {"x": 1}), _rec("b", {"y": "z"}, trace_id=SPAN.trace_id, span_id=SPAN.span_id)]
    other = [_rec("c", {"bad": "\ud800"}), _rec("d")]
    with OTLPSink() as sink:
        endpoint = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
        exp = _export.make_log_exporter(load_config({"endpoint": endpoint, "protocol": protocol}, env={}))
        try:
            assert type(exp) is cls
            assert exp.export(flat).name == "SUCCESS"
            assert exp.export(other).name == "SUCCESS"
        finally:
            exp.shutdown()
        with sink.lock:
            got = list(sink.received.logs)
    assert got[0] == encode_logs(flat)
    assert [r.body.string_value for r in got[1].resource_logs[0].scope_logs[0].log_records] == ["c", "d"]
