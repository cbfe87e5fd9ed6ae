"""OTLP protobuf written directly: the wire format, values, attributes and the request layout spans and logs share.

The SDK's encoders build a protobuf object for every item, attribute and value before serialising them (about
47 µs per span with the 13 attributes of an LLM call, 28 µs per log record): more than everything else the
export thread does. :class:`Encoder` writes the same request bytes itself: the resource and scope once per object,
an attribute's key and value once per distinct pair (they repeat: operation, provider, model, logger name). The
item messages are the signals' own (``_otlp_spans.py``, ``logs/_encode.py``); the request around them, the
``ExportTraceServiceRequest`` / ``ExportLogsServiceRequest`` layout (resource, then scope, then items: the same
field numbers for both), is here, as is the SDK OTLP/HTTP exporter's send after its encode step.

An attribute value the SDK's encoder would skip (an unknown type, an out-of-range integer, also inside a list or
a map) is skipped and logged here too, on the SDK encoder's logger. Whatever else the encoders do not expect (text
that is not UTF-8, a record field of an odd type) raises one of :data:`STEP_ASIDE`: the exporter then uses the
SDK's own encoder for that batch, so a result is never worse than the SDK's. Tests compare both encoders' messages
on every shape.
"""

from __future__ import annotations

import collections
import functools
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

try:  # the SDK exporter's own size check and error (pinned SDK); without them the SDK's export is used
    from opentelemetry.exporter.otlp.proto.http._common import RequestPayloadTooLargeError, _is_request_too_large
except ImportError:  # pragma: no cover - another SDK layout
    RequestPayloadTooLargeError = None  # type: ignore[assignment,misc]
    _is_request_too_large = None  # type: ignore[assignment]

__all__ = ["STEP_ASIDE", "Encoder", "can_send_encoded", "encode_or_none", "lazy_classes", "send_encoded"]

_SMALL = [bytes((i,)) for i in range(128)]
_D = struct.Struct("<d").pack
Q = struct.Struct("<Q").pack  # fixed64 (times)
I32 = struct.Struct("<I").pack  # fixed32 (flags)
_INT64 = (-(1 << 63), 1 << 63)
_MAX_CACHE = 4096
_sdk_log = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")  # where the SDK encoder logs


class Unencodable(Exception):
    """A value the SDK's encoder cannot write either: its attribute is logged and left out, as the SDK does."""


#: Errors with which an encoder steps aside for a batch: the SDK's encoder then decides (and reports) as before.
STEP_ASIDE = (Unencodable, AttributeError, TypeError, ValueError, OverflowError, UnicodeEncodeError, struct.error)


