"""Export: OTLP exporters behind wrappers that count what is lost and never raise.

The chain for each signal is ``Batch processor (bounded queue, background thread)`` →
``redaction wrapper`` (on the export thread) → ``Counting*Exporter`` → OTLP exporter; the chain is assembled
in ``_providers``. One counting exporter (``_Counting``) and one drop-counting processor (``_DropCounting``)
serve every signal.
"""

from __future__ import annotations

import collections
import importlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentpress_otel import _sanitize, _selftel
from agentpress_otel._config import Config

# signal -> (gRPC exporter class, HTTP exporter class, OTLP/HTTP path appended to a base endpoint)
_EXPORTERS = {
    "traces": (
        # The SDK's exporters with our direct encoder (_otlp_spans: the same request, 2x cheaper per span).
        "agentpress_otel._otlp_spans:GrpcSpanExporter",
        "agentpress_otel._otlp_spans:OTLPSpanExporter",
        "/v1/traces",
    ),
    "metrics": (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter",
        "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter",
        "/v1/metrics",
    ),
    "logs": (
        # the SDK's exporters with our log encoder (same request bytes; logs/_encode.py)
        "agentpress_otel.logs._encode:GrpcLogExporter",
        "agentpress_otel.logs._encode:HttpLogExporter",
        "/v1/logs",
    ),
}


def _make_exporter(cfg: Config, signal: str) -> Any:
    """The OTLP exporter for ``signal``; imported lazily so only the chosen transport is loaded."""
    grpc_cls, http_cls, path = _EXPORTERS[signal]
    module, _, name = (grpc_cls if cfg.protocol == "grpc" else http_cls).partition(":")
    cls = getattr(importlib.import_module(module), name)
    common = {"headers": cfg.headers or None, "timeout": cfg.export_timeout_s}
    if cfg.protocol == "grpc":
        return cls(endpoint=cfg.endpoint, insecure=not cfg.endpoint.startswith("https://"), **common)
    url = cfg.endpoint.rstrip("/") + path
    exporter = cls(endpoint=url, **common)
    if pin_environment(exporter, url):
        direct_transport(exporter)
    return exporter


def pin_environment(exporter: Any, url: str) -> bool:
    """Resolve what ``requests`` reads from the environment for ``url`` once, instead of on every export.

    With ``trust_env`` on (its default), a ``requests.Session`` re-reads the proxy variables (iterating the
    whole environment twice), ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` and ``~/.netrc`` on each request: about a
    third of an OTLP/HTTP export's fixed instructions (callgrind, one export before and after). The result of that
    merge is put on the session here, as ``requests`` would compute it for this URL (environment proxies over the
    session's, the environment's CA bundle over the exporter's, netrc credentials when no auth is set), and the
    re-reading stops. As with every ``OTEL_*`` variable, changes to the environment after ``instrument()`` are
    not seen. A session of another type (a credential provider's ``requests.Session`` subclass) is left as it is.
    Returns whether it pinned.

    Example::

        pin_environment(exporter, "http://collector:4318/v1/traces")
    """
    import requests
    from requests.utils import get_environ_proxies, get_netrc_auth

    transport = getattr(getattr(exporter, "_client", None), "_transport", None)
    session = getattr(transport, "_session", None)
    if type(session) is not requests.Session or not session.trust_env:
        return False
    with _selftel.guard("export.environment"):
        proxies = get_environ_proxies(url, no_proxy=None)  # as requests asks: the request-level no_proxy, none
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        auth = None if session.auth is not None else get_netrc_auth(url)
        session.proxies.update(proxies)
        if bundle:
            session.verify = bundle
        if auth is not None:
            session.auth = auth
        session.trust_env = False
        return True
    return False


#: Env variables that hand the SDK's OTLP/HTTP exporters a credential provider's session (its own auth/adapters).
_CREDENTIAL_PROVIDER_ENV = "_CREDENTIAL_PROVIDER"


