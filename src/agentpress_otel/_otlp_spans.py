"""OTLP span export (HTTP and gRPC) with a direct protobuf encoder.

The SDK's encoder builds a protobuf object for every span, attribute and value before serialising them: about
47 µs per span with the 13 attributes of an LLM call, more than everything else the export thread does. This
module writes the same ``ExportTraceServiceRequest`` bytes directly: the resource and scope are encoded once per
object, and an attribute's key and value once per distinct pair (span attributes repeat: operation, provider,
model, server address). The output is the SDK encoder's message, field for field (a test parses both and compares
them on every shape of span); anything it does not expect (an unknown value type, an out-of-range integer, text
that is not UTF-8, a missing SDK internal) sends the batch through the SDK's own encoder instead, so the result
is never worse than the SDK's. Over gRPC the request message is parsed from these bytes (in C, by upb), which
still costs a fraction of building it field by field in Python.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _SDKExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import SpanContext

from agentpress_otel import _selftel

try:  # the SDK exporter's own size check and error (pinned SDK); without them the SDK's export is used
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
except ImportError:  # pragma: no cover - another SDK layout
    RequestPayloadTooLargeError = None  # type: ignore[assignment,misc]
    _is_request_too_large = None  # type: ignore[assignment]

# and GrpcSpanExporter, made on first use (__getattr__)
__all__ = ["OTLPSpanExporter", "can_send_encoded", "encode_spans", "send_encoded"]

_G = _selftel.guard("export.span_encoder")
_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http.trace_exporter")  # the SDK exporter's logger
_SMALL = [bytes((i,)) for i in range(128)]
_D = struct.Struct("<d").pack
_Q = struct.Struct("<Q").pack
_I = struct.Struct("<I").pack
_INT64 = (-(1 << 63), 1 << 63)
#: SpanFlags: the context's is_remote is known (always), and is true.
_HAS_REMOTE, _IS_REMOTE = 0x100, 0x200
_MAX_CACHE = 4096


class _Unencodable(Exception):
    """A value this encoder leaves to the SDK's (which logs it and skips the attribute)."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(v: Any) -> bytes:
    """An AnyValue message (the SDK's ``_encode_value``: bool before int, str, bytes, sequences, mappings)."""
    if v is None:
        return b""
    if v is True or v is False:
        return b"\x10\x01" if v else b"\x10\x00"
    if isinstance(v, str):
        return _ld(b"\x0a", v.encode("utf-8"))
    if isinstance(v, int):
        if not _INT64[0] <= v < _INT64[1]:
            raise _Unencodable("int64 out of range")
        return b"\x18" + _varint(v & 0xFFFFFFFFFFFFFFFF)
    if isinstance(v, float):
        return b"\x21" + _D(v)
    if isinstance(v, bytes):
        return _ld(b"\x3a", v)
    if isinstance(v, Sequence):
        return _ld(b"\x2a", b"".join(_ld(b"\x0a", _any_value(x)) for x in v))
    if isinstance(v, Mapping):
        return _ld(b"\x32", b"".join(_ld(b"\x0a", _key_value(str(k), x)) for k, x in v.items()))
    raise _Unencodable(type(v).__name__)


def _key_value(key: str, v: Any) -> bytes:
    return _ld(b"\x0a", key.encode("utf-8")) + _ld(b"\x12", _any_value(v))


