"""Providers, processors, resource, integrations, fork and shutdown handling: the ``Telemetry`` handle."""

from __future__ import annotations

import atexit
import dataclasses
import functools
import importlib
import importlib.util
import os
import platform
import socket
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
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

from agentpress_otel import _export, _selftel, _stop
from agentpress_otel._config import Config, default_instance_id, load_config
from agentpress_otel.integrations import _registry

__all__ = ["Telemetry", "current", "instrument"]

_lock = threading.RLock()
_current: Telemetry | None = None
# Set once a handle that created the global providers has shut them down: the SDK sets them once per process.
_providers_shut_down = False


def _run_with_deadline(fn: Callable[[], object], timeout_s: float, name: str) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s``.

    The SDK's flush and shutdown ignore their timeouts (they can block 30 s or more against a dead
    endpoint); a daemon thread we stop waiting for cannot hold the caller or the process exit.
    """
    done = threading.Event()
    ok: list[bool] = []

    def run() -> None:
        try:
            res = fn()
            ok.append(res is not False)
        except Exception as exc:
            _selftel.record_error(name, exc)
            ok.append(False)
        finally:
            done.set()

    t = threading.Thread(target=run, name=f"agentpress-otel-{name}", daemon=True)
    t.start()
    finished = done.wait(max(0.0, timeout_s))
    return finished and bool(ok) and ok[0]


class Telemetry:
    """Handle returned by :func:`instrument`: providers, config, flush and shutdown.

    Example::

        tel = agentpress_otel.instrument(app, service_name="agentpress-api")
        ...
        tel.shutdown(timeout_s=5)
    """

    def __init__(
        self,
        *,
        config: Config,
        resource: Resource,
        tracer_provider: trace_api.TracerProvider,
        meter_provider: metrics_api.MeterProvider,
        logger_provider: LoggerProvider | None,
        disabled: bool = False,
    ) -> None:
        self.config = config
        self.resource = resource
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.disabled = disabled
        self.integrations: list[str] = []
        self._owned: list[Any] = []  # providers we created (and so flush and shut down)
        self._processors: list[Any] = []  # our processors on providers the app owns (shut down without them)
        self._shut = False
        self.app: Any = None
        #: integrations waiting for their library's first import (see integrations._registry)
        self._deferred: set[str] = set()

    # -- lifecycle -----------------------------------------------------------------------------
    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued, waiting at most ``timeout_s``; ``True`` only if everything finished in time.

        Example::

            tel.force_flush(timeout_s=2)
        """
        if self.disabled or self._shut:
            return True

        def flush_all() -> bool:
            ok = True
            ms = int(timeout_s * 1000)
            try:  # hand the log pipeline's queue to the LoggerProvider first
                from agentpress_otel.logs import flush as flush_logs

                ok = flush_logs(timeout_s) and ok
            except ImportError:
                pass
            for p in self._providers():
                fn = getattr(p, "force_flush", None)
                if fn is not None:
                    ok = bool(fn(ms)) and ok
            return ok

        return _run_with_deadline(flush_all, timeout_s, "flush")

    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Flush and stop exporting, returning within ``timeout_s`` (default ``Config.shutdown_timeout_s``).

        Safe to call more than once and from any thread; integrations are undone.

        Example::

            tel.shutdown(timeout_s=5)
        """
        global _current, _providers_shut_down
        with _lock:
            if self._shut:
                return True
            self._shut = True
            if _current is self:
                _current = None
            if self._owned:
                _providers_shut_down = True
        deadline = self.config.shutdown_timeout_s if timeout_s is None else timeout_s
        _registry.uninstrument_all(self)
        if self.disabled:
            return True

        def stop_all() -> bool:
            for p in [*self._processors, *self._owned]:
                try:
                    p.shutdown()
                except Exception as exc:
                    _selftel.record_error("shutdown", exc)
            try:  # after the final metric collection: back to the cheap unconfigured state
                from agentpress_otel import genai

                genai.unconfigure(owner=self)
            except Exception as exc:
                _selftel.record_error("genai.unconfigure", exc)
            return True

        if _run_with_deadline(stop_all, deadline, "shutdown"):
            return True
        # Deadline hit (a dead or slow Collector): what is still queued would vanish with the process.
        # Count it as dropped now and cut the exporters' retries, so the loss shows in the drop counter.
        for p in self._processors_to_abandon():
            try:
                _export.abandon_queue(p)
            except Exception as exc:
                _selftel.record_error("shutdown.abandon", exc)
        return False

    def _processors_to_abandon(self) -> list[Any]:
        out: list[Any] = list(self._processors)
        for provider in (self.tracer_provider, self.logger_provider):
            multi = getattr(provider, "_active_span_processor", None) or getattr(
                provider, "_multi_log_record_processor", None
            )
            for key in ("_span_processors", "_log_record_processors"):
                out.extend(getattr(multi, key, ()) or ())
        return [p for p in dict.fromkeys(out) if isinstance(
            p, (_export.DropCountingSpanProcessor, _export.DropCountingLogProcessor))]

    async def ashutdown(self, timeout_s: float | None = None) -> bool:
        """:meth:`shutdown` for async code: the event loop keeps running while exporters drain.

        Example::

            await tel.ashutdown(timeout_s=5)
        """
        import asyncio

        return await asyncio.to_thread(self.shutdown, timeout_s)

    def _providers(self) -> list[Any]:
        return [p for p in (self.tracer_provider, self.meter_provider, self.logger_provider) if p is not None]

    def _after_fork_in_child(self) -> None:
        """Give the child its own ``service.instance.id``; the SDK re-creates queues and worker threads itself."""
        if self._shut or self.disabled:
            return
        new = Resource({"service.instance.id": default_instance_id(), "process.pid": os.getpid(),
                        **_creation_time()})
        for p in self._owned:
            upd = getattr(p, "_update_resource", None)
            if upd is not None:
                try:
                    upd(new)
                except Exception as exc:
                    _selftel.record_error("fork", exc)
        self.resource = self.resource.merge(new)


def current() -> Telemetry | None:
    """The active :class:`Telemetry` handle, or ``None`` before :func:`instrument` (and after ``shutdown()``).

    Example::

        tel = agentpress_otel.current()
        if tel is not None and not tel.disabled:
            tel.force_flush(timeout_s=2)
    """
    return _current


#: platform.machine() spellings -> the registry's host.arch values (anything else is passed on lower-cased).
_HOST_ARCH = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64",
              "armv7l": "arm32", "armv6l": "arm32", "arm": "arm32", "i386": "x86", "i486": "x86", "i586": "x86",
              "i686": "x86", "x86": "x86", "ppc64": "ppc64", "ppc64le": "ppc64", "ppc": "ppc32", "s390x": "s390x",
              "ia64": "ia64"}


def host_arch(machine: str | None = None) -> str:
    """``host.arch`` for this machine (or ``machine``), in the registry's values (``amd64``, ``arm64``...)."""
    m = (platform.machine() if machine is None else machine).strip().lower()
    return _HOST_ARCH.get(m, m)