def direct_transport(exporter: Any) -> bool:
    """Send a pinned exporter's requests with urllib3 directly (the SDK's own ``Urllib3HTTPTransport``, one pooled
    keep-alive connection) when ``requests`` would add nothing to them: no proxy for the URL, no credentials, no
    credential provider's session. ``requests`` re-prepares every request (URL parsing, header merging, cookie jar,
    hooks, adapter lookup): about 1.1M of an export's 2.5M fixed instructions (callgrind, one export each way),
    paid by every OTLP/HTTP export. Certificate checks stay as ``requests`` makes them: its default CA bundle when
    verification is on and no bundle is named, the named bundle or the ``OTEL_*`` certificate otherwise, the
    client certificate and key as given; a CA directory or a file that does not exist keeps ``requests``. Unlike a
    ``requests`` session, urllib3 keeps no cookies between exports. Run after :func:`pin_environment` (the session
    holds the merged environment then). Returns whether it switched.

    Example::

        if pin_environment(exporter, url):
            direct_transport(exporter)
    """
    import requests

    client: Any = getattr(exporter, "_client", None)
    transport: Any = getattr(client, "_transport", None)
    session = getattr(transport, "_session", None)
    if type(session) is not requests.Session or session.trust_env:  # not ours, or not pinned
        return False
    if any(key.endswith(_CREDENTIAL_PROVIDER_ENV) and value for key, value in os.environ.items()
           if key.startswith("OTEL_PYTHON_EXPORTER_OTLP_HTTP")):
        return False
    if session.proxies or session.auth is not None or session.cookies or session.params or session.hooks.get(
            "response") or session.headers != requests.utils.default_headers():
        return False
    with _selftel.guard("export.transport"):
        from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
        from requests.utils import DEFAULT_CA_BUNDLE_PATH

        # requests' own default bundle (certifi's, or the system's where a distribution patches requests)
        verify: bool | str = DEFAULT_CA_BUNDLE_PATH if session.verify is True else session.verify
        cert = session.cert
        files = ([verify] if isinstance(verify, str) else []) + (
            list(cert) if isinstance(cert, tuple) else [cert] if cert else [])
        if not all(isinstance(f, str) and os.path.isfile(f) for f in files):
            # A CA directory (urllib3's transport takes files only) or a missing file: requests keeps its own
            # handling (a missing file fails the export at once; through urllib3 it would read as a connection
            # error and be retried until the export timeout).
            return False
        direct = Urllib3HTTPTransport(verify=verify, cert=cert)
        client._transport = direct
        transport.close()
        return True
    return False


def make_span_exporter(cfg: Config, kind: str = "otlp") -> SpanExporter:
    """``kind`` is one of ``Config.traces_exporter`` (``otlp`` or ``console``)."""
    if kind == "console":
        from agentpress_otel._console import ConsoleSpanExporter

        return ConsoleSpanExporter()
    return cast(SpanExporter, _make_exporter(cfg, "traces"))


def make_metric_exporter(cfg: Config, kind: str = "otlp") -> MetricExporter:
    if kind == "console":
        from agentpress_otel._console import ConsoleMetricExporter

        return ConsoleMetricExporter()
    return cast(MetricExporter, _make_exporter(cfg, "metrics"))


def make_log_exporter(cfg: Config, kind: str = "otlp") -> LogRecordExporter:
    if kind == "console":
        from agentpress_otel._console import ConsoleLogExporter

        return ConsoleLogExporter()
    return cast(LogRecordExporter, _make_exporter(cfg, "logs"))


#: Bytes of log records (bodies and string attributes) in one export request.
MAX_REQUEST_BYTES = 2 * 1024 * 1024
#: What one queued log record costs besides its body and string attributes (the record object, ids, span context).
RECORD_OVERHEAD_BYTES = 512
#: Byte budget of each log queue (the log pipeline's and the batch processor's); see docs/logging.md.
MAX_QUEUE_BYTES = 8 * 1024 * 1024


