"""The SDK providers ``instrument()`` sets up: resource, sampler, and the export chain of each signal.

One export chain builder (:func:`export_processor`) serves traces and logs alike::

    DropCounting*Processor (bounded queue, counts evictions, background thread)
      -> Redacting*Exporter (on the export thread, never the caller's)
        -> Counting*Exporter (counts failed exports, rebuilt after fork)
          -> the OTLP or console exporter

Metrics are pulled by a periodic reader instead of pushed through a batch queue, so their chain is the reader,
then the counting exporter, then redaction, then the exporter (:func:`metric_reader`).
"""

from __future__ import annotations

import datetime
import functools
import os
import platform
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased

from agentpress_otel import _export, _selftel, redaction
from agentpress_otel._config import Config, default_instance_id
from agentpress_otel._context import ContextSpanProcessor
from agentpress_otel._version import __version__

__all__ = [
    "build_resource",
    "creation_time",
    "export_processor",
    "host_arch",
    "metric_reader",
    "opt_in_stable_conventions",
    "sampler",
    "setup_logs",
    "setup_metrics",
    "setup_traces",
]

#: platform.machine() spellings -> the registry's host.arch values (anything else is passed on lower-cased).
_HOST_ARCH = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64",
              "armv7l": "arm32", "armv6l": "arm32", "arm": "arm32", "i386": "x86", "i486": "x86", "i586": "x86",
              "i686": "x86", "x86": "x86", "ppc64": "ppc64", "ppc64le": "ppc64", "ppc": "ppc32", "s390x": "s390x",
              "ia64": "ia64"}  # fmt: skip


def host_arch(machine: str | None = None) -> str:
    """``host.arch`` for this machine (or ``machine``), in the registry's values (``amd64``, ``arm64``...).

    Example::

        host_arch("x86_64")  # 'amd64'
    """
    m = (platform.machine() if machine is None else machine).strip().lower()
    return _HOST_ARCH.get(m, m)


_G_CREATION = _selftel.guard("resource.creation_time")
_G_SEMCONV = _selftel.guard("semconv.opt_in")


def creation_time() -> dict[str, str]:
    """``process.creation.time`` (ISO 8601) of this process, from psutil; empty if it cannot be read.

    Example::

        Resource({"process.pid": os.getpid(), **creation_time()})
    """
    try:
        import psutil
    except ImportError:  # psutil is optional: the resource just lacks this attribute
        return {}
    with _G_CREATION:  # /proc unreadable in a locked-down container, a bogus start time: no attribute
        t = psutil.Process().create_time()
        return {"process.creation.time": datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat()}
    return {}