@functools.cache
def _sdk_properties() -> frozenset[Any]:
    """The SDK's own ``attributes``/``events``/``links`` properties, whose storage :func:`plain_attributes` and
    :func:`plain_list` read directly."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link

    return frozenset(vars(cls)[name] for cls, name in (
        (ReadableSpan, "attributes"), (ReadableSpan, "events"), (ReadableSpan, "links"), (Event, "attributes"),
        (Link, "attributes")) if name in vars(cls))


def plain_attributes(item: Any) -> Mapping[str, Any] | None:
    """The attributes of ``item`` (a span, event or link) as the dict the SDK keeps them in, else as ``item`` gives
    them. ``ReadableSpan.attributes`` wraps its ``BoundedAttributes`` in a ``MappingProxyType``, whose every
    iteration and lookup goes through ``BoundedAttributes``' Python methods: a fifth of a span's encoding.
    Only for finished items (the export thread's), whose attributes no longer change, and only for the SDK's own
    classes (a subclass may compute its attributes)."""
    if getattr(type(item), "attributes", None) not in _sdk_properties():
        return cast(Mapping[str, Any] | None, item.attributes)
    a = getattr(item, "_attributes", None)
    if type(a) is dict:
        return a
    d = getattr(a, "_dict", None)
    if type(d) is dict:
        return d
    return cast(Mapping[str, Any] | None, item.attributes)


def plain_list(span: Any, name: str) -> Sequence[Any]:
    """``span.events`` or ``span.links`` (``name``) without the copy the SDK's properties make: the SDK's
    ``BoundedList`` keeps them in a deque, which iterates in C."""
    if getattr(type(span), name, None) not in _sdk_properties():
        return cast(Sequence[Any], getattr(span, name))
    bounded = getattr(span, "_" + name, None)
    dq = getattr(bounded, "_dq", None)
    if type(dq) is collections.deque:
        return dq
    if type(bounded) is tuple or type(bounded) is list:
        return bounded
    return cast(Sequence[Any], getattr(span, name))


def varint(n: int) -> bytes:
    if n < 0x80:
        return _SMALL[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + varint(len(payload)) + payload


def any_value(v: Any) -> bytes:
    """An AnyValue message (the SDK's ``_encode_value``: bool before int, str, bytes, sequences, mappings)."""
    if v is None:
        return b""
    if v is True or v is False:
        return b"\x10\x01" if v else b"\x10\x00"
    if isinstance(v, str):
        return ld(b"\x0a", v.encode("utf-8"))
    if isinstance(v, int):
        if not _INT64[0] <= v < _INT64[1]:
            raise Unencodable("int64 out of range")
        return b"\x18" + varint(v & 0xFFFFFFFFFFFFFFFF)
    if isinstance(v, float):
        return b"\x21" + _D(v)
    if isinstance(v, bytes):
        return ld(b"\x3a", v)
    if isinstance(v, Sequence):
        return ld(b"\x2a", b"".join(ld(b"\x0a", any_value(x)) for x in v))
    if isinstance(v, Mapping):
        return ld(b"\x32", b"".join(ld(b"\x0a", _key_value(str(k), x)) for k, x in v.items()))
    raise Unencodable(type(v).__name__)


def _key_value(key: str, v: Any) -> bytes:
    kb = key.encode("utf-8")
    return (ld(b"\x0a", kb) if kb else b"") + ld(b"\x12", any_value(v))  # proto3 leaves an empty key out


class Encoder:
    """Batches to request bytes, with caches of what repeats (resources, scopes, attribute pairs). A signal
    subclasses it with its item message and calls :meth:`request`."""

    def __init__(self) -> None:
        self._pairs: dict[tuple[bytes, str, type, Any], bytes] = {}  # (field tag, key, type, value)
        self._keys: dict[str, bytes] = {}  # key -> its KeyValue.key field, for values that are not cached
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
            # Cached by value: text, booleans, integers, non-zero floats (0.0 == -0.0, and NaN never hits) and
            # tuples of text (finish reasons). The type is in the key: 1 == 1.0 == True.
            cacheable = t is str or t is bool or t is int or v is None or (t is float and v != 0 and v == v) or (
                t is tuple and all(type(x) is str for x in v))
            key = (tag, k, t, v)
            if cacheable:
                kv = pairs.get(key)
                if kv is not None:
                    out.append(kv)
                    continue
            try:
                kv = self._key_value(tag, k, v, t)
            except Unencodable as exc:  # skipped and logged, as the SDK's encoder does
                _sdk_log.error("Failed to encode key %s: %s", k, exc)
                continue
            if cacheable and len(kv) <= 320:  # a value of up to ~256 characters: no blob lives for the process
                if len(pairs) >= _MAX_CACHE:
                    pairs.clear()
                pairs[key] = kv
            out.append(kv)
        return b"".join(out)

    def _key_value(self, tag: bytes, k: str, v: Any, t: type) -> bytes:
        """One attribute as field ``tag`` (a KeyValue): :func:`_key_value` with the key's bytes cached, and text
        (most values) written without :func:`any_value`'s type tests."""
        kp = self._keys.get(k)
        if kp is None:
            kb = k.encode("utf-8")
            kp = b"\x0a" + varint(len(kb)) + kb if kb else b""  # proto3 leaves an empty key out
            if len(self._keys) >= _MAX_CACHE:
                self._keys.clear()
            self._keys[k] = kp
        if t is str:
            vb: bytes = v.encode("utf-8")
            av = b"\x0a" + varint(len(vb)) + vb
        else:
            av = any_value(v)
        body = kp + b"\x12" + varint(len(av)) + av
        return tag + varint(len(body)) + body

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
            body = (ld(b"\x0a", scope.name.encode()) if scope.name else b"") + \
                (ld(b"\x12", scope.version.encode()) if scope.version else b"") + \
                self.attributes(b"\x1a", scope.attributes)
            hit = self._scopes[id(scope)] = (scope, body)
        return hit[1]

    def request(self, items: Sequence[Any], item: Callable[[Any], bytes]) -> bytes:
        """Request bytes: ``item(x)`` messages grouped by resource, then scope, in first-seen order and by
        equality, as the SDK's encoders group them (each distinct object is looked up once). Resource/Scope
        Spans and Resource/Scope Logs share their field numbers: resource or scope 1, children 2, schema_url 3."""
        groups: dict[Any, dict[Any, list[bytes]]] = {}
        by_id: dict[tuple[int, int], list[bytes]] = {}
        for x in items:
            res, scope = x.resource, x.instrumentation_scope or None
            encoded = by_id.get((id(res), id(scope)))
            if encoded is None:
                encoded = groups.setdefault(res, {}).setdefault(scope, [])
                by_id[(id(res), id(scope))] = encoded  # the batch keeps res and scope alive: ids stay unique
            encoded.append(ld(b"\x12", item(x)))
        out: list[bytes] = []
        for res, scopes in groups.items():
            body = [ld(b"\x0a", self._resource(res))]
            for scope, encoded in scopes.items():
                schema = scope.schema_url if scope is not None else None
                body.append(ld(b"\x12", ld(b"\x0a", self._scope(scope)) + b"".join(encoded)
                               + (ld(b"\x1a", schema.encode()) if schema else b"")))  # fmt: skip
            if res.schema_url:
                body.append(ld(b"\x1a", res.schema_url.encode()))
            out.append(ld(b"\x0a", b"".join(body)))
        return b"".join(out)


def encode_or_none(encode: Callable[[Any], bytes], batch: Any, guard: Any) -> bytes | None:
    """``encode(batch)``, or None when the batch holds what the SDK's encoder must decide about (:data:`STEP_ASIDE`)
    or the encoder failed (``guard`` counts it; tests see it raised)."""
    with guard:
        try:
            return encode(batch)
        except STEP_ASIDE:
            return None
    return None


def can_send_encoded(exporter: Any) -> bool:
    """Whether ``exporter`` (an SDK OTLP/HTTP exporter) has the internals :func:`send_encoded` uses; without them
    every batch takes the SDK's own export."""
    return _is_request_too_large is not None and all(
        hasattr(exporter, a) for a in ("_client", "_metrics", "_max_request_size", "_shutdown"))


def send_encoded(exporter: Any, data: bytes, n: int, what: str, results: Any, log: logging.Logger) -> Any:
    """The SDK OTLP/HTTP exporter's export after its encode step, for request bytes already encoded: size limit,
    transport with retries, its exporter metrics. ``what`` names the batch in the SDK's messages (``span``,
    ``logs``), ``results`` is the signal's result enum, ``log`` the SDK exporter's logger."""
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


def lazy_classes(module: str, factories: Mapping[str, Callable[[], type]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that builds each class of ``factories`` on first use: the gRPC exporters subclass
    the SDK's, whose import loads grpcio, which an OTLP/HTTP process never needs.

    Example: ``__getattr__ = lazy_classes(__name__, {"GrpcSpanExporter": _grpc_class})``
    """
    made: dict[str, type] = {}

    def getattr_(name: str) -> Any:
        factory = factories.get(name)
        if factory is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if name not in made:
            made[name] = factory()
        return made[name]

    return getattr_
