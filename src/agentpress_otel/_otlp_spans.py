"""OTLP span export (HTTP and gRPC) with our direct protobuf encoder (:mod:`agentpress_otel._otlp_wire`).

Only the ``Span`` message is written here; the request layout, values, attributes and caches are the wire module's.
The output is the SDK encoder's message, field for field (tests/unit/test_otlp_spans.py parses both on every shape
of span and sends through real HTTP and gRPC receivers). Over gRPC the request message is parsed from our bytes
(in C, by upb), which still costs a fraction of building it field by field in Python.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _SDKExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from agentpress_otel import _selftel
from agentpress_otel._otlp_wire import (
    I32,
    Encoder,
    Q,
    can_send_encoded,
    encode_or_none,
    lazy_classes,
    ld,
    plain_attributes,
    plain_list,
    send_encoded,
    varint,
)

__all__ = ["OTLPSpanExporter", "encode_spans"]  # and GrpcSpanExporter, made on first use (__getattr__)

_G = _selftel.guard("export.span_encoder")
_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")  # the SDK exporter's logger
#: SpanFlags: the context's is_remote is known (always), and is true.
_HAS_REMOTE, _IS_REMOTE = 0x100, 0x200
#: Enum ``.value`` is a Python-level descriptor: the kind and (description-less) status fields, written once.
_KINDS = {k: b"\x30" + varint(k.value + 1) for k in SpanKind}
_STATUSES = {c: ld(b"\x7a", b"\x18" + varint(c.value) if c.value else b"") for c in StatusCode}


class _SpanEncoder(Encoder):
    """Span batches to ``ExportTraceServiceRequest`` bytes."""

    def span(self, s: ReadableSpan) -> bytes:
        """The ``Span`` message, as the SDK's ``_encode_span`` fills it (proto3 defaults left out)."""
        ctx = s.get_span_context()
        assert ctx is not None
        parts = [b"\x0a\x10", ctx.trace_id.to_bytes(16, "big"), b"\x12\x08", ctx.span_id.to_bytes(8, "big")]
        if ctx.trace_state:
            parts.append(ld(b"\x1a", ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()).encode()))
        parent = s.parent
        if parent:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        if s.name:
            parts.append(ld(b"\x2a", s.name.encode("utf-8")))
        parts.append(_KINDS.get(s.kind) or b"\x30" + varint(s.kind.value + 1))
        if s.start_time:
            parts += (b"\x39", Q(s.start_time))
        if s.end_time:
            parts += (b"\x41", Q(s.end_time))
        parts.append(self.attributes(b"\x4a", plain_attributes(s)))
        if s.dropped_attributes:
            parts += (b"\x50", varint(s.dropped_attributes))
        for ev in plain_list(s, "events"):
            body = (b"\x09" + Q(ev.timestamp) if ev.timestamp else b"") + \
                (ld(b"\x12", ev.name.encode("utf-8")) if ev.name else b"") + \
                self.attributes(b"\x1a", plain_attributes(ev)) + \
                (b"\x20" + varint(ev.dropped_attributes) if ev.dropped_attributes else b"")
            parts.append(ld(b"\x5a", body))
        if s.dropped_events:
            parts += (b"\x60", varint(s.dropped_events))
        for ln in plain_list(s, "links"):  # the SDK writes no trace_state on links
            lc = ln.context
            body = b"\x0a\x10" + lc.trace_id.to_bytes(16, "big") + b"\x12\x08" + lc.span_id.to_bytes(8, "big") + \
                self.attributes(b"\x22", plain_attributes(ln)) + \
                (b"\x28" + varint(ln.dropped_attributes) if ln.dropped_attributes else b"") + \
                b"\x35" + I32(_flags(lc))
            parts.append(ld(b"\x6a", body))
        if s.dropped_links:
            parts += (b"\x70", varint(s.dropped_links))
        st = s.status
        if st.description:
            code = st.status_code.value
            desc = ld(b"\x12", st.description.encode("utf-8"))
            parts.append(ld(b"\x7a", desc + b"\x18" + varint(code) if code else desc))
        else:  # always there, as the SDK always sets it
            code = st.status_code.value
            parts.append(_STATUSES.get(st.status_code) or ld(b"\x7a", b"\x18" + varint(code) if code else b""))
        parts += (b"\x85\x01", I32(_flags(parent)))
        return b"".join(parts)

    def spans_request(self, spans: Sequence[ReadableSpan]) -> bytes:
        return self.request(spans, self.span)


def _flags(ctx: SpanContext | None) -> int:
    return _HAS_REMOTE | _IS_REMOTE if ctx is not None and ctx.is_remote else _HAS_REMOTE


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized OTLP ``ExportTraceServiceRequest`` for ``spans`` (what the SDK's encoder would produce).

    Example::

        data = encode_spans(finished_spans)   # POST to /v1/traces as application/x-protobuf
    """
    return _SpanEncoder().spans_request(spans)


class OTLPSpanExporter(_SDKExporter):
    """The SDK's OTLP/HTTP span exporter (same constructor, transport, retries, metrics) with our encoder; a batch
    the encoder steps aside for takes the SDK's export.

    Example::

        BatchSpanProcessor(OTLPSpanExporter(endpoint="http://collector:4318/v1/traces"))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = _SpanEncoder()
        self._direct = can_send_encoded(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = None
        if self._direct and not self._shutdown:
            data = encode_or_none(self._encoder.spans_request, spans, _G)
        if data is None:
            return super().export(spans)
        return cast(SpanExportResult, send_encoded(self, data, len(spans), "span", SpanExportResult, _log))


def _grpc_class() -> type:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _SDKGrpcExporter

    class GrpcSpanExporter(_SDKGrpcExporter):
        """The SDK's OTLP/gRPC span exporter, its request message parsed from our encoder's bytes.

        Example::

            BatchSpanProcessor(GrpcSpanExporter(endpoint="http://collector:4317", insecure=True))
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._encoder = _SpanEncoder()

        def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
            raw = encode_or_none(self._encoder.spans_request, data, _G)
            return sdk_encode_spans(data) if raw is None else ExportTraceServiceRequest.FromString(raw)

    return GrpcSpanExporter


__getattr__ = lazy_classes(__name__, {"GrpcSpanExporter": _grpc_class})