def _creation_time() -> dict[str, str]:
    """``process.creation.time`` (ISO 8601) of this process, from psutil; nothing if it cannot be read."""
    try:
        import datetime

        import psutil

        t = psutil.Process().create_time()
        return {"process.creation.time": datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat()}
    except Exception:
        return {}


def _build_resource(cfg: Config) -> Resource:
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
            **_creation_time(),
            "process.runtime.name": platform.python_implementation().lower(),
            "process.runtime.version": platform.python_version(),
            "telemetry.distro.name": "agentpress-otel",
            "telemetry.distro.version": _version(),
        }
    )
    return Resource.create(attrs)


def _version() -> str:
    from agentpress_otel._version import __version__

    return __version__


def _sdk_disabled(env: Mapping[str, str]) -> bool:
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or env.get(
        "AGENTPRESS_OTEL_DISABLED", ""
    ).strip().lower() in {"1", "true", "yes"}


def _context_processor() -> SpanProcessor | None:
    try:
        from agentpress_otel._context import ContextSpanProcessor
    except ImportError:
        return None
    return ContextSpanProcessor()


def _redacted_metric_exporter(cfg: Config, kind: str) -> Any:
    """A new metric exporter of ``kind`` behind the redaction stage (metric labels are redacted too)."""
    return _redacting("metrics", _export.make_metric_exporter(cfg, kind), cfg)