class _Encoder:
    """Span batches to request bytes, with caches of what repeats (resources, scopes, attribute pairs)."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[bytes, str, type, Any], bytes] = {}  # (field tag, key, type, value)
        self._resources: dict[int, tuple[Any, bytes]] = {}
        self._scopes: dict[int, tuple[Any, bytes]] = {}

    def attributes(self, tag: bytes, attrs: Mapping[str, Any] | None) -> bytes:
        """Every attribute as a repeated KeyValue field ``tag``; an unencodable one is skipped, as the SDK does."""
        if not attrs:
            return b""
        pairs = self._pairs
        out = []
        for k, v in attrs.items():
            t = type(v)
            cacheable = t is str or t is bool or t is int or v is None  # not floats: 0.0 == -0.0
            key = (tag, k, t, v)
            if cacheable:
                kv = pairs.get(key)
                if kv is not None:
                    out.append(kv)
                    continue
            try:
                kv = _ld(tag, _key_value(k, v))
            except _Unencodable:
                continue
            if cacheable and (t is not str or len(v) <= 256):
                if len(pairs) >= _MAX_CACHE:
                    pairs.clear()
                pairs[key] = kv
            out.append(kv)
        return b"".join(out)

    def _resource(self, res: Any) -> bytes:
        hit = self._resources.get(id(res))
        if hit is None or hit[0] is not res:
            if len(self._resources) >= 64:
                self._resources.clear()
            hit = self._resources[id(res)] = (res, self.attributes(b"\x0a", res.attributes))
        return hit[1]

    def _scope(self, scope: Any) -> bytes:
        if scope is None:
            return b""
        hit = self._scopes.get(id(scope))
        if hit is None or hit[0] is not scope:
            if len(self._scopes) >= 1024:
                self._scopes.clear()
            body = (_ld(b"\x0a", scope.name.encode()) if scope.name else b"") + \
                (_ld(b"\x12", scope.version.encode()) if scope.version else b"") + \
                self.attributes(b"\x1a", scope.attributes)
            hit = self._scopes[id(scope)] = (scope, body)
        return hit[1]

    def span(self, s: ReadableSpan) -> bytes:
        ctx = s.get_span_context()
        assert ctx is not None
        parts = [b"\x0a\x10", ctx.trace_id.to_bytes(16, "big"), b"\x12\x08", ctx.span_id.to_bytes(8, "big")]
        if ctx.trace_state:
            parts.append(_ld(b"\x1a", ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()).encode()))
        parent = s.parent
        if parent:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        if s.name:
            parts.append(_ld(b"\x2a", s.name.encode("utf-8")))
        parts += (b"\x30", _varint(s.kind.value + 1))
        if s.start_time:
            parts += (b"\x39", _Q(s.start_time))
        if s.end_time:
            parts += (b"\x41", _Q(s.end_time))
        parts.append(self.attributes(b"\x4a", s.attributes))
        if s.dropped_attributes:
            parts += (b"\x50", _varint(s.dropped_attributes))
        for ev in s.events:
            body = (b"\x09" + _Q(ev.timestamp) if ev.timestamp else b"") + \
                (_ld(b"\x12", ev.name.encode("utf-8")) if ev.name else b"") + \
                self.attributes(b"\x1a", ev.attributes) + \
                (b"\x20" + _varint(ev.dropped_attributes) if ev.dropped_attributes else b"")
            parts.append(_ld(b"\x5a", body))
        if s.dropped_events:
            parts += (b"\x60", _varint(s.dropped_events))
        for ln in s.links:
            lc = ln.context
            body = b"\x0a\x10" + lc.trace_id.to_bytes(16, "big") + b"\x12\x08" + lc.span_id.to_bytes(8, "big") + \
                self.attributes(b"\x22", ln.attributes) + \
                (b"\x28" + _varint(ln.dropped_attributes) if ln.dropped_attributes else b"") + \
                b"\x35" + _I(_flags(lc))
            parts.append(_ld(b"\x6a", body))
        if s.dropped_links:
            parts += (b"\x70", _varint(s.dropped_links))
        st = s.status
        code = st.status_code.value
        status = (_ld(b"\x12", st.description.encode("utf-8")) if st.description else b"") + \
            (b"\x18" + _varint(code) if code else b"")
        parts.append(_ld(b"\x7a", status))
        parts += (b"\x85\x01", _I(_flags(parent)))
        return b"".join(parts)

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """``ExportTraceServiceRequest`` bytes: spans grouped by resource, then scope, in first-seen order."""
        groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}
        for s in spans:
            res, scope = s.resource, s.instrumentation_scope or None
            g = groups.get(id(res))
            if g is None:
                g = groups[id(res)] = (res, {})
            sg = g[1].get(id(scope))
            if sg is None:
                sg = g[1][id(scope)] = (scope, [])
            sg[1].append(_ld(b"\x12", self.span(s)))
        out = []
        for res, scopes in groups.values():
            body = [_ld(b"\x0a", self._resource(res))]
            for scope, encoded in scopes.values():
                schema = scope.schema_url if scope is not None else None
                ss = _ld(b"\x0a", self._scope(scope)) + b"".join(encoded) + \
                    (_ld(b"\x1a", schema.encode()) if schema else b"")
                body.append(_ld(b"\x12", ss))
            if res.schema_url:
                body.append(_ld(b"\x1a", res.schema_url.encode()))
            out.append(_ld(b"\x0a", b"".join(body)))
        return b"".join(out)


def _flags(ctx: SpanContext | None) -> int:
    return _HAS_REMOTE | _IS_REMOTE if ctx is not None and ctx.is_remote else _HAS_REMOTE


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized OTLP ``ExportTraceServiceRequest`` for ``spans`` (what the SDK's encoder would produce).

    Example::

        data = encode_spans(finished_spans)   # POST to /v1/traces as application/x-protobuf
    """
    return _Encoder().request(spans)