def log_record_bytes(item: Any) -> int:
    """About how many bytes a queued log record holds: its body and string attributes, plus overhead."""
    rec = getattr(item, "log_record", item)
    n = RECORD_OVERHEAD_BYTES
    body = getattr(rec, "body", None)
    if isinstance(body, (str, bytes)):
        n += len(body)
    attrs = getattr(rec, "attributes", None)
    if attrs:
        for v in attrs.values():
            if isinstance(v, (str, bytes)):
                n += len(v)
    return n


def _metric_points(items: Sequence[MetricsData]) -> int:
    return sum(len(m.data.data_points) for md in items for rm in md.resource_metrics for sm in rm.scope_metrics
               for m in sm.metrics)


E = TypeVar("E")


class ExporterWrapper(Generic[E]):
    """An exporter in front of ``inner`` (counting, redaction): flush and shutdown are handed on, never raising.

    Example::

        class Wrapper(ExporterWrapper[SpanExporter], SpanExporter): ...
    """

    inner: E
    _guard: _selftel.guard

    def shutdown(self, *args: Any, **kwargs: Any) -> None:
        with self._guard:
            cast(Any, self.inner).shutdown(*args, **kwargs)

    def force_flush(self, timeout_millis: float = 30_000) -> bool:
        with self._guard:
            return bool(cast(Any, self.inner).force_flush(timeout_millis))
        return False


class _Counting(ExporterWrapper[E]):
    """The one counting exporter: counts items lost to failed exports and never raises; rebuilds the inner
    exporter after fork (a gRPC channel does not survive it).

    Subclasses name their ``signal`` and result values and define ``export`` (each SDK base spells it its own
    way) as a call of :meth:`_export_all`.
    """

    signal = ""
    success: Any = None
    failure: Any = None

    #: Item size estimate, for requests bounded in bytes (``None``: one request per batch).
    size: Callable[[Any], int] | None = None

    def __init__(self, factory: Callable[[], E]) -> None:
        self._factory = factory
        self.inner = factory()
        self._pid = os.getpid()
        self._guard = _selftel.guard(f"export.{self.signal}")

    def _send(self, chunk: Sequence[Any], **kwargs: Any) -> Any:
        return cast(Any, self.inner).export(chunk, **kwargs)

    def _count(self, chunk: Sequence[Any]) -> int:
        """How many telemetry items ``chunk`` holds (what a drop counts)."""
        return len(chunk)

    def _export_all(self, batch: Sequence[Any], **kwargs: Any) -> Any:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self.inner = self._factory()
        chunks = self._chunks(batch)
        for i, chunk in enumerate(chunks):
            if self._export_chunk(chunk, **kwargs) is not self.success:
                # The endpoint just failed for a whole export timeout: the other chunks would each wait as long
                # (N x export_timeout_s, past any shutdown deadline). Count them as lost instead.
                rest = sum(self._count(c) for c in chunks[i + 1 :])
                if rest:
                    _selftel.record_dropped(self.signal, "export_failed", rest)
                return self.failure
        return self.success

    def _chunks(self, batch: Sequence[Any]) -> list[Sequence[Any]]:
        """Requests of at most ``MAX_REQUEST_BYTES`` each: under the Collector's 4 MiB gRPC message limit,
        and one encoded request of big records in memory at a time."""
        size = self.size
        if size is None or len(batch) < 2:
            return [batch]
        out: list[Sequence[Any]] = []
        start = total = 0
        for i, item in enumerate(batch):
            n = size(item)
            if i > start and total + n > MAX_REQUEST_BYTES:
                out.append(batch[start:i])
                start, total = i, 0
            total += n
        out.append(batch[start:])
        return out

    def _export_chunk(self, chunk: Sequence[Any], **kwargs: Any) -> Any:
        result = self.failure
        with self._guard:
            result = self._send(chunk, **kwargs)
        if result is not self.success:
            # The OTLP exporters report an item their encoder rejects (a lone surrogate in any string, an
            # int beyond 64 bits; for metrics a label) as a failure of the whole request. Only then (so the
            # healthy path costs nothing) find such items and send the rest, each poison item as a wire-safe copy.
            fixed = _sanitize.encodable_items(self.signal, chunk)
            if fixed is not None:
                good, lost = fixed
                if lost:
                    _selftel.record_dropped(self.signal, "encode_error", self._count(chunk) - self._count(good))
                return self._export_chunk(good, **kwargs) if good else self.failure
            _selftel.record_dropped(self.signal, "export_failed", self._count(chunk))
        return result

