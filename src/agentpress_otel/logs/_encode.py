"""OTLP protobuf bytes of a batch of log records, written directly (the SDK's encoder costs ~30 µs per record).

The SDK's ``encode_logs`` builds a protobuf object per record, attribute and value before serializing them: on the
export thread that is more CPU than the whole rest of a log record's way through our pipeline. Log records are a
flat shape (a few scalars, a string body, string and number attributes), so :func:`encode_request` writes their
wire format itself: the same ``ExportLogsServiceRequest`` the SDK's encoder gives, field for field and byte for
byte (tests/unit/test_logs_encode.py compares both on varied batches), with the encoding of a repeated attribute
key, or ``key=value`` pair of short strings, kept from one record to the next.

Anything outside that shape (a container or bytes value, a non-string key, an int beyond 64 bits, text that is not
valid UTF-8, an SDK object it does not know) makes it answer None: the caller then uses the SDK's encoder for the
whole batch, which handles (or reports) it as before. The resource and scope messages are encoded by the SDK's
own helpers, once per batch.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.common._internal import _encode_instrumentation_scope, _encode_resource
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _SdkGrpcLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord

from agentpress_otel import _selftel

_fixed64 = struct.Struct("<Q").pack
_double = struct.Struct("<d").pack
_fixed32 = struct.Struct("<I").pack
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_CACHE_MAX = 4096
_CACHED_VALUE_MAX = 256  # longer values are rarely repeated: not worth a cache entry

#: attribute key -> its KeyValue ``key`` field bytes; (key, short string value) -> the whole attribute field
_keys: dict[str, bytes] = {}
_pairs: dict[tuple[str, str], bytes] = {}
_G = _selftel.guard("logs.encode")


class _NotFlat(Exception):
    """A record outside the shape written here: the SDK's encoder takes the batch."""


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the payload's length, the payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(v: Any) -> bytes:
    """An ``AnyValue`` message for a scalar (the ``oneof`` member is written even when it holds a default)."""
    t = type(v)
    if t is str:
        return _len_field(b"\x0a", v.encode())
    if t is bool:
        return b"\x10\x01" if v else b"\x10\x00"
    if t is int:
        if not _INT64_MIN <= v <= _INT64_MAX:
            raise _NotFlat
        return b"\x18" + _varint(v & 0xFFFF_FFFF_FFFF_FFFF)  # int64: two's complement, 10 bytes when negative
    if t is float:
        return b"\x21" + _double(v)
    if v is None:
        return b""  # an empty AnyValue, as the SDK encodes None
    raise _NotFlat


def _attribute(key: Any, v: Any) -> bytes:
    """One ``LogRecord.attributes`` field (tag 6) holding the ``KeyValue``."""
    if type(key) is not str:
        raise _NotFlat
    short = type(v) is str and len(v) <= _CACHED_VALUE_MAX
    if short:
        hit = _pairs.get((key, v))
        if hit is not None:
            return hit
    k = _keys.get(key)
    if k is None:
        k = _len_field(b"\x0a", key.encode())
        if len(_keys) >= _CACHE_MAX:
            _keys.clear()
        _keys[key] = k
    out = _len_field(b"\x32", k + _len_field(b"\x12", _any_value(v)))
    if short:
        if len(_pairs) >= _CACHE_MAX:
            _pairs.clear()
        _pairs[(key, v)] = out
    return out


def _record(ro: ReadableLogRecord) -> bytes:
    """The ``LogRecord`` message of one record, fields in number order, proto3 defaults left out."""
    lr = ro.log_record
    parts: list[bytes] = []
    ts = lr.timestamp
    if ts:
        parts += (b"\x09", _fixed64(ts))
    sev = lr.severity_number
    sev_n = getattr(sev, "value", None)
    if sev_n:
        parts += (b"\x10", _varint(sev_n))
    text = lr.severity_text
    if text:
        parts.append(_len_field(b"\x1a", text.encode()))
    parts.append(_len_field(b"\x2a", _any_value(lr.body)))
    attrs = lr.attributes
    if attrs:
        for key, v in attrs.items():
            parts.append(_attribute(key, v))
    dropped = ro.dropped_attributes
    if dropped:
        parts += (b"\x38", _varint(dropped))
    # None raises here as in the SDK's encoder: the SDK path then reports it
    flags = int(lr.trace_flags)
    if flags:
        parts += (b"\x45", _fixed32(flags))
    tid = lr.trace_id
    if tid:
        parts += (b"\x4a\x10", tid.to_bytes(16, "big"))
    sid = lr.span_id
    if sid:
        parts += (b"\x52\x08", sid.to_bytes(8, "big"))
    obs = lr.observed_timestamp
    if obs:
        parts += (b"\x59", _fixed64(obs))
    name = lr.event_name
    if name:
        parts.append(_len_field(b"\x62", name.encode()))
    return b"".join(parts)


def _groups(batch: Sequence[ReadableLogRecord]) -> dict[Any, dict[Any, list[bytes]]]:
    """Encoded records grouped by resource, then scope, in first-seen order (as the SDK groups them: by equality,
    looked up once per distinct object)."""
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    by_id: dict[tuple[int, int], list[bytes]] = {}
    for ro in batch:
        res, scope = ro.resource, ro.instrumentation_scope or None
        records = by_id.get((id(res), id(scope)))
        if records is None:
            records = groups.setdefault(res, {}).setdefault(scope, [])
            by_id[(id(res), id(scope))] = records  # the batch keeps res and scope alive: ids stay unique
        records.append(_record(ro))
    return groups


def encode_request(batch: Sequence[ReadableLogRecord]) -> bytes | None:
    """The serialized ``ExportLogsServiceRequest`` of ``batch``, or None when a record is outside the flat shape
    written here (then use the SDK's ``encode_logs``).

    Example: ``data = encode_request(batch) or encode_logs(batch).SerializeToString()``
    """
    try:
        groups = _groups(batch)
    except (_NotFlat, AttributeError, TypeError, ValueError, OverflowError, UnicodeEncodeError, struct.error):
        return None
    out: list[bytes] = []
    for res, scopes in groups.items():
        body = [_len_field(b"\x0a", _encode_resource(res).SerializeToString())]
        for scope, records in scopes.items():
            scope_body = [_len_field(b"\x0a", _encode_instrumentation_scope(scope).SerializeToString())]
            scope_body += [_len_field(b"\x12", r) for r in records]
            schema = scope.schema_url if scope else None
            if schema:
                scope_body.append(_len_field(b"\x1a", schema.encode()))
            body.append(_len_field(b"\x12", b"".join(scope_body)))
        if res.schema_url:
            body.append(_len_field(b"\x1a", res.schema_url.encode()))
        out.append(_len_field(b"\x0a", b"".join(body)))
    return b"".join(out)


def translate(batch: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    """The request message for ``batch``: parsed from :func:`encode_request`'s bytes (upb parses in C), else the
    SDK's ``encode_logs`` (a record outside the flat shape, or an error here: counted, never a lost batch).

    Example: ``translate(batch).SerializeToString()``
    """
    raw = None
    with _G:
        raw = encode_request(batch)
    if raw is not None:
        return cast(ExportLogsServiceRequest, ExportLogsServiceRequest.FromString(raw))
    return encode_logs(batch)


class OTLPLogExporter(_SdkGrpcLogExporter):
    """The SDK's OTLP/gRPC log exporter with :func:`translate` as its encoder (same request, a fifth of the CPU).

    Example::

        OTLPLogExporter(endpoint="http://localhost:4317", insecure=True)
    """

    def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
        return translate(data)
