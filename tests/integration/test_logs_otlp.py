"""End to end: an app process logs through stdlib and structlog inside a thread context and a span;
records travel over real OTLP (gRPC and HTTP) to a receiver on loopback, and as JSON lines to stdout.
A planted secret sent through every path never appears in anything exported.

The receivers are minimal in-test OTLP servers (grpc LogsService/TraceService, and an HTTP server
decoding ExportLogsServiceRequest/ExportTraceServiceRequest); the app runs as a real child process.
"""

from __future__ import annotations

import gzip
import json
import sys
import threading
import zlib
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from agentpress_otel._harness._proc import ManagedProcess, wait_until

pytestmark = pytest.mark.integration

SECRET = "sk-proj-" + "Pl4nt3d" * 7
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLTQyIiwicm9sZSI6ImF1dGhlbnRpY2F0ZWQifQ.cGxhbnRlZC1zaWduYXR1cmUtMTIz"


class Received:
    """Everything a receiver got: raw payloads (for the secret scan) and decoded requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.raw: list[bytes] = []
        self.logs: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def add(self, kind: str, raw: bytes) -> None:
        with self.lock:
            self.raw.append(raw)
            if kind == "logs":
                self.logs.append(logs_service_pb2.ExportLogsServiceRequest.FromString(raw))
            else:
                self.traces.append(trace_service_pb2.ExportTraceServiceRequest.FromString(raw))

    def span_attributes(self, name: str) -> list[dict[str, Any]]:
        """Attributes of every received span called ``name``."""
        out = []
        with self.lock:
            for req in self.traces:
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        out.extend({a.key: _any(a.value) for a in sp.attributes} for sp in ss.spans if sp.name == name)
        return out

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            for req in self.logs:
                for rl in req.resource_logs:
                    for sl in rl.scope_logs:
                        for lr in sl.log_records:
                            out.append(
                                {
                                    "body": lr.body.string_value,
                                    "trace_id": lr.trace_id.hex(),
                                    "span_id": lr.span_id.hex(),
                                    "scope": sl.scope.name,
                                    "severity": lr.severity_text,
                                    "attrs": {a.key: _any(a.value) for a in lr.attributes},
                                }
                            )
        return out


def _any(v: Any) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@pytest.fixture
def grpc_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.add("logs", request.SerializeToString())
            return logs_service_pb2.ExportLogsServiceResponse()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request: Any, context: Any) -> Any:
            got.add("traces", request.SerializeToString())
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", got
    finally:
        server.stop(grace=None)


@pytest.fixture
def http_receiver() -> Iterator[tuple[str, Received]]:
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            enc = self.headers.get("Content-Encoding", "")
            if enc == "gzip":
                body = gzip.decompress(body)
            elif enc == "deflate":
                body = zlib.decompress(body)
            if self.path == "/v1/logs":
                got.add("logs", body)
                resp = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            elif self.path == "/v1/traces":
                got.add("traces", body)
                resp = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            else:
                resp = b""
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(resp)))
            self.end_headers()
            self.wfile.write(resp)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


APP = r"""
import json, logging, sys
import structlog
from agentpress_otel._setup import instrument
from agentpress_otel._context import thread_context
from agentpress_otel.genai import llm_call

SECRET, JWT = sys.argv[3], sys.argv[4]


class Client:  # an SDK client object whose repr shows its key
    def __repr__(self):
        return f"Client(api_key={SECRET})"


tel = instrument(service_name="logs-it", endpoint=sys.argv[1], protocol=sys.argv[2], log_json=True,
                 metrics=False, integrations=["logging", "structlog"], log_level="DEBUG")
