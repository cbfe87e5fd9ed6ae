"""Our Collector build (``otelcol-apotel``, see :mod:`.collector_build`) running the shipped config, plus
stand-ins for Tempo and Loki.

Used by the pipeline tests, the ``agentpress-otel stack`` command and the benchmarks, so all three run the
same binary with ``collector-config/config.yaml`` unchanged: only ``OTELCOL_*`` environment variables differ
(free loopback ports, a private storage directory, shorter timings).

The stand-ins are two more instances of the same binary (``collector-config/testing/standin-*.yaml``):
OTLP in, OTLP/JSON lines out to a file, which :func:`read_spans` / :func:`read_logs` parse.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from agentpress_otel._assets import deploy_file
from agentpress_otel._harness._proc import ManagedProcess, free_port, http_ok, loopback_url
from agentpress_otel._harness.collector_build import collector_binary

__all__ = [
    "COLLECTOR_BINARY",
    "COLLECTOR_CONFIG",
    "READY_LINE",
    "Collector",
    "LogRecord",
    "Span",
    "StandIn",
    "ensure_collector_binary",
    "read_logs",
    "read_spans",
    "start_collector",
    "start_hostmetrics_agent",
    "start_standin",
]

COLLECTOR_BINARY = "otelcol-apotel"
# Read from the installed package (or the checkout of an editable install): see agentpress_otel._assets.
COLLECTOR_CONFIG = deploy_file("collector-config/config.yaml")
HOSTMETRICS_CONFIG = deploy_file("collector-config/hostmetrics.yaml")
STANDIN_CONFIGS = {
    "traces": deploy_file("collector-config/testing/standin-traces.yaml"),
    "logs": deploy_file("collector-config/testing/standin-logs.yaml"),
}
START_TIMEOUT = 60.0


def ensure_collector_binary(*, build: bool = True) -> str:
    """Return the path of our Collector build (``AGENTPRESS_OTEL_COLLECTOR_BIN``, else the user cache), building
    it into the cache first when it is missing and ``go`` is available.

    With neither, :class:`ComponentMissing` is raised (tests skip locally and fail under CI). One build path with
    ``agentpress-otel stack up`` and ``scripts/build-collector.sh``: :func:`.collector_build.collector_binary`.

    Example::

        binary = ensure_collector_binary()
    """
    return str(collector_binary(build_if_missing=build))


READY_LINE = "Everything is ready"


def _run_otelcol(
    name: str, config: Path, env: Mapping[str, str], workdir: Path, health_port: int, timeout: float
) -> ManagedProcess:
    """Our Collector binary running ``config`` in ``workdir``, started once its health check answers."""
    proc = ManagedProcess(name=name, argv=[ensure_collector_binary(), f"--config={config}"], env=env,
                          cwd=workdir, log_dir=workdir)
    proc.start(ready=lambda: http_ok(loopback_url(health_port, "/health")), timeout=timeout)
    return proc


_T = TypeVar("_T")


def _retrying_port_races(start: Callable[[], _T], attempts: int = 3) -> _T:
    """``start()`` again (it picks new ports each time) when the Collector exited because a port was taken.

    :func:`free_port` hands out a port that is free when asked; another process may bind it before the Collector
    does (seen once in a full CI run). Any other start failure is raised at once.
    """
    for attempt in range(attempts):
        try:
            return start()
        except RuntimeError as exc:
            if "address already in use" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------------------------------------------
# The Collector under test


class _PortUrl:
    """Read-only attribute: the loopback URL of the port held in another field (``path`` appended)."""

    def __init__(self, port_field: str, path: str = "") -> None:
        self.port_field, self.path = port_field, path

    def __get__(self, obj: object, owner: type | None = None) -> str:
        return loopback_url(int(getattr(obj, self.port_field)), self.path)


@dataclass
class Collector:
    """A running ``otelcol-apotel`` with the shipped config; ports and paths injected through ``OTELCOL_*`` env."""

    workdir: Path
    storage_dir: Path
    env: dict[str, str]
    grpc_port: int
    http_port: int
    browser_port: int
    health_port: int
    metrics_port: int
    config: Path = COLLECTOR_CONFIG
    process: ManagedProcess | None = field(default=None, init=False)

    # Each address is one port of the same loopback Collector; the descriptors only name them.
    otlp_grpc_endpoint = _PortUrl("grpc_port")
    otlp_http_endpoint = _PortUrl("http_port")
    browser_endpoint = _PortUrl("browser_port")
    metrics_url = _PortUrl("metrics_port", "/metrics")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self, *, timeout: float = START_TIMEOUT) -> Collector:
        """(Re)start with the same ports and storage directory (persistent queues survive restarts)."""
        self.process = _run_otelcol("otelcol", self.config, self.env, self.workdir, self.health_port, timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20.0)

    def kill(self) -> None:
        """SIGKILL (crash simulation): no shutdown, no queue drain."""
        if self.process is not None:
            self.process.kill()

    def log_tail(self, n: int = 80) -> str:
        return self.process.log_tail(n) if self.process is not None else ""

    def self_metrics(self) -> str:
        """The Collector's own Prometheus metrics (``otelcol_*``) as exposition text."""
        with urllib.request.urlopen(self.metrics_url, timeout=2) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def metric_sum(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 when absent)."""
        total = 0.0
        for line in self.self_metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, rest = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += float(value)
        return total

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_collector(
    *,
    traces_endpoint: str,
    logs_endpoint: str,
    remote_write_url: str,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    cors_origins: list[str] | None = None,
    metrics_port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> Collector:
    """Start the Collector with the shipped config on free loopback ports; the caller must ``stop()`` it.

    ``traces_endpoint`` is host:port (OTLP gRPC, Tempo or its stand-in), ``logs_endpoint`` the Loki OTLP base URL
    (``http://host:port/otlp``), ``remote_write_url`` Prometheus' ``/api/v1/write``. ``env`` adds/overrides
    ``OTELCOL_*`` knobs (e.g. ``OTELCOL_TAIL_DECISION_WAIT``). Pass ``metrics_port`` when Prometheus must be
    told the self-metrics target before the Collector starts.

    Example::

        col = start_collector(traces_endpoint="127.0.0.1:4417", logs_endpoint="http://127.0.0.1:4418/otlp",
                              remote_write_url=prom.remote_write_url)
        try:
            ...  # export OTLP to col.otlp_grpc_endpoint
        finally:
            col.stop()
    """
    wd = workdir or Path(tempfile.mkdtemp(prefix="apotel-otelcol-"))
    wd.mkdir(parents=True, exist_ok=True)
    return _retrying_port_races(lambda: _start_collector_once(
        wd, traces_endpoint, logs_endpoint, remote_write_url, env, cors_origins, metrics_port, timeout))


def _start_collector_once(wd: Path, traces_endpoint: str, logs_endpoint: str, remote_write_url: str,
                          env: Mapping[str, str] | None, cors_origins: list[str] | None, metrics_port: int | None,
                          timeout: float) -> Collector:
    storage = wd / "file_storage"
    ports = {k: free_port() for k in ("grpc", "http", "browser", "health", "metrics", "pprof", "zpages")}
    if metrics_port is not None:
        ports["metrics"] = metrics_port
    origins = cors_origins or ["http://localhost:5173"]
    full_env = {
        "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
        "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}",
        "OTELCOL_BROWSER_ENDPOINT": f"127.0.0.1:{ports['browser']}",
        # A YAML flow list: the Collector parses env values as YAML.
        "OTELCOL_BROWSER_CORS_ORIGINS": "[" + ", ".join(origins) + "]",
        "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
        "OTELCOL_PPROF_ENDPOINT": f"127.0.0.1:{ports['pprof']}",
        "OTELCOL_ZPAGES_ENDPOINT": f"127.0.0.1:{ports['zpages']}",
        "OTELCOL_METRICS_HOST": "127.0.0.1",
        "OTELCOL_METRICS_PORT": str(ports["metrics"]),
        "OTELCOL_STORAGE_DIR": str(storage),
        "OTELCOL_TEMPO_ENDPOINT": traces_endpoint,
        "OTELCOL_LOKI_ENDPOINT": logs_endpoint,
        "OTELCOL_PROMETHEUS_RW_ENDPOINT": remote_write_url,
    }
    if env:
        full_env.update(env)
    col = Collector(
        workdir=wd,
        storage_dir=storage,
        env=full_env,
        grpc_port=ports["grpc"],
        http_port=ports["http"],
        browser_port=ports["browser"],
        health_port=ports["health"],
        metrics_port=ports["metrics"],
    )
    return col.start(timeout=timeout)


def start_hostmetrics_agent(
    gateway_endpoint: str,
    *,
    interval: str = "30s",
    host_name: str = "local-host",
    root_path: str = "/",
    workdir: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> ManagedProcess:
    """Run the shipped host-metrics agent (``collector-config/hostmetrics.yaml``) against ``gateway_endpoint``
    (host:port of a Collector's OTLP gRPC receiver); the caller must ``stop()`` it.

    Example::

        agent = start_hostmetrics_agent(col.otlp_grpc_endpoint.removeprefix("http://"), interval="1s")
    """
    binary = ensure_collector_binary()
    wd = workdir or Path(tempfile.mkdtemp(prefix="apotel-hostmetrics-"))
    wd.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        name="hostmetrics",
        argv=[binary, f"--config={HOSTMETRICS_CONFIG}"],
        env={
            "HOSTMETRICS_GATEWAY_ENDPOINT": gateway_endpoint,
            "HOSTMETRICS_INTERVAL": interval,
            "HOSTMETRICS_HOST_NAME": host_name,
            "HOSTMETRICS_ROOT_PATH": root_path,
        },
        cwd=wd,
        log_dir=wd,
    )

    def ready() -> bool:
        return proc.log_path is not None and READY_LINE in proc.log_path.read_text(errors="replace")

    return proc.start(ready=ready, timeout=timeout)


# --------------------------------------------------------------------------------------------------------------
# Stand-ins for Tempo (OTLP gRPC in) and Loki (OTLP HTTP in, /otlp/v1/logs), writing OTLP/JSON lines


@dataclass
class StandIn:
    """A stand-in backend: our Collector build with ``standin-{kind}.yaml``, appending OTLP/JSON to ``output``."""

    kind: Literal["traces", "logs"]
    port: int
    health_port: int
    output: Path
    workdir: Path
    process: ManagedProcess | None = field(default=None, init=False)

    @property
    def endpoint(self) -> str:
        """What the Collector under test is configured with (Tempo: host:port; Loki: base URL with /otlp)."""
        if self.kind == "traces":
            return f"127.0.0.1:{self.port}"
        return loopback_url(self.port, "/otlp")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def start(self, *, timeout: float = START_TIMEOUT) -> StandIn:
        env = {
            "STANDIN_HEALTH_ENDPOINT": f"127.0.0.1:{self.health_port}",
            "STANDIN_OUTPUT_PATH": str(self.output),
            "STANDIN_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{self.port}",
            "STANDIN_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.port}",
        }
        self.process = _run_otelcol(f"standin-{self.kind}", STANDIN_CONFIGS[self.kind], env, self.workdir,
                                    self.health_port, timeout)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=20.0)

    def spans(self) -> list[Span]:
        return read_spans(self.output)

    def logs(self) -> list[LogRecord]:
        return read_logs(self.output)

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_standin(kind: Literal["traces", "logs"], *, workdir: Path | None = None) -> StandIn:
    """Start a Tempo (``"traces"``) or Loki (``"logs"``) stand-in on free loopback ports.

    Example::

        tempo = start_standin("traces")
        try:
            spans = tempo.spans()
        finally:
            tempo.stop()
    """
    wd = workdir or Path(tempfile.mkdtemp(prefix=f"apotel-standin-{kind}-"))
    wd.mkdir(parents=True, exist_ok=True)
    return _retrying_port_races(lambda: StandIn(kind=kind, port=free_port(), health_port=free_port(),
                                                output=wd / f"{kind}.jsonl", workdir=wd).start())


# --------------------------------------------------------------------------------------------------------------
# Readers for the stand-ins' OTLP/JSON lines


def _any_value(v: Mapping[str, Any]) -> Any:
    """Decode an OTLP/JSON AnyValue (int64 arrives as a string in protobuf JSON)."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        return [_any_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return _attrs(v["kvlistValue"].get("values", []))
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attrs(kvs: list[Mapping[str, Any]]) -> dict[str, Any]:
    return {kv["key"]: _any_value(kv.get("value", {})) for kv in kvs}


@dataclass(frozen=True)
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any]
    resource: dict[str, Any]
    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class LogRecord:
    trace_id: str
    span_id: str
    body: Any
    severity_number: int
    severity_text: str
    attributes: dict[str, Any]
    resource: dict[str, Any]


def _json_lines(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            with contextlib.suppress(json.JSONDecodeError):  # a line being written right now
                yield json.loads(line)


def _otlp_items(path: Path, resources: str, scopes: str, items: str) -> Iterator[tuple[dict[str, Any], Any]]:
    """(resource attributes, item) for every span or log record of an OTLP/JSON lines file, in file order."""
    for doc in _json_lines(path):
        for rdoc in doc.get(resources, []):
            res = _attrs(rdoc.get("resource", {}).get("attributes", []))
            for sdoc in rdoc.get(scopes, []):
                for item in sdoc.get(items, []):
                    yield res, item


def read_spans(path: Path) -> list[Span]:
    """All spans in a traces stand-in output file (OTLP/JSON lines).

    Example::

        ids = {s.trace_id for s in read_spans(tempo.output)}
    """
    return [
        Span(
            trace_id=sp.get("traceId", ""),
            span_id=sp.get("spanId", ""),
            parent_span_id=sp.get("parentSpanId", ""),
            name=sp.get("name", ""),
            kind=int(sp.get("kind", 0)),
            status_code=int(sp.get("status", {}).get("code", 0)),
            attributes=_attrs(sp.get("attributes", [])),
            resource=res,
            start_ns=int(sp.get("startTimeUnixNano", 0)),
            end_ns=int(sp.get("endTimeUnixNano", 0)),
        )
        for res, sp in _otlp_items(path, "resourceSpans", "scopeSpans", "spans")
    ]


def read_logs(path: Path) -> list[LogRecord]:
    """All log records in a logs stand-in output file (OTLP/JSON lines).

    Example::

        bodies = [r.body for r in read_logs(loki.output)]
    """
    return [
        LogRecord(
            trace_id=lr.get("traceId", ""),
            span_id=lr.get("spanId", ""),
            body=_any_value(lr.get("body", {})),
            severity_number=int(lr.get("severityNumber", 0)),
            severity_text=lr.get("severityText", ""),
            attributes=_attrs(lr.get("attributes", [])),
            resource=res,
        )
        for res, lr in _otlp_items(path, "resourceLogs", "scopeLogs", "logRecords")
    ]
