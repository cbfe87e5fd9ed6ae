"""A minimal real OTLP receiver (gRPC and HTTP/protobuf) on loopback, for tests and ``doctor``.

It decodes every request with the official protobuf classes and keeps them, so tests can assert on
exactly what crossed the wire. Modes let tests simulate a sick Collector: ``fail`` (HTTP 503 with
Retry-After / gRPC UNAVAILABLE) and ``slow`` (delay before answering).
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from agentpress_otel._harness._proc import free_port


@dataclass
class Received:
    traces: list[trace_service_pb2.ExportTraceServiceRequest] = field(default_factory=list)
    metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = field(default_factory=list)
    logs: list[logs_service_pb2.ExportLogsServiceRequest] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


class OTLPSink:
    """Start with :meth:`start`; ``grpc_endpoint`` / ``http_endpoint`` are what exporters point at."""

    def __init__(self, *, keep_alive: bool = False) -> None:
        #: HTTP/1.1 with persistent connections, as the Collector's OTLP/HTTP receiver (Go net/http) answers; off by
        #: default (HTTP/1.0, one connection per request). The benchmarks turn it on so an export's cost does not
        #: include a TCP connect no real deployment pays.
        self.keep_alive = keep_alive
        self.received = Received()
        self.lock = threading.Lock()
        self.mode = "ok"  # "ok" | "fail" | "slow"
        self.delay_s = 0.0
        self.grpc_port = free_port()
        self.http_port = free_port()
        self._grpc: grpc.Server | None = None
        self._http: ThreadingHTTPServer | None = None

    @property
    def grpc_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    # -- views ---------------------------------------------------------------------------------
    def spans(self) -> list[Any]:
        with self.lock:
            reqs = list(self.received.traces)
        return [s for r in reqs for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def span_resources(self) -> list[dict[str, Any]]:
        with self.lock:
            reqs = list(self.received.traces)
        return [attrs_to_dict(rs.resource.attributes) for r in reqs for rs in r.resource_spans]

    def log_records(self) -> list[Any]:
        with self.lock:
            reqs = list(self.received.logs)
        return [lr for r in reqs for rl in r.resource_logs for sl in rl.scope_logs for lr in sl.log_records]

    def metric_names(self) -> set[str]:
        with self.lock:
            reqs = list(self.received.metrics)
        return {m.name for r in reqs for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}

    def iter_metrics(self) -> Iterator[Any]:
        with self.lock:
            reqs = list(self.received.metrics)
        for r in reqs:
            for rm in r.resource_metrics:
                for sm in rm.scope_metrics:
                    yield from sm.metrics

    # -- server --------------------------------------------------------------------------------
    def _gate(self) -> bool:
        """Apply the current mode; False means 'answer with a failure'."""
        if self.mode == "slow":
            time.sleep(self.delay_s)
        return self.mode != "fail"

    def start(self) -> OTLPSink:
        sink = self

        class Traces(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                if not sink._gate():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "sink in fail mode")
                with sink.lock:
                    sink.received.traces.append(request)
                    sink.received.headers.append(dict(context.invocation_metadata()))
                return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                if not sink._gate():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "sink in fail mode")
                with sink.lock:
                    sink.received.metrics.append(request)
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                if not sink._gate():
                    context.abort(grpc.StatusCode.UNAVAILABLE, "sink in fail mode")
                with sink.lock:
                    sink.received.logs.append(request)
                return logs_service_pb2.ExportLogsServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        server.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
        server.start()
        self._grpc = server

        kinds: dict[str, tuple[Any, str]] = {
            "/v1/traces": (trace_service_pb2.ExportTraceServiceRequest, "traces"),
            "/v1/metrics": (metrics_service_pb2.ExportMetricsServiceRequest, "metrics"),
            "/v1/logs": (logs_service_pb2.ExportLogsServiceRequest, "logs"),
        }

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if self.keep_alive else "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding", "").lower() == "gzip":  # the Collector's otlphttp default
                    body = gzip.decompress(body)
                kind = kinds.get(self.path)
                if kind is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")  # no body in any answer; HTTP/1.1 needs it said
                    self.end_headers()
                    return
                if not sink._gate():
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                msg = kind[0]()
                msg.ParseFromString(body)
                with sink.lock:
                    getattr(sink.received, kind[1]).append(msg)
                    sink.received.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), Handler)
        threading.Thread(target=self._http.serve_forever, daemon=True, name="otlp-sink-http").start()
        return self

    def stop(self) -> None:
        if self._grpc is not None:
            self._grpc.stop(grace=0)
            self._grpc = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> OTLPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def any_value(v: Any) -> Any:
    """Decode an OTLP AnyValue into a Python value."""
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attrs_to_dict(attrs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in attrs}