class OTLPSpanExporter(_SDKExporter):
    """The SDK's OTLP/HTTP span exporter (same constructor, transport, retries, metrics) with the encoder above.

    Example::

        BatchSpanProcessor(OTLPSpanExporter(endpoint="http://collector:4318/v1/traces"))
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._encoder = _Encoder()
        self._direct = can_send_encoded(self)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = None
        if self._direct and not self._shutdown:
            with _G:
                try:
                    data = self._encoder.request(spans)
                except UnicodeEncodeError:  # text protobuf cannot carry: the SDK's encoder decides what to do
                    data = None
        if data is None:
            return super().export(spans)
        return self._send(data, len(spans))

    def _send(self, data: bytes, n: int) -> SpanExportResult:
        return cast(SpanExportResult, send_encoded(self, data, n, "span", SpanExportResult, _log))


def can_send_encoded(exporter: Any) -> bool:
    """Whether ``exporter`` (an SDK OTLP/HTTP exporter) has the internals :func:`send_encoded` uses; without them
    every batch takes the SDK's own export."""
    return _is_request_too_large is not None and all(
        hasattr(exporter, a) for a in ("_client", "_metrics", "_max_request_size", "_shutdown"))


def send_encoded(exporter: Any, data: bytes, n: int, what: str, results: Any, log: logging.Logger) -> Any:
    """The SDK OTLP/HTTP exporter's export after its encode step, for request bytes already encoded: size limit,
    transport with retries, its exporter metrics. ``what`` names the batch in the SDK's messages (``span``,
    ``logs``), ``results`` is the signal's result enum, ``log`` the SDK exporter's logger. Shared by the span and
    log exporters."""
    with exporter._metrics.export_operation(n) as result:
        if _is_request_too_large(data, exporter._max_request_size):
            log.warning("Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                        what, len(data), exporter._max_request_size)
            result.error = RequestPayloadTooLargeError(
                f"Serialized {what} request size {len(data)} bytes exceeds max_request_size "
                f"{exporter._max_request_size} bytes.")
            return results.FAILURE
        sent = exporter._client.export(data)
        if not sent.success:
            result.error = sent.error
            if sent.status_code is not None:
                result.error_attrs = {"http.response.status_code": sent.status_code}
            return results.FAILURE
    return results.SUCCESS


def _grpc_class() -> type:
    # Defined on first use: importing the gRPC exporter loads grpcio, which an OTLP/HTTP process never needs.
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _SDKGrpcExporter
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    class GrpcSpanExporter(_SDKGrpcExporter):
        """The SDK's OTLP/gRPC span exporter, its request message parsed from our encoder's bytes.

        Example::

            BatchSpanProcessor(GrpcSpanExporter(endpoint="http://collector:4317", insecure=True))
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._encoder = _Encoder()

        def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
            raw = None
            with _G:
                try:
                    raw = self._encoder.request(data)
                except UnicodeEncodeError:  # text protobuf cannot carry: the SDK's encoder decides what to do
                    raw = None
            if raw is None:
                return sdk_encode_spans(data)
            return ExportTraceServiceRequest.FromString(raw)

    return GrpcSpanExporter


_lazy: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    if name == "GrpcSpanExporter":
        if name not in _lazy:
            _lazy[name] = _grpc_class()
        return _lazy[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