def _redacting(kind: str, exporter: Any, cfg: Config) -> Any:
    """Wrap ``exporter`` with the redaction stage (runs on the export thread, never the caller's)."""
    if not cfg.redact:
        return exporter
    try:
        from agentpress_otel import redaction
    except ImportError:
        return exporter
    wrapper = getattr(redaction, {"spans": "RedactingSpanExporter", "logs": "RedactingLogExporter",
                                  "metrics": "RedactingMetricExporter"}[kind], None)
    return exporter if wrapper is None else wrapper(exporter)


def instrument(
    app: Any = None,
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    resource_attributes: Mapping[str, str] | None = None,
    traces: bool | None = None,
    metrics: bool | None = None,
    logs: bool | None = None,
    sample_ratio: float | None = None,
    integrations: Sequence[str] | None = None,
    disabled_integrations: Sequence[str] | None = None,
    capture_content: bool | None = None,
    content_max_chars: int | None = None,
    attribute_max_chars: int | None = None,
    log_max_chars: int | None = None,
    excluded_urls: Sequence[str] | None = None,
    request_id_header: str | None = None,
    log_json: bool | None = None,
    log_level: str | None = None,
    logger_levels: Mapping[str, str] | None = None,
    log_sample_ratio: float | None = None,
    redact: bool | None = None,
    redact_hash_key: str | None = None,
    slack_webhook_url: str | None = None,
    slack_min_level: str | None = None,
    grafana_url: str | None = None,
    shutdown_timeout_s: float | None = None,
    export_timeout_s: float | None = None,
    metric_interval_s: float | None = None,
    max_queue_size: int | None = None,
    runtime_interval_s: float | None = None,
    schedule_delay_s: float | None = None,
    internal_hosts: Sequence[str] | None = None,
    trust_baggage_user_id: bool | None = None,
    traces_exporter: str | Sequence[str] | None = None,
    metrics_exporter: str | Sequence[str] | None = None,
    logs_exporter: str | Sequence[str] | None = None,
    export_otlp: bool = True,
    additional_span_processors: Sequence[SpanProcessor] = (),
    additional_metric_readers: Sequence[MetricReader] = (),
    additional_log_processors: Sequence[LogRecordProcessor] = (),
) -> Telemetry:
    """Set up traces, metrics and logs over OTLP and instrument ``app`` (FastAPI) and the libraries present.

    Every option falls back to ``AGENTPRESS_OTEL_<OPTION>``, then to the standard ``OTEL_*`` variable,
    then to a default (see docs/configuration.md). A bad argument raises :class:`ConfigError`; a bad
    environment value is ignored with a warning (listed in ``Config.config_warnings``). Calling it again
    returns the same handle. ``OTEL_SDK_DISABLED=true`` makes everything a no-op and never raises.

    Example::

        import agentpress_otel
        from fastapi import FastAPI

        app = FastAPI()
        telemetry = agentpress_otel.instrument(app, service_name="agentpress-api")
    """
    global _current, _named_by_app, _worker_name
    with _lock:
        if _current is not None:
            if app is not None and "fastapi" in _current.config.integrations:
                _registry.instrument_app(_current, app)
            asked = {k: v for k, v in locals().items() if k in _OPTION_NAMES and v is not None}
            _again(_current, asked, serves_app=app is not None)
            return _current

        overrides = {k: v for k, v in locals().items() if k in _OPTION_NAMES and v is not None}
        if _sdk_disabled(os.environ):
            # The kill switch must work whatever else is set: nothing here may raise.
            _current = _disabled_handle(_config_never_raising(overrides))
            return _current

        cfg = load_config(overrides)
        if _providers_shut_down:
            warnings.warn(
                "agentpress_otel.instrument() was called after shutdown() in the same process; the OpenTelemetry "
                "SDK allows one global provider per process and ours are shut down, so this handle is disabled "
                "(no telemetry). Restart the process to instrument again.",
                RuntimeWarning,
                stacklevel=2,
            )
            _current = _disabled_handle(cfg)
            return _current
        _export.quiet_sdk_loggers()
        if cfg.redact and cfg.sources.get("redact_hash_key") == "argument" and cfg.redact_hash_key:
            _use_redaction_hash_key(cfg.redact_hash_key)
        resource = _build_resource(cfg)
        ours: list[Any] = []
        tp = _setup_traces(cfg, resource, export_otlp, additional_span_processors, ours)
        mp, owned_mp = _setup_metrics(cfg, resource, export_otlp, additional_metric_readers)
        lp, owned_lp = _setup_logs(cfg, resource, export_otlp, additional_log_processors, ours)
        tel = Telemetry(config=cfg, resource=resource, tracer_provider=tp[0], meter_provider=mp, logger_provider=lp)
        tel._owned = [p for p, owned in (tp, (mp, owned_mp), (lp, owned_lp)) if owned and p is not None]
        # Our export processors on a provider the app owns: shutdown() stops them, the app's provider lives on.
        tel._processors = [p for p, prov in ours if not any(prov is o for o in tel._owned)]
        _selftel.register_metrics(mp)
        _current = tel
        _configure_genai(tel)
        opt_in_stable_conventions()  # before any stock instrumentation reads it
        _registry.instrument_all(tel, app)
        _named_by_app = app is not None
        _worker_name = cfg.service_name if app is None and cfg.sources.get("service_name") == "argument" else None
        os.register_at_fork(after_in_child=tel._after_fork_in_child)
        atexit.register(tel.shutdown)
        # atexit alone misses SIGTERM (uvicorn re-raises it, the default action skips atexit): see _stop.
        _stop.install_signal_handlers()
        return tel


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
    try:
        # An instrumentation the app enabled before instrument() (FastAPIInstrumentor...) may already have
        # frozen the process-wide modes on the defaults. Those keep what they read; the ones we instrument
        # next must see the stable modes. Private upstream API: if it moved, nothing changes.
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
    except Exception as exc:
        _selftel.record_error("semconv.opt_in", exc)