# AgentPress configures structlog at import time, possibly after instrument(): the chain still gets ours.
structlog.configure(
    processors=[structlog.contextvars.merge_contextvars, structlog.stdlib.add_log_level,
                structlog.processors.dict_tracebacks, structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer()],
    logger_factory=structlog.PrintLoggerFactory(sys.stdout),
    cache_logger_on_first_use=True,
)
log = logging.getLogger("agentpress.run")
slog = structlog.get_logger()
tracer = tel.tracer_provider.get_tracer("it")
with thread_context(project_id="p-1", thread_id="t-1"):
    with tracer.start_as_current_span("agent_run") as span:
        sc = span.get_span_context()
        print(json.dumps({"marker": "ids", "trace_id": f"{sc.trace_id:032x}", "span_id": f"{sc.span_id:016x}"}),
              flush=True)
        log.info("stdlib hello %s", "world", extra={"tool": "web", "note": f"secret {SECRET}"})
        log.warning(f"message with {SECRET}")
        # extras that are not strings: the encoders would stringify them after redaction
        objects = {"payload": SECRET.encode(), "error": ValueError(f"auth failed for {SECRET}"), "client": Client()}
        log.info("stdlib objects", extra=objects)
        span.set_attribute("url.full", f"http://h/api/agent-run/r-1/stream?token={JWT}")
        span.set_attribute("http.request.header.authorization", f"Bearer {JWT}")
        span.set_attribute("gen_ai.input.messages", json.dumps([{"role": "user", "content": f"key {SECRET}"}]))
        # LLM content, captured by the GenAI span helper itself (no redaction by the caller)
        with llm_call(model="gpt-4o", provider="openai", capture_content=True,
                      messages=[{"role": "user", "content": f"my key is {SECRET}, token {JWT}"}]) as call:
            call.set_output_messages([{"role": "assistant", "content": f"the model said {SECRET}"}])
        structlog.contextvars.bind_contextvars(thread_id="t-1", agent_run_id="r-1")
        slog.info("structlog hello", api_key=SECRET, detail=f"url ?token={JWT}")
        slog.info("structlog objects", **objects)
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError as exc:
            log.exception("boom")
            span.record_exception(exc)
            slog.exception("structlog boom")
print(json.dumps({"marker": "done"}), flush=True)
tel.shutdown(timeout_s=10)
"""


def _run_app(endpoint: str, protocol: str, tmp_path: Path) -> tuple[list[dict[str, Any]], str]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    proc = ManagedProcess(
        "logs-app",
        [sys.executable, str(script), endpoint, protocol, SECRET, JWT],
        env={"OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_BSP_SCHEDULE_DELAY": "100"},
        log_dir=tmp_path,
    )
    proc.start()
    try:
        wait_until(lambda: not proc.running, timeout=60, what="app exit")
    finally:
        proc.stop()
    out = proc.log_tail(10_000)
    assert proc.proc is not None and proc.proc.returncode == 0, out
    lines = []
    for line in out.splitlines():
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
    return lines, out


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_logs_over_real_otlp(protocol: str, grpc_receiver: Any, http_receiver: Any, tmp_path: Path) -> None:
    """Logs reach a real OTLP receiver with trace, span and ids over each protocol."""
    endpoint, got = grpc_receiver if protocol == "grpc" else http_receiver
    lines, out = _run_app(endpoint, protocol, tmp_path)
    ids = next(x for x in lines if x.get("marker") == "ids")
    wait_until(lambda: len(got.log_records()) >= 5 and got.traces, timeout=15, what="OTLP data")
    recs = got.log_records()

    def one(body: str) -> dict[str, Any]:
        found = [r for r in recs if r["body"] == body]
        assert found, (body, [r["body"] for r in recs])
        return found[0]

    bodies = ("stdlib hello world", "structlog hello", "boom", "structlog boom", "stdlib objects", "structlog objects")
    for body in bodies:
        r = one(body)
        assert r["trace_id"] == ids["trace_id"] and r["span_id"] == ids["span_id"], body
        assert r["attrs"]["agentpress.project.id"] == "p-1", body
        assert r["attrs"]["agentpress.thread.id"] == "t-1", body
    assert one("stdlib hello world")["attrs"]["tool"] == "web"
    assert one("stdlib hello world")["scope"] == "agentpress.run"
    assert one("structlog hello")["attrs"]["agentpress.agent_run.id"] == "r-1"
    boom = one("boom")["attrs"]
    assert boom["exception.type"] == "RuntimeError" and "Traceback" in boom["exception.stacktrace"]
    assert one("structlog boom")["attrs"]["exception.type"] == "RuntimeError"

    # the same stdlib record as a JSON line on stdout
    doc = next(x for x in lines if x.get("message") == "stdlib hello world")
    assert doc["trace_id"] == ids["trace_id"] and doc["span_id"] == ids["span_id"]
    assert doc["project_id"] == "p-1" and doc["thread_id"] == "t-1" and doc["logger"] == "agentpress.run"
    assert doc["level"] == "info" and doc["extra"]["tool"] == "web"
    # structlog renders its own line, with our ids and trace ids added
    sdoc = next(x for x in lines if x.get("event") == "structlog hello")
    assert sdoc["trace_id"] == ids["trace_id"] and sdoc["project_id"] == "p-1" and sdoc["agent_run_id"] == "r-1"

    # non-string extras arrive as redacted text, over OTLP and on stdout, from both logging APIs
    for body in ("stdlib objects", "structlog objects"):
        a = one(body)["attrs"]
        assert a["payload"].startswith("[REDACTED:openai_key:"), (body, a)
        assert a["error"].startswith("ValueError: auth failed for [REDACTED:openai_key:"), (body, a)
        assert a["client"].startswith("Client(api_key=[REDACTED:openai_key:"), (body, a)
    odoc = next(x for x in lines if x.get("message") == "stdlib objects")
    assert odoc["extra"]["client"].startswith("Client(api_key=[REDACTED:openai_key:")
    sodoc = next(x for x in lines if x.get("event") == "structlog objects")
    assert sodoc["payload"].startswith("[REDACTED:openai_key:")

    # LLM content went through llm_call's capture: recorded, and redacted
    wait_until(lambda: got.span_attributes("chat gpt-4o"), timeout=15, what="the LLM span")
    (llm,) = got.span_attributes("chat gpt-4o")
    assert "[REDACTED:openai_key:" in llm["gen_ai.input.messages"] and "[REDACTED:jwt:" in llm["gen_ai.input.messages"]
    assert "the model said [REDACTED:openai_key:" in llm["gen_ai.output.messages"]

    # the planted secret: not in any OTLP payload (logs and spans), not on stdout
    blob = b"".join(got.raw)
    assert got.traces, "no spans received"
    assert SECRET.encode() not in blob and JWT.encode() not in blob
    assert SECRET not in out and JWT not in out
    assert b"[REDACTED:openai_key:" in blob and b"[REDACTED:jwt:" in blob


FORK_APP = r"""
import logging, os, sys
from agentpress_otel._setup import instrument
from agentpress_otel._context import thread_context

