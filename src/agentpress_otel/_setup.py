"""Providers, processors, resource, integrations, fork and shutdown handling: the ``Telemetry`` handle."""

from __future__ import annotations

import atexit
import dataclasses
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor

from agentpress_otel import _export, _providers, _selftel, _stop
from agentpress_otel._config import Config, default_instance_id, load_config, sdk_disabled
from agentpress_otel._options import ARGUMENTS
from agentpress_otel._providers import opt_in_stable_conventions
from agentpress_otel._stop import run_with_deadline as _run_with_deadline
from agentpress_otel.integrations import _registry

__all__ = ["Telemetry", "current", "instrument"]

_lock = threading.RLock()
_current: Telemetry | None = None
# Set once a handle that created the global providers has shut them down: the SDK sets them once per process.
_providers_shut_down = False
_G_SHUTDOWN = _selftel.guard("shutdown")
_G_UNCONFIGURE = _selftel.guard("genai.unconfigure")
_G_ABANDON = _selftel.guard("shutdown.abandon")
_G_FORK = _selftel.guard("fork")
_G_RENAME = _selftel.guard("rename")


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
            from agentpress_otel.logs import flush as flush_logs  # lazy: logs imports this module

            ok = flush_logs(timeout_s) and ok  # hand the log pipeline's queue to the LoggerProvider first
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
                with _G_SHUTDOWN:
                    p.shutdown()
            from agentpress_otel import genai  # lazy: genai imports this module

            with _G_UNCONFIGURE:  # after the final metric collection: back to the cheap unconfigured state
                genai.unconfigure(owner=self)
            return True

        if _run_with_deadline(stop_all, deadline, "shutdown"):
            return True
        # Deadline hit (a dead or slow Collector): what is still queued would vanish with the process.
        # Count it as dropped now and cut the exporters' retries, so the loss shows in the drop counter.
        for p in self._processors_to_abandon():
            with _G_ABANDON:
                _export.abandon_queue(p)
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
                        **_providers.creation_time()})
        for p in self._owned:
            upd = getattr(p, "_update_resource", None)
            if upd is not None:
                with _G_FORK:
                    upd(new)
        self.resource = self.resource.merge(new)


def current() -> Telemetry | None:
    """The active :class:`Telemetry` handle, or ``None`` before :func:`instrument` (and after ``shutdown()``).

    Example::

        tel = agentpress_otel.current()
        if tel is not None and not tel.disabled:
            tel.force_flush(timeout_s=2)
    """
    return _current


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
            asked = {k: v for k, v in locals().items() if k in ARGUMENTS and v is not None}
            _again(_current, asked, serves_app=app is not None)
            return _current

        # The keywords are the table's (tests/unit/test_options_table.py keeps the signature equal to it).
        overrides = {k: v for k, v in locals().items() if k in ARGUMENTS and v is not None}
        if sdk_disabled(os.environ):
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
        resource = _providers.build_resource(cfg)
        ours: list[Any] = []
        tp = _providers.setup_traces(cfg, resource, export_otlp, additional_span_processors, ours)
        mp, owned_mp = _providers.setup_metrics(cfg, resource, export_otlp, additional_metric_readers)
        lp, owned_lp = _providers.setup_logs(cfg, resource, export_otlp, additional_log_processors, ours)
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


_REDACTION_KEY_GUARD = _selftel.guard("redaction.configure")


def _use_redaction_hash_key(key: str) -> None:
    """Tags from several processes correlate only under one key; the env variable is read by the engine
    itself (through the options table), an argument needs the process-wide redactor rebuilt with it."""
    with _REDACTION_KEY_GUARD:
        from agentpress_otel.redaction import configure_redaction

        configure_redaction(hash_key=key.encode("utf-8"))  # encode() sees the value, not the masked str()


def _config_never_raising(overrides: Mapping[str, Any]) -> Config:
    """The config for a disabled handle: a bad argument is reported, never raised."""
    try:
        return load_config(overrides)
    except Exception as exc:  # noqa: BLE001 - the kill switch never raises: any bad argument is only reported
        warnings.warn(
            f"agentpress-otel: telemetry is disabled; ignoring an invalid option: {exc}", RuntimeWarning, stacklevel=3
        )
    try:
        return load_config({})
    except Exception:  # noqa: BLE001 - an environment value no parser expected: the built-in defaults still work
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
    renamed = False
    with _G_RENAME:
        for fn in targets:
            fn(update)  # type: ignore[misc]
        renamed = True
    if not renamed:  # the error itself is logged and counted by the guard (component "rename")
        warnings.warn(f"agentpress-otel: could not change service.name to {name!r}", RuntimeWarning, stacklevel=4)
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


def _configure_genai(tel: Telemetry) -> None:
    from agentpress_otel import genai  # imported here: genai's instruments need the providers set up above

    genai.configure(tel)  # under genai's own error guard


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
    from agentpress_otel import _sdk_globals

    _sdk_globals.clear()  # the one place that writes the API's private provider slots