def _use_redaction_hash_key(key: str) -> None:
    """Tags from several processes correlate only under one key; the env variable is read by the engine
    itself, an argument needs the process-wide redactor rebuilt with it."""
    try:
        from agentpress_otel.redaction import configure_redaction

        configure_redaction(hash_key=key.encode("utf-8"))  # encode() sees the value, not the masked str()
    except Exception as exc:
        _selftel.record_error("redaction.configure", exc)


_OPTION_NAMES = frozenset(
    {
        "service_name", "service_version", "environment", "endpoint", "protocol", "headers", "resource_attributes",
        "traces", "metrics", "logs", "sample_ratio", "integrations", "disabled_integrations", "capture_content",
        "content_max_chars", "attribute_max_chars", "excluded_urls", "request_id_header", "log_json", "log_level",
        "logger_levels", "log_sample_ratio", "redact", "slack_webhook_url", "slack_min_level", "grafana_url",
        "shutdown_timeout_s", "export_timeout_s", "metric_interval_s", "max_queue_size", "runtime_interval_s",
        "schedule_delay_s", "internal_hosts", "trust_baggage_user_id", "redact_hash_key", "log_max_chars",
        "traces_exporter", "metrics_exporter", "logs_exporter",
    }
)  # fmt: skip


def _config_never_raising(overrides: Mapping[str, Any]) -> Config:
    """The config for a disabled handle: a bad argument is reported, never raised."""
    try:
        return load_config(overrides)
    except Exception as exc:
        warnings.warn(
            f"agentpress-otel: telemetry is disabled; ignoring an invalid option: {exc}", RuntimeWarning, stacklevel=3
        )
    try:
        return load_config({})
    except Exception:  # an environment value no parser expected: the built-in defaults still work
        return load_config({}, env={})


def _disabled_handle(cfg: Config) -> Telemetry:
    return Telemetry(
        config=cfg,
        resource=Resource.get_empty(),
        tracer_provider=trace_api.NoOpTracerProvider(),
        meter_provider=metrics_api.NoOpMeterProvider(),
        logger_provider=None,
        disabled=True,
    )