class CountingSpanExporter(_Counting[SpanExporter], SpanExporter):
    """Counting exporter of spans, e.g. ``CountingSpanExporter(lambda: OTLPSpanExporter())``."""

    signal, success, failure = "spans", SpanExportResult.SUCCESS, SpanExportResult.FAILURE

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return cast(SpanExportResult, self._export_all(spans))


class CountingLogExporter(_Counting[LogRecordExporter], LogRecordExporter):
    """Counting exporter of log records, in requests of at most ``MAX_REQUEST_BYTES``."""

    signal, success, failure = "logs", LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE
    size = staticmethod(log_record_bytes)

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return cast(LogRecordExportResult, self._export_all(batch))


class CountingMetricExporter(_Counting[MetricExporter], MetricExporter):
    """Counting exporter of metrics: a failed export counts its data points.

    Example::

        PeriodicExportingMetricReader(CountingMetricExporter(lambda: OTLPMetricExporter()))
    """

    signal, success, failure = "metrics", MetricExportResult.SUCCESS, MetricExportResult.FAILURE

    def __init__(self, factory: Callable[[], MetricExporter]) -> None:
        _Counting.__init__(self, factory)
        # The reader asks the exporter for temporality and aggregation: answer with the inner one's.
        MetricExporter.__init__(
            self,
            preferred_temporality=self.inner._preferred_temporality,
            preferred_aggregation=self.inner._preferred_aggregation,
        )

    def _send(self, chunk: Sequence[Any], **kwargs: Any) -> Any:
        return self.inner.export(chunk[0], **kwargs)  # a chunk is always one MetricsData

    def _count(self, chunk: Sequence[Any]) -> int:
        return _metric_points(chunk)

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return cast(MetricExportResult, self._export_all([metrics_data], timeout_millis=timeout_millis, **kwargs))


