"""``agentpress-otel doctor``: effective configuration, a live export check, and version sanity.

Exit codes: 0 all good (warnings allowed), 1 a check failed (endpoint or versions), 2 the configuration
itself is invalid (a bad argument, or an environment value that instrument() would ignore).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from urllib.parse import urlparse

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentpress_otel._config import DERIVED_FIELDS, Config, ConfigError, default_instance_id, load_config
from agentpress_otel._options import BY_NAME, OPTIONS, SECRETS

#: Distributions whose versions are reported (present ones only).
PACKAGES = (
    "agentpress-otel",
    "opentelemetry-api",
    "opentelemetry-sdk",
    "opentelemetry-proto",
    "opentelemetry-exporter-otlp-proto-common",
    "opentelemetry-exporter-otlp-proto-grpc",
    "opentelemetry-exporter-otlp-proto-http",
    "opentelemetry-semantic-conventions",
    "opentelemetry-instrumentation",
    "opentelemetry-instrumentation-fastapi",
    "opentelemetry-instrumentation-asgi",
    "opentelemetry-instrumentation-httpx",
    "opentelemetry-instrumentation-redis",
    "opentelemetry-instrumentation-system-metrics",
    "opentelemetry-util-http",
    "opentelemetry-util-genai",
    "litellm",
    "openai",
    "fastapi",
    "uvicorn",
    "structlog",
    "dramatiq",
    "redis",
    "protobuf",
    "grpcio",
)

# SDK-versioned packages (1.x) must equal the SDK; contrib packages (0.Nb) pair with SDK 1.(N-21).
_SDK_LOCKSTEP = ("opentelemetry-api", "opentelemetry-proto", "opentelemetry-exporter-otlp-proto-common",
                 "opentelemetry-exporter-otlp-proto-grpc", "opentelemetry-exporter-otlp-proto-http",
                 "opentelemetry-exporter-otlp")
_CONTRIB_OFFSET = 21


@dataclass
class Finding:
    level: str  # "ok" | "warn" | "fail"
    what: str
    detail: str


def installed_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent ones left out).

    Example::

        installed_versions(("opentelemetry-sdk",))  # {"opentelemetry-sdk": "1.45.2"}
    """
    out: dict[str, str] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            continue
    return out


def _minor(v: str) -> tuple[int, int] | None:
    m = re.match(r"^(\d+)\.(\d+)", v)
    return (int(m.group(1)), int(m.group(2))) if m else None


def version_findings(versions: dict[str, str]) -> list[Finding]:
    """Known-bad combinations: API/SDK/exporters out of lockstep, contrib not matching the SDK, unmet pins.

    Example::

        version_findings({"opentelemetry-sdk": "1.45.2", "opentelemetry-api": "1.44.0"})  # one "fail"
    """
    out: list[Finding] = []
    sdk = versions.get("opentelemetry-sdk")
    if sdk is None:
        return [Finding("fail", "opentelemetry-sdk", "not installed: nothing can be exported")]
    sdk_m = _minor(sdk)
    for name in _SDK_LOCKSTEP:
        v = versions.get(name) or _safe_version(name)
        if v is not None and v != sdk:
            out.append(Finding("fail", name, f"{v} differs from opentelemetry-sdk {sdk}; install the same release"))
    for name in sorted(set(versions) | set(_installed_otel())):
        if not name.startswith(("opentelemetry-instrumentation", "opentelemetry-semantic-conventions",
                                "opentelemetry-util-http")):
            continue
        v = versions.get(name) or _safe_version(name)
        m = _minor(v) if v else None
        if v is None or m is None or sdk_m is None:
            continue
        if m[0] == 0 and m[1] - _CONTRIB_OFFSET != sdk_m[1]:
            want = f"0.{sdk_m[1] + _CONTRIB_OFFSET}bX"
            out.append(Finding("fail", name, f"{v} is built for opentelemetry-sdk 1.{m[1] - _CONTRIB_OFFSET}.x, "
                                             f"not {sdk}; install {name}=={want}"))
    out.extend(_unmet_requirements())
    lite = versions.get("litellm")
    if lite is not None:
        lm = _minor(lite)
        if lm is not None and lm < (1, 40):
            out.append(Finding("warn", "litellm", f"{lite} predates stream_options usage chunks; streamed token "
                                                  "counts will be estimated"))
        if os.environ.get("LITELLM_LOCAL_MODEL_COST_MAP", "").lower() not in ("true", "1"):
            out.append(Finding("warn", "litellm", "LITELLM_LOCAL_MODEL_COST_MAP is not set: LiteLLM downloads its "
                                                  "price map at import (instrument() sets it when it runs first)"))
    if not any(f.level == "fail" for f in out):
        out.insert(0, Finding("ok", "versions", f"OpenTelemetry packages are one coherent release (SDK {sdk})"))
    return out


