"""OTLP protobuf bytes of a batch of log records, written directly (the SDK's encoder costs ~30 µs per record).

The SDK's ``encode_logs`` builds a protobuf object per record, attribute and value before serializing them: on the
export thread that is more CPU than the whole rest of a log record's way through our pipeline. :func:`encode_request`
writes the same ``ExportLogsServiceRequest`` bytes itself on :mod:`agentpress_otel._otlp_wire` (wire primitives,
values, attributes with their ``key=value`` encodings cached, resources and scopes encoded once per object, the
request layout, the HTTP send after the encode step); only the ``LogRecord`` message is written here. The
bytes are the SDK encoder's, byte for byte (tests/unit/test_logs_encode.py compares both on varied batches). Both
OTLP log exporters use it: :class:`GrpcLogExporter` and :class:`HttpLogExporter`.

A body the SDK's encoder would refuse, text that is not valid UTF-8 or a field of an unexpected type makes it
answer None: the caller then uses the SDK's encoder for the whole batch, which handles (or reports) it as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, cast

from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as _SdkHttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult

from agentpress_otel import _selftel
from agentpress_otel._otlp_wire import (
    I32,
    Encoder,
    Q,
    any_value,
    can_send_encoded,
    encode_or_none,
    lazy_classes,
    ld,
    send_encoded,
    varint,
)

_G = _selftel.guard("logs.encode")
_log = logging.getLogger("opentelemetry.exporter.otlp.proto.http._log_exporter")  # the SDK exporter's logger


class _LogEncoder(Encoder):
    """Log batches to request bytes (the span encoder's caches and value encoding, the log record message)."""

    def record(self, ro: ReadableLogRecord) -> bytes:
        """The ``LogRecord`` message of one record, fields in number order, proto3 defaults left out (as upb)."""
        lr = ro.log_record
        parts: list[bytes] = []
        ts = lr.timestamp
        if ts:
            parts += (b"\x09", Q(ts))
        sev_n = getattr(lr.severity_number, "value", None)
        if sev_n:
            parts += (b"\x10", varint(sev_n))
        text = lr.severity_text
        if text:
            parts.append(ld(b"\x1a", text.encode()))
        parts.append(ld(b"\x2a", any_value(lr.body)))  # always set, empty for None (the SDK's message)
        parts.append(self.attributes(b"\x32", lr.attributes))
        dropped = ro.dropped_attributes
        if dropped:
            parts += (b"\x38", varint(dropped))
        flags = int(lr.trace_flags)  # None raises here as in the SDK's encoder: the SDK path then reports it
        if flags:
            parts += (b"\x45", I32(flags))
        tid = lr.trace_id
        if tid:
            parts += (b"\x4a\x10", tid.to_bytes(16, "big"))
        sid = lr.span_id
        if sid:
            parts += (b"\x52\x08", sid.to_bytes(8, "big"))
        obs = lr.observed_timestamp
        if obs:
            parts += (b"\x59", Q(obs))
        name = lr.event_name
        if name:
            parts.append(ld(b"\x62", name.encode()))
        return b"".join(parts)

    def logs_request(self, batch: Sequence[ReadableLogRecord]) -> bytes:
        return self.request(batch, self.record)


_ENCODER = _LogEncoder()


def encode_request(batch: Sequence[ReadableLogRecord]) -> bytes | None:
    """The serialized ``ExportLogsServiceRequest`` of ``batch``, or None when a record holds what the SDK's encoder
    must decide about (then use its ``encode_logs``).

    Example: ``data = encode_request(batch) or encode_logs(batch).SerializeToString()``
    """
    return encode_or_none(_ENCODER.logs_request, batch, _G)


def translate(batch: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
    """The request message for ``batch``: parsed from :func:`encode_request`'s bytes (upb parses in C), else the
    SDK's ``encode_logs`` (a record outside the flat shape, or an error here: counted, never a lost batch).

    Example: ``translate(batch).SerializeToString()``
    """
    raw = encode_request(batch)
    if raw is not None:
        return cast(ExportLogsServiceRequest, ExportLogsServiceRequest.FromString(raw))
    return encode_logs(batch)


def _grpc_class() -> type:
    # Defined on first use, as the span exporter's: importing the gRPC exporter loads grpcio, which an OTLP/HTTP
    # process never needs.
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as _SdkGrpcLogExporter

    class GrpcLogExporter(_SdkGrpcLogExporter):
        """The SDK's OTLP/gRPC log exporter with :func:`translate` as its encoder (same request, a sixth of the CPU).

        Example::

            GrpcLogExporter(endpoint="http://localhost:4317", insecure=True)
        """

        def _translate_data(self, data: Sequence[ReadableLogRecord]) -> ExportLogsServiceRequest:
            return translate(data)

    return GrpcLogExporter


__getattr__ = lazy_classes(__name__, {"GrpcLogExporter": _grpc_class})


class HttpLogExporter(_SdkHttpLogExporter):
    """The SDK's OTLP/HTTP log exporter (same constructor, transport, retries, metrics) with :func:`encode_request`
    as its encoder; a batch it steps aside for takes the SDK's export.

    Example::

        HttpLogExporter(endpoint="http://localhost:4318/v1/logs")
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._direct = can_send_encoded(self)

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        data = None
        if self._direct and not self._shutdown:
            data = encode_request(batch)
        if data is None:
            return super().export(batch)
        return cast(LogRecordExportResult, send_encoded(self, data, len(batch), "logs", LogRecordExportResult, _log))