def _sampler(cfg: Config) -> Sampler:
    """Our ratio (parent-based), or the standard OTEL_TRACES_SAMPLER: only ``parentbased_*`` follow the parent."""
    if cfg.sample_ratio >= 1.0:
        root: Sampler = ALWAYS_ON
    elif cfg.sample_ratio <= 0.0:
        root = ALWAYS_OFF
    else:
        root = TraceIdRatioBased(cfg.sample_ratio)
    return ParentBased(root) if cfg.parent_based_sampling else root

_warned_options: set[str] = set()  # options of later calls already reported as not applied
# Identity rules for a process that calls instrument() more than once (AgentPress's api.py imports the worker
# module, whose instrument(service_name="agentpress-worker") runs first): a call given the app names the process
# it serves; a name asked without an app is the Dramatiq worker's, applied when a worker process boots.
_named_by_app = False
_worker_name: str | None = None


def _again(tel: Telemetry, asked: Mapping[str, Any], *, serves_app: bool) -> None:
    """A later ``instrument()`` call: apply the identity it asks for, or say loudly why not."""
    global _named_by_app, _worker_name
    name = asked.get("service_name")
    others = sorted(k for k in asked if k != "service_name")
    if name is not None and name != tel.config.service_name:
        if serves_app and not _named_by_app:
            _rename(tel, str(name), why="instrument(app, ...) names the process serving the app")
        elif serves_app:
            warnings.warn(
                f"agentpress-otel: this process already serves an app as service.name={tel.config.service_name!r}; "
                f"the later instrument(app, service_name={name!r}) does not rename it",
                RuntimeWarning,
                stacklevel=3,
            )
        else:
            # Without an app: a worker module imported by the API. Its name applies where the worker boots.
            if not _named_by_app:
                warnings.warn(
                    f"agentpress-otel: this process is already named {tel.config.service_name!r}; "
                    f"service_name={name!r} applies only if it boots as a Dramatiq worker",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _worker_name = str(name)
    if serves_app:
        _named_by_app = True
    if others and not set(others) <= _warned_options:
        _warned_options.update(others)
        warnings.warn(
            "agentpress_otel.instrument() was already called; these options of the later call are not applied: "
            + ", ".join(others),
            RuntimeWarning,
            stacklevel=3,
        )


def _rename(tel: Telemetry, name: str, *, why: str) -> bool:
    """Set ``service.name`` on the providers we created, for spans, metrics and logs alike.

    Through the SDK providers' ``_update_resource`` (what they run themselves after a fork), which also hands
    the new resource to the tracers and loggers libraries already took.
    """
    if tel.disabled or tel.config.service_name == name:
        return True
    update = Resource({"service.name": name})
    targets = [getattr(p, "_update_resource", None) for p in tel._owned]
    if not any(p is tel.tracer_provider for p in tel._owned) or None in targets:
        warnings.warn(
            f"agentpress-otel: the OpenTelemetry providers are not ours to rename; service.name stays "
            f"{tel.config.service_name!r} (asked: {name!r})",
            RuntimeWarning,
            stacklevel=4,
        )
        return False
    try:
        for fn in targets:
            fn(update)  # type: ignore[misc]
    except Exception as exc:
        _selftel.record_error("rename", exc)
        warnings.warn(f"agentpress-otel: could not change service.name to {name!r}: {exc!r}", RuntimeWarning,
                      stacklevel=4)
        return False
    old = tel.config.service_name
    tel.resource = tel.resource.merge(update)
    tel.config = dataclasses.replace(tel.config, service_name=name,
                                     sources={**tel.config.sources, "service_name": "argument"})
    import logging

    logging.getLogger("agentpress_otel").info("service.name %r -> %r: %s", old, name, why)
    return True


def apply_worker_identity() -> None:
    """In a Dramatiq worker process: take the name asked by ``instrument(service_name=...)`` without an app.

    Called from our Dramatiq middleware's ``after_process_boot``; a no-op where no such name was asked.
    """
    tel = _current
    name = _worker_name
    if tel is not None and name is not None:
        _rename(tel, name, why="the Dramatiq worker booted")


def _setup_traces(
    cfg: Config, resource: Resource, export_otlp: bool, extra: Sequence[SpanProcessor], ours: list[Any]
) -> tuple[trace_api.TracerProvider, bool]:
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
            sampler=_sampler(cfg),
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
    ctx_proc = _context_processor()
    if ctx_proc is not None:
        tp.add_span_processor(ctx_proc)
    if cfg.traces:
        for p in extra:
            tp.add_span_processor(p)
        # One batch processor per exporter (OTEL_TRACES_EXPORTER=otlp,console): a slow Collector never holds
        # the console back, and each goes through the redaction stage.
        for kind in cfg.traces_exporter if export_otlp else ():
            exporter = _export.CountingSpanExporter(functools.partial(_export.make_span_exporter, cfg, kind))
            proc = _export.DropCountingSpanProcessor(
                _redacting("spans", exporter, cfg),
                max_queue_size=cfg.max_queue_size,
                schedule_delay_millis=cfg.schedule_delay_s * 1000,
            )
            tp.add_span_processor(proc)
            ours.append((proc, tp))
    return tp, owned


def _setup_metrics(
    cfg: Config, resource: Resource, export_otlp: bool, extra: Sequence[MetricReader]
) -> tuple[metrics_api.MeterProvider, bool]:
    existing = metrics_api.get_meter_provider()
    if isinstance(existing, MeterProvider):
        # An SDK MeterProvider cannot take new readers after creation: use the app's as it is.
        return existing, False
    if not cfg.metrics:
        return metrics_api.NoOpMeterProvider(), False
    readers: list[MetricReader] = list(extra)
    for kind in cfg.metrics_exporter if export_otlp else ():
        readers.append(
            PeriodicExportingMetricReader(
                _export.CountingMetricExporter(functools.partial(_redacted_metric_exporter, cfg, kind)),
                export_interval_millis=cfg.metric_interval_s * 1000,
                export_timeout_millis=cfg.export_timeout_s * 1000,
            )
        )
    mp = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    metrics_api.set_meter_provider(mp)
    return mp, True


def _setup_logs(
    cfg: Config,
    resource: Resource,
    export_otlp: bool,
    extra: Sequence[LogRecordProcessor],
    ours: list[Any],
) -> tuple[LoggerProvider | None, bool]:
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
    for kind in cfg.logs_exporter if export_otlp else ():
        exporter = _export.CountingLogExporter(functools.partial(_export.make_log_exporter, cfg, kind))
        proc = _export.DropCountingLogProcessor(
            _redacting("logs", exporter, cfg),
            max_queue_size=cfg.max_queue_size,
            schedule_delay_millis=cfg.log_schedule_delay_s * 1000,
        )
        lp.add_log_record_processor(proc)
        ours.append((proc, lp))
    return lp, owned


def _configure_genai(tel: Telemetry) -> None:
    try:
        genai = importlib.import_module("agentpress_otel.genai")
    except ImportError:
        return
    configure = getattr(genai, "configure", None)
    if configure is not None:
        try:
            configure(tel)
        except Exception as exc:
            _selftel.record_error("genai.configure", exc)


def _reset_for_tests() -> None:
    """Forget the global handle and the global providers (tests only; the SDK forbids re-setting them)."""
    global _current, _providers_shut_down, _named_by_app, _worker_name
    with _lock:
        if _current is not None:
            _current.shutdown(timeout_s=2)
        _current = None
        _warned_options.clear()
        _named_by_app = False
        _worker_name = None
        _providers_shut_down = False
    from opentelemetry import _logs as logs_api

    trace_api._TRACER_PROVIDER_SET_ONCE._done = False
    trace_api._TRACER_PROVIDER = None
    metrics_api._internal._METER_PROVIDER_SET_ONCE._done = False
    metrics_api._internal._METER_PROVIDER = None
    logs_api._internal._LOGGER_PROVIDER_SET_ONCE._done = False
    logs_api._internal._LOGGER_PROVIDER = None