tel = instrument(service_name="logs-fork", endpoint=sys.argv[1], protocol="http/protobuf", metrics=False,
                 traces=False, integrations=["logging"], log_level="INFO")
log = logging.getLogger("agentpress.fork")
log.info("before fork")
pid = os.fork()
if pid == 0:  # the child (gunicorn --preload worker): the pipeline restarts its worker thread here
    with thread_context(thread_id="t-child"):
        log.info("from child")
    tel.shutdown(timeout_s=10)
    os._exit(0)
os.waitpid(pid, 0)
with thread_context(thread_id="t-parent"):
    log.info("from parent")
tel.shutdown(timeout_s=10)
"""


def test_logs_survive_fork(http_receiver: Any, tmp_path: Path) -> None:
    """Logging keeps working in a forked child with its own ids, and the child does not re-send the parent's."""
    endpoint, got = http_receiver
    script = tmp_path / "fork_app.py"
    script.write_text(FORK_APP)
    proc = ManagedProcess(
        "logs-fork", [sys.executable, str(script), endpoint], env={"OTEL_BLRP_SCHEDULE_DELAY": "100"}, log_dir=tmp_path
    )
    proc.start()
    try:
        wait_until(lambda: not proc.running, timeout=60, what="app exit")
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()
    wait_until(
        lambda: {"from child", "from parent"} <= {r["body"] for r in got.log_records()},
        timeout=15,
        what="records from parent and child",
    )
    by_body = {r["body"]: r for r in got.log_records()}
    assert by_body["from child"]["attrs"]["agentpress.thread.id"] == "t-child"
    assert by_body["from parent"]["attrs"]["agentpress.thread.id"] == "t-parent"
    assert [r["body"] for r in got.log_records()].count("before fork") == 1  # the child did not re-send it