def _batch_size(max_queue_size: int) -> int:
    # Wake the exporter well before the queue is full: a batch as large as the queue drops spans even when
    # the receiver is healthy.
    return min(512, max(1, max_queue_size // 4))


class _CountingDeque(collections.deque[Any]):
    """The SDK batch queue evicts the oldest item silently when full; this one counts each eviction.

    With ``max_bytes`` (logs) it also evicts the oldest items while the queue holds more than that many
    bytes (``size`` of each item), so a flood of big records cannot grow memory past the budget.
    ``appendleft`` (producer) and ``pop`` (export worker) share a lock so the count is exact.
    """

    def __init__(self, maxlen: int, signal: str, *, max_bytes: int | None = None,
                 size: Callable[[Any], int] | None = None) -> None:
        super().__init__((), maxlen)
        self._signal = signal
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._max_bytes = max_bytes
        self._size = size if max_bytes is not None else None
        self._bytes = 0

    def _guard(self) -> threading.Lock:
        if self._pid != os.getpid():  # a lock held by another thread at fork() would never be released
            self._pid = os.getpid()
            self._lock = threading.Lock()
        return self._lock

    def appendleft(self, item: Any) -> None:
        with self._guard():
            size = self._size
            if size is None:
                if len(self) == self.maxlen:
                    _selftel.record_dropped(self._signal, "queue_full")
                super().appendleft(item)
                return
            cost = size(item)
            evicted = 0
            while self and (len(self) == self.maxlen or self._bytes + cost > self._max_bytes):  # type: ignore[operator]
                self._bytes -= size(super().pop())
                evicted += 1
            if evicted:
                _selftel.record_dropped(self._signal, "queue_full", evicted)
            self._bytes += cost
            super().appendleft(item)

    def pop(self, *args: Any) -> Any:
        with self._guard():
            item = super().pop(*args)
            if self._size is not None:
                self._bytes -= self._size(item)
            return item

    def clear(self) -> None:
        with self._guard():
            super().clear()
            self._bytes = 0

    def abandon(self) -> int:
        """Empty the queue, counting every item as dropped (``reason="shutdown"``)."""
        with self._guard():
            n = len(self)
            super().clear()
            self._bytes = 0
        if n:
            _selftel.record_dropped(self._signal, "shutdown", n)
        return n


_G_ABANDON = _selftel.guard("export.abandon")


def abandon_queue(proc: Any) -> int:
    """Give up on what ``proc`` (one of our batch processors) still holds, counting it as dropped.

    Used when shutdown hits its deadline: the items would be lost at process exit anyway, uncounted.
    Also stops the exporter's retry backoff, so a batch in flight fails now and is counted as
    ``export_failed`` instead of vanishing with the process.
    """
    bp = getattr(proc, "_batch_processor", None)
    queue = getattr(bp, "_queue", None)
    n = queue.abandon() if isinstance(queue, _CountingDeque) else 0
    exporter = getattr(bp, "_exporter", None)
    if exporter is not None:
        with _G_ABANDON:
            exporter.shutdown()
    return n


def _install_counting_queue(proc: Any, max_queue_size: int, signal: str, **budget: Any) -> None:
    try:
        proc._batch_processor._queue = _CountingDeque(max_queue_size, signal, **budget)
    except AttributeError as exc:  # SDK internals moved: keep working, lose only the drop count
        _selftel.record_error("export.queue", exc)


class _DropCounting:
    """The one drop-counting batch processor: the SDK's batch processor with a queue that counts what a full
    queue evicts (the SDK only logs it). Where ``_size`` is set (logs) the queue is bounded in bytes too.
    """

    _signal = ""
    _size: Callable[[Any], int] | None = None

    def __init__(
        self,
        exporter: Any,
        *,
        max_queue_size: int,
        schedule_delay_millis: float = 1000,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        super().__init__(  # type: ignore[call-arg]
            exporter,
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_millis,
            max_export_batch_size=_batch_size(max_queue_size),
        )
        size = self._size
        budget: dict[str, Any] = {} if size is None else {"max_bytes": max_queue_bytes, "size": size}
        _install_counting_queue(self, max_queue_size, self._signal, **budget)


class DropCountingSpanProcessor(_DropCounting, BatchSpanProcessor):
    """BatchSpanProcessor that counts spans evicted by a full queue (``max_queue_bytes`` does not apply).

    Example::

        DropCountingSpanProcessor(CountingSpanExporter(make_exporter), max_queue_size=2048)
    """

    _signal = "spans"


class DropCountingLogProcessor(_DropCounting, BatchLogRecordProcessor):
    """BatchLogRecordProcessor that counts log records evicted by a full queue, bounded by ``max_queue_bytes``
    too: 2,048 records of 16 KiB messages would otherwise hold 32 MiB.

    Example::

        DropCountingLogProcessor(CountingLogExporter(make_exporter), max_queue_size=2048)
    """

    _signal = "logs"
    _size = staticmethod(log_record_bytes)


class _DropTruncationWarnings(logging.Filter):
    """The SDK logs one warning per truncated attribute; count them instead of flooding the app's logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if "truncating" in str(record.msg):
            _selftel.record_dropped("attributes", "truncated")
            return False
        return True


def quiet_sdk_loggers() -> None:
    lg = logging.getLogger("opentelemetry.attributes")
    if not any(isinstance(f, _DropTruncationWarnings) for f in lg.filters):
        lg.addFilter(_DropTruncationWarnings())


__all__ = [
    "CountingLogExporter",
    "CountingMetricExporter",
    "CountingSpanExporter",
    "DropCountingLogProcessor",
    "DropCountingSpanProcessor",
    "LogRecordProcessor",
    "abandon_queue",
    "make_log_exporter",
    "make_metric_exporter",
    "make_span_exporter",
    "quiet_sdk_loggers",
]