class HashedResource(Resource):
    """A Resource that computes its hash once.

    The SDK's OTLP encoders group every span and log record of a batch by resource, and ``Resource.__hash__``
    JSON-encodes all attributes each time: about 8 µs per span or record with our 15 attributes, for a value
    that cannot change (resource attributes are immutable). ``merge`` (what the providers run after a fork or a
    rename) keeps the class.

    Example::

        HashedResource({"service.name": "agentpress-api"})
    """

    def __init__(self, attributes: Any, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash: int | None = None

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            h = self._hash = Resource.__hash__(self)
        return h

    def merge(self, other: Resource) -> Resource:
        merged = Resource.merge(self, other)
        return HashedResource(merged.attributes, merged.schema_url)


def build_resource(cfg: Config) -> Resource:
    """The resource every signal carries: the configured identity plus host, OS, process and distro attributes.

    Example::

        build_resource(load_config({"service_name": "agentpress-api"}))
    """
    attrs: dict[str, Any] = dict(cfg.resource_attributes)
    attrs.update(
        {
            "service.name": cfg.service_name,
            "service.version": cfg.service_version,
            "deployment.environment.name": cfg.environment,
            "service.instance.id": cfg.service_instance_id or default_instance_id(),
            "host.name": socket.gethostname(),
            "host.arch": host_arch(),
            "os.type": platform.system().lower(),
            "process.pid": os.getpid(),
            **creation_time(),
            "process.runtime.name": platform.python_implementation().lower(),
            "process.runtime.version": platform.python_version(),
            "telemetry.distro.name": "agentpress-otel",
            "telemetry.distro.version": __version__,
        }
    )
    created = Resource.create(attrs)  # the SDK's detectors and OTEL_RESOURCE_ATTRIBUTES merged in
    return HashedResource(created.attributes, created.schema_url)


def sampler(cfg: Config) -> Sampler:
    """Our ratio (parent-based), or the standard OTEL_TRACES_SAMPLER: only ``parentbased_*`` follow the parent.

    Example::

        TracerProvider(sampler=sampler(cfg))
    """
    if cfg.sample_ratio >= 1.0:
        root: Sampler = ALWAYS_ON
    elif cfg.sample_ratio <= 0.0:
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(cfg.sample_ratio)
    return ParentBased(root) if cfg.parent_based_sampling else root


#: signal -> the redaction wrapper of its exporters
_REDACTING: dict[str, Callable[[Any], Any]] = {
    "spans": redaction.RedactingSpanExporter,
    "logs": redaction.RedactingLogExporter,
    "metrics": redaction.RedactingMetricExporter,
}


def _redacting(signal: str, exporter: Any, cfg: Config) -> Any:
    """``exporter`` behind the redaction stage, unless redaction is off."""
    return _REDACTING[signal](exporter) if cfg.redact else exporter


# signal -> (counting exporter, exporter factory, batch processor, Config field of its schedule delay in seconds)
_CHAINS: dict[str, tuple[Callable[[Any], Any], Callable[[Config, str], Any], Callable[..., Any], str]] = {
    "spans": (_export.CountingSpanExporter, _export.make_span_exporter, _export.DropCountingSpanProcessor,
              "schedule_delay_s"),
    "logs": (_export.CountingLogExporter, _export.make_log_exporter, _export.DropCountingLogProcessor,
             "log_schedule_delay_s"),
}  # fmt: skip


def export_processor(cfg: Config, signal: str, kind: str) -> Any:
    """The batch processor exporting ``signal`` (``spans`` or ``logs``) to ``kind`` (``otlp`` or ``console``).

    One processor per exporter kind (``OTEL_TRACES_EXPORTER=otlp,console``): a slow Collector never holds the
    console back, and each goes through the redaction stage.

    Example::

        tracer_provider.add_span_processor(export_processor(cfg, "spans", "otlp"))
    """
    counting, make, processor, delay_field = _CHAINS[signal]
    exporter = counting(functools.partial(make, cfg, kind))
    return processor(
        _redacting(signal, exporter, cfg),
        max_queue_size=cfg.max_queue_size,
        schedule_delay_millis=getattr(cfg, delay_field) * 1000,
    )


def metric_reader(cfg: Config, kind: str) -> MetricReader:
    """The periodic reader exporting metrics to ``kind``; the exporter is rebuilt (redaction included) after fork.

    Example::

        MeterProvider(metric_readers=[metric_reader(cfg, "otlp")])
    """

    def make() -> Any:
        return _redacting("metrics", _export.make_metric_exporter(cfg, kind), cfg)

    return PeriodicExportingMetricReader(
        _export.CountingMetricExporter(make),
        export_interval_millis=cfg.metric_interval_s * 1000,
        export_timeout_millis=cfg.export_timeout_s * 1000,
    )


def _add_exporters(cfg: Config, signal: str, kinds: Sequence[str], provider: Any, ours: list[Any]) -> None:
    add = provider.add_span_processor if signal == "spans" else provider.add_log_record_processor
    for kind in kinds:
        proc = export_processor(cfg, signal, kind)
        add(proc)
        ours.append((proc, provider))


def setup_traces(
    cfg: Config, resource: Resource, export_otlp: bool, extra: Sequence[SpanProcessor], ours: list[Any]
) -> tuple[trace_api.TracerProvider, bool]:
    """The tracer provider (ours, or the app's SDK one with our processors added) and whether we created it.

    Our export processors are appended to ``ours`` as ``(processor, provider)``.

    Example::

        tp, owned = setup_traces(cfg, build_resource(cfg), True, (), ours)
    """
    existing = trace_api.get_tracer_provider()
    owned = False
    if not cfg.traces and not isinstance(existing, TracerProvider):
        # Traces off: no SDK at all (the API's no-op path still propagates incoming context).
        return existing, False
    if isinstance(existing, TracerProvider):
        tp = existing  # the app's own SDK provider: add our processors, keep theirs
    elif isinstance(existing, trace_api.ProxyTracerProvider):
        tp = TracerProvider(
            resource=resource,
            shutdown_on_exit=False,  # our atexit hook shuts down with a deadline; the SDK's can block 30 s
            sampler=sampler(cfg),
            span_limits=SpanLimits(max_attribute_length=cfg.attribute_max_chars),
        )
        trace_api.set_tracer_provider(tp)
        owned = True
    else:
        warnings.warn(
            f"a non-SDK TracerProvider ({type(existing).__name__}) is already set; agentpress-otel exports no traces",
            RuntimeWarning,
            stacklevel=3,
        )
        return existing, False
    tp.add_span_processor(ContextSpanProcessor())
    if cfg.traces:
        for p in extra:
            tp.add_span_processor(p)
        _add_exporters(cfg, "spans", cfg.traces_exporter if export_otlp else (), tp, ours)
    return tp, owned


def setup_metrics(
    cfg: Config, resource: Resource, export_otlp: bool, extra: Sequence[MetricReader]
) -> tuple[metrics_api.MeterProvider, bool]:
    """The meter provider (ours, or the app's SDK one as it is) and whether we created it.

    Example::

        mp, owned = setup_metrics(cfg, build_resource(cfg), True, ())
    """
    existing = metrics_api.get_meter_provider()
    if isinstance(existing, MeterProvider):
        # An SDK MeterProvider cannot take new readers after creation: use the app's as it is.
        return existing, False
    if not cfg.metrics:
        return metrics_api.NoOpMeterProvider(), False
    readers: list[MetricReader] = [*extra, *(metric_reader(cfg, k) for k in (cfg.metrics_exporter if export_otlp
                                                                             else ()))]
    mp = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    metrics_api.set_meter_provider(mp)
    return mp, True


def setup_logs(
    cfg: Config, resource: Resource, export_otlp: bool, extra: Sequence[LogRecordProcessor], ours: list[Any]
) -> tuple[LoggerProvider | None, bool]:
    """The logger provider (ours, or the app's SDK one with our processors added) and whether we created it.

    Example::

        lp, owned = setup_logs(cfg, build_resource(cfg), True, (), ours)
    """
    if not cfg.logs:
        return None, False
    existing = get_logger_provider()
    if isinstance(existing, LoggerProvider):
        lp, owned = existing, False
    else:
        lp, owned = LoggerProvider(resource=resource, shutdown_on_exit=False), True
        set_logger_provider(lp)
    for p in extra:
        lp.add_log_record_processor(p)
    _add_exporters(cfg, "logs", cfg.logs_exporter if export_otlp else (), lp, ours)
    return lp, owned


#: Domains whose stable semantic conventions the stock instrumentations we enable (httpx, redis) must emit.
STABLE_DOMAINS = ("http", "database")


def opt_in_stable_conventions() -> None:
    """Add ``http`` and ``database`` to ``OTEL_SEMCONV_STABILITY_OPT_IN`` unless it already names a mode for
    that domain (``http/dup``...); other values (``gen_ai_latest_experimental``) are kept.

    Upstream instrumentations read the variable once per process, at the first one instrumented, so this
    runs before any of them: otherwise a variable holding only another domain's value would leave httpx on
    the deprecated names (``http.client.duration``).
    """
    raw = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    added = [d for d in STABLE_DOMAINS if not any(p == d or p.startswith(d + "/") for p in parts)]
    if added:
        os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = ",".join([*parts, *added])
    with _G_SEMCONV:
        # An instrumentation the app enabled before instrument() (FastAPIInstrumentor...) may already have
        # frozen the process-wide modes on the defaults. Those keep what they read; the ones we instrument
        # next must see the stable modes. Private upstream API: if it moved, nothing changes (counted).
        from opentelemetry.instrumentation._semconv import (
            _OpenTelemetrySemanticConventionStability as Stability,
        )
        from opentelemetry.instrumentation._semconv import _OpenTelemetryStabilitySignalType as Signal
        from opentelemetry.instrumentation._semconv import _StabilityMode as Mode

        modes = Stability._OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING
        if Stability._initialized and Mode.DEFAULT in (modes.get(Signal.HTTP), modes.get(Signal.DATABASE)):
            with Stability._lock:
                Stability._initialized = False
            Stability._initialize()  # type: ignore[no-untyped-call]