def _safe_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _installed_otel() -> list[str]:
    names = set()
    for d in metadata.distributions():
        n = (d.name or "").lower().replace("_", "-")
        if n.startswith("opentelemetry-"):
            names.add(n)
    return sorted(names)


def _unmet_requirements() -> list[Finding]:
    """Pins between installed opentelemetry-* distributions that pip let slip (e.g. after a partial upgrade)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # packaging absent: the lockstep checks above still run
        return []
    out: list[Finding] = []
    for name in _installed_otel():
        try:
            reqs = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for raw in reqs:
            try:
                req = Requirement(raw)
            except InvalidRequirement:  # a malformed requirement string is not ours to judge
                continue
            if req.marker is not None or not req.name.startswith("opentelemetry-"):
                continue
            have = _safe_version(req.name)
            if have is not None and req.specifier and not req.specifier.contains(have, prereleases=True):
                out.append(Finding("fail", name, f"requires {req}, but {req.name} {have} is installed"))
    return out


# ------------------------------------------------------------------------------------ endpoint checks

def _with_deadline(fn: Callable[[], Any], timeout_s: float, name: str = "apotel-doctor") -> tuple[bool, Any]:
    """Run ``fn`` on a daemon thread named ``name``; (finished, result or exception)."""
    box: list[Any] = []
    t = threading.Thread(target=lambda: box.append(_call(fn)), name=name, daemon=True)
    t.start()
    t.join(timeout_s)
    return (bool(box), box[0] if box else None)


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - not swallowed: the exception is the check's result, shown to the user
        return exc


def tcp_reachable(endpoint: str, timeout_s: float = 1.0) -> str | None:
    """None when something accepts TCP connections at ``endpoint``, else a short reason."""
    u = urlparse(endpoint)
    host = u.hostname or "localhost"
    port = u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"nothing accepts connections at {host}:{port} ({exc.strerror or exc})"


def guess_protocol(endpoint: str | None, protocol: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The OTLP protocol to pass as an argument: ``protocol`` when given; else ``http/protobuf`` when the
    endpoint (``endpoint``, else ``AGENTPRESS_OTEL_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``) is on port 4318
    and no protocol is configured anywhere; else ``None`` (the configuration decides).

    Example::

        guess_protocol("http://localhost:4318", None, {})  # "http/protobuf"
        guess_protocol(None, None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})  # None: configured
    """
    if protocol:
        return protocol
    environ = os.environ if env is None else env
    if any((environ.get(v) or "").strip() for v in _PROTOCOL_VARS):
        return None
    ep = endpoint or next((environ[v] for v in _ENDPOINT_VARS if (environ.get(v) or "").strip()), None)
    try:
        port = urlparse(ep).port if ep else None
    except ValueError:  # a malformed port: load_config reports it
        return None
    return "http/protobuf" if port == 4318 else None


_PROTOCOL_VARS = BY_NAME["protocol"].variables
_ENDPOINT_VARS = BY_NAME["endpoint"].variables
GUESSED_SOURCE = "guessed from port 4318 (no protocol configured)"


def load_effective_config(endpoint: str | None, protocol: str | None,
                          extra: Mapping[str, Any] | None = None) -> Config:
    """``load_config`` with ``--endpoint``/``--protocol`` applied and the port-4318 guess; raises ConfigError."""
    overrides: dict[str, Any] = dict(extra or {})
    if endpoint:
        overrides["endpoint"] = endpoint
    chosen = guess_protocol(endpoint, protocol)
    if chosen:
        overrides["protocol"] = chosen
    with warnings.catch_warnings():
        # Ignored variables are in cfg.config_warnings; the commands report them themselves.
        warnings.simplefilter("ignore", RuntimeWarning)
        cfg = load_config(overrides)
    if chosen and not protocol:
        cfg.sources["protocol"] = GUESSED_SOURCE
    return cfg


def check_endpoint(cfg: Config, timeout_s: float) -> list[Finding]:
    """Send one test span, log record and metric with the configured exporters; one finding per signal.

    Example::

        check_endpoint(load_config({"endpoint": "http://localhost:4317"}), timeout_s=3)
    """
    from agentpress_otel import _export

    cfg = dataclasses.replace(cfg, export_timeout_s=timeout_s)
    where = f"{cfg.endpoint} ({cfg.protocol})"
    reason = tcp_reachable(cfg.endpoint, timeout_s=min(1.0, timeout_s))
    if reason is not None:
        hint = "start a Collector (`agentpress-otel stack up`) or fix --endpoint / OTEL_EXPORTER_OTLP_ENDPOINT"
        return [Finding("fail", sig, f"{where}: {reason}; {hint}") for sig in _signals(cfg)]
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({"service.name": cfg.service_name, "agentpress.doctor": True})
    checks: dict[str, Callable[[], Any]] = {}
    if cfg.traces:
        checks["traces"] = lambda: _export_span(_export.make_span_exporter(cfg), resource)
    if cfg.logs:
        checks["logs"] = lambda: _export_log(_export.make_log_exporter(cfg), resource)
    if cfg.metrics:
        checks["metrics"] = lambda: _export_metric(_export.make_metric_exporter(cfg), resource, timeout_s)
    results: dict[str, tuple[bool, Any]] = {}
    threads = []
    quiet = _Quiet()
    with quiet:
        for sig, fn in checks.items():
            t = threading.Thread(
                target=lambda s=sig, f=fn: results.__setitem__(s, _with_deadline(f, timeout_s + 1, _thread_name(s))),
                daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join(timeout_s + 2)
    out = []
    for sig in checks:
        finished, res = results.get(sig, (False, None))
        if finished and res is True:
            out.append(Finding("ok", sig, f"{where} accepted a test {_NOUN[sig]}"))
            continue
        if not finished:
            why = f"no answer within {timeout_s:g} s"
        elif isinstance(res, Exception):
            why = f"{type(res).__name__}: {res}"
        else:
            last = quiet.last_for(sig)
            why = "the export was rejected" + (f" ({last})" if last else "")
        out.append(Finding("fail", sig, f"{where} did not accept a test {_NOUN[sig]}: {why}{_protocol_hint(cfg)}"))
    return out


_NOUN = {"traces": "span", "logs": "log record", "metrics": "metric"}


def _signals(cfg: Config) -> list[str]:
    return [s for s, on in (("traces", cfg.traces), ("logs", cfg.logs), ("metrics", cfg.metrics)) if on]


def _protocol_hint(cfg: Config) -> str:
    port = urlparse(cfg.endpoint).port
    if port == 4318 and cfg.protocol == "grpc":
        return "; port 4318 is usually OTLP/HTTP: set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
    if port == 4317 and cfg.protocol == "http/protobuf":
        return "; port 4317 is usually OTLP/gRPC: set OTEL_EXPORTER_OTLP_PROTOCOL=grpc"
    return ""


_THREAD_PREFIX = "apotel-doctor-"
# OTLP/HTTP exporters log under a per-signal logger; the gRPC ones share one (the thread tells them apart).
_HTTP_LOGGERS = {"trace_exporter": "traces", "_log_exporter": "logs", "metric_exporter": "metrics"}


def _thread_name(signal: str) -> str:
    return _THREAD_PREFIX + signal


class _Quiet(logging.Handler):
    """Silence the exporters' retry warnings while checking, but remember the last one per signal.

    The three checks run concurrently: a warning is attributed to the signal whose check thread logged it
    (or, for OTLP/HTTP, whose exporter logger did), never to whichever check happens to finish last.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._last: dict[str, str] = {}
        self._saved: list[tuple[logging.Logger, bool, list[logging.Handler]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        sig = None
        if record.threadName and record.threadName.startswith(_THREAD_PREFIX):
            sig = record.threadName[len(_THREAD_PREFIX):]
        else:
            sig = next((s for part, s in _HTTP_LOGGERS.items() if record.name.endswith("." + part)), None)
        if sig is not None:
            self._last[sig] = record.getMessage()[:200]

    def last_for(self, signal: str) -> str:
        """The last warning logged while checking ``signal`` ("" when there was none)."""
        return self._last.get(signal, "")

    def __enter__(self) -> _Quiet:
        for name in ("opentelemetry.exporter", "opentelemetry.sdk"):
            lg = logging.getLogger(name)
            self._saved.append((lg, lg.propagate, list(lg.handlers)))
            lg.propagate = False
            lg.handlers = [self]
        return self

    def __exit__(self, *exc: object) -> None:
        for lg, prop, handlers in self._saved:
            lg.propagate = prop
            lg.handlers = handlers


def _export_span(exporter: Any, resource: Any) -> bool:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=resource, shutdown_on_exit=False)
    tp.add_span_processor(SimpleSpanProcessor(mem))
    with tp.get_tracer("agentpress_otel.doctor").start_as_current_span("agentpress-otel doctor") as span:
        span.set_attribute("agentpress.doctor.check", "traces")
    try:
        return bool(exporter.export(mem.get_finished_spans()) == SpanExportResult.SUCCESS)
    finally:
        exporter.shutdown()


def _export_log(exporter: Any, resource: Any) -> bool:
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import (
        InMemoryLogRecordExporter,
        LogRecordExportResult,
        SimpleLogRecordProcessor,
    )

    mem = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    lp = LoggerProvider(resource=resource, shutdown_on_exit=False)
    lp.add_log_record_processor(SimpleLogRecordProcessor(mem))
    lp.get_logger("agentpress_otel.doctor").emit(
        body="agentpress-otel doctor test log record", severity_number=SeverityNumber.INFO, severity_text="INFO",
        attributes={"agentpress.doctor.check": "logs"},
    )
    try:
        return bool(exporter.export(mem.get_finished_logs()) == LogRecordExportResult.SUCCESS)
    finally:
        exporter.shutdown()


def _export_metric(exporter: Any, resource: Any, timeout_s: float) -> bool:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult

    reader = InMemoryMetricReader()
    mp = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
    mp.get_meter("agentpress_otel.doctor").create_counter("agentpress.doctor.check").add(1, {"check": "metrics"})
    data = reader.get_metrics_data()
    try:
        return bool(exporter.export(data, timeout_millis=timeout_s * 1000) == MetricExportResult.SUCCESS)
    finally:
        exporter.shutdown(timeout_millis=500)


# --------------------------------------------------------------------------------------------- report

def _show(name: str, value: Any) -> str:
    if name in SECRETS and value:
        if isinstance(value, dict):
            return ", ".join(f"{k}=***" for k in value)
        return str(value).split("/services/")[0] + "/services/***" if "/services/" in str(value) else "***"
    if isinstance(value, (frozenset, set, tuple, list)):
        return ", ".join(sorted(str(v) for v in value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def config_warnings(cfg: Config) -> tuple[str, ...]:
    """Environment values the configuration ignored because they were invalid (empty when all were usable)."""
    return tuple(getattr(cfg, "config_warnings", ()) or ())


def config_rows(cfg: Config) -> list[tuple[str, str, str]]:
    """(option, effective value, source) for every option of the table, then the derived values; the source
    is ``argument``, the variable's name or ``default``.

    Example::

        dict((o, s) for o, _, s in config_rows(load_config()))["endpoint"]  # "default"
    """
    rows = []
    names = [o.name for o in OPTIONS if o.in_config] + [f for f in DERIVED_FIELDS if f not in ("sources",
                                                                                          "config_warnings")]
    for name in names:
        value = _show(name, getattr(cfg, name))
        src = cfg.sources.get(name, "derived")
        if name == "integrations":
            # `integrations` minus `disabled_integrations`: name every setting that shaped the set.
            given = [s for s in (src, cfg.sources.get("disabled_integrations", "default")) if s != "default"]
            src = " + ".join(given) if given else "default"
        elif name == "service_instance_id" and not cfg.service_instance_id:
            # Not configured: instrument() generates one per process (and per forked child).
            value = f"{default_instance_id()} (a random UUID, new per process)"
            src = "generated"
        rows.append((name, value, src))
    return rows


def config_table(cfg: Config) -> Table:
    """Every option, its effective value and where it came from."""
    t = Table(title="Effective configuration", title_justify="left")
    t.add_column("option")
    t.add_column("value", overflow="fold")
    t.add_column("source")
    for name, value, src in config_rows(cfg):
        t.add_row(name, value, Text(src, style="dim" if src in ("default", "derived", "generated") else "bold green"))
    return t


def run(*, endpoint: str | None = None, protocol: str | None = None, timeout_s: float = 3.0,
        console: Console | None = None) -> int:
    """Run all checks and print the report; returns the exit code.

    Example::

        raise SystemExit(run(endpoint="http://localhost:4317"))
    """
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    t0 = time.monotonic()
    try:
        cfg = load_effective_config(endpoint, protocol)
    except ConfigError as exc:
        console.print(Text("✗ invalid configuration: ", style="bold red") + Text(str(exc)))
        return 2
    console.print(config_table(cfg))
    ignored = config_warnings(cfg)

    versions = installed_versions()
    vt = Table(title="Versions", title_justify="left")
    vt.add_column("package")
    vt.add_column("version")
    for n, v in versions.items():
        vt.add_row(n, v)
    console.print(vt)

    findings = [Finding("fail", "configuration", f"{msg} (instrument() would warn and run without it)")
                for msg in ignored]
    findings += version_findings(versions)
    if cfg.disabled:
        findings.append(Finding("warn", "disabled", f"{cfg.sources['disabled']} is set: instrument() will do nothing"))
        endpoint_findings: list[Finding] = []
    else:
        console.print(f"Checking {cfg.endpoint} ({cfg.protocol}) with a test span, log record and metric …")
        endpoint_findings = check_endpoint(cfg, timeout_s)
    findings.extend(endpoint_findings)

    ft = Table(title="Checks", title_justify="left")
    ft.add_column("")
    ft.add_column("check")
    ft.add_column("result", overflow="fold")
    marks = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "bold red")}
    for f in findings:
        mark, style = marks[f.level]
        ft.add_row(Text(mark, style=style), f.what, Text(f.detail, style="red" if f.level == "fail" else ""))
    console.print(ft)
    failed = [f for f in findings if f.level == "fail"]
    took = time.monotonic() - t0
    if failed:
        console.print(Text(f"✗ {len(failed)} problem(s) found", style="bold red") +
                      Text(f" ({took:.1f} s). First: {failed[0].what}: {failed[0].detail}"))
        return 2 if ignored else 1
    console.print(f"[bold green]✓ all checks passed[/] ({took:.1f} s)")
    return 0
