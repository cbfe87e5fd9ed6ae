"""The Collector (bin/otelcol-apotel) with our shipped config, on one core, under a Python load generator.

Compares, in the same run, ``collector-config/config.yaml`` (memory_limiter, redaction, truncation,
span_metrics, tail_sampling at 100 %, persistent queue) against a minimal pass-through config
(otlp -> otlp, no processors) on the same binary. Both run with ``GOMAXPROCS=1`` and are pinned to CPU 0
with ``taskset`` (when present); the load generator (several processes, pre-built OTLP/gRPC requests with
fresh trace ids, 10 spans per trace) and the receiving end run on the other CPUs.

Reported per config: spans/s accepted by the ``otlp`` receiver, spans/s delivered to the traces backend
(``otelcol_exporter_sent_spans_total``), Collector CPU seconds per second, accepted spans per CPU-second
(the number that does not depend on how hard the generator could push), and peak RSS (VmHWM).
Reference: the Collector's old sizing guide says ~10-12k spans/s per CPU with tail sampling off.

Run: ``.venv/bin/python benchmarks/bench_collector.py`` (< 60 s).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)

WARM_S, MEASURE_S = 2.0, float(os.environ.get("BENCH_COLLECTOR_S", "6"))
GEN_PROCS = int(os.environ.get("BENCH_COLLECTOR_PROCS", "2"))
SPANS_PER_TRACE, TRACES_PER_REQ, IN_FLIGHT = 10, 50, 8
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

MINIMAL_CONFIG = """
extensions:
  health_check:
    endpoint: ${env:OTELCOL_HEALTH_ENDPOINT}
    path: /health
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:OTELCOL_OTLP_GRPC_ENDPOINT}
exporters:
  otlp_grpc/tempo:
    endpoint: ${env:OTELCOL_TEMPO_ENDPOINT}
    tls:
      insecure: true
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:OTELCOL_METRICS_HOST}
                port: ${env:OTELCOL_METRICS_PORT}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp_grpc/tempo]
"""


def _template() -> Any:
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([
        KeyValue(key="service.name", value=AnyValue(string_value="bench-loadgen")),
        KeyValue(key="service.instance.id", value=AnyValue(string_value=f"gen-{os.getpid()}")),
    ])
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    now = time.time_ns()
    for t in range(TRACES_PER_REQ):
        for i in range(SPANS_PER_TRACE):
            s = ss.spans.add()
            s.name = "chat gpt-5-mini" if i % 2 else "POST /api/thread/{thread_id}/agent/start"
            s.kind = 3 if i % 2 else 2
            s.span_id = random.randbytes(8)
            s.start_time_unix_nano = now
            s.end_time_unix_nano = now + 1_500_000
            s.attributes.extend([
                KeyValue(key="http.route", value=AnyValue(string_value="/api/thread/{thread_id}/agent/start")),
                KeyValue(key="gen_ai.operation.name", value=AnyValue(string_value="chat")),
                KeyValue(key="gen_ai.request.model", value=AnyValue(string_value="gpt-5-mini")),
                KeyValue(key="agentpress.thread.id", value=AnyValue(string_value=f"t-{t}")),
                KeyValue(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=812)),
            ])
    return req


def _generator(endpoint: str, stop_at: float, counter: Any) -> None:
    """One load-generator process: send pre-built requests (fresh trace ids each time) until ``stop_at``."""
    import grpc

    req = _template()
    spans = req.resource_spans[0].scope_spans[0].spans
    call = grpc.insecure_channel(endpoint).unary_unary(EXPORT_METHOD, request_serializer=None,
                                                       response_deserializer=None)
    sent = 0
    inflight: list[Any] = []  # several requests in flight per process, as many SDK clients would have
    while time.time() < stop_at:
        for t in range(TRACES_PER_REQ):
            tid = random.randbytes(16)
            for i in range(SPANS_PER_TRACE):
                spans[t * SPANS_PER_TRACE + i].trace_id = tid
        inflight.append(call.future(req.SerializeToString(), timeout=5))
        while len(inflight) >= IN_FLIGHT or (inflight and inflight[0].done()):
            try:
                inflight.pop(0).result()
                sent += len(spans)
            except grpc.RpcError:
                time.sleep(0.01)  # refused by memory_limiter: back off like an SDK would
    with counter.get_lock():
        counter.value += sent


class _NullHTTP(BaseHTTPRequestHandler):
    """Answers remote-write and OTLP/HTTP posts with 2xx and drops them (the span_metrics/logs side)."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(204)
        self.end_headers()


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, peak RSS bytes) of ``pid`` from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def _pin(pid: int, cpus: str) -> bool:
    taskset = shutil.which("taskset")
    if taskset is None:
        return False
    r = subprocess.run([taskset, "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)
    return r.returncode == 0


def run_one(kind: str, sink_grpc: str, null_url: str) -> dict[str, float]:
    from agentpress_otel._harness import collector as col_mod
    from agentpress_otel._harness._proc import free_port

    env = {
        "GOMAXPROCS": "1",
        "GOMEMLIMIT": "400MiB",
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100",  # deliver everything: we measure the whole path
        "OTELCOL_TAIL_DECISION_WAIT": "1s",
        "OTELCOL_LOG_LEVEL": "warn",
    }
    if kind == "ours":
        col = col_mod.start_collector(traces_endpoint=sink_grpc, logs_endpoint=null_url + "/otlp",
                                      remote_write_url=null_url + "/api/v1/write", env=env)
    else:
        wd = Path(tempfile.mkdtemp(prefix="apotel-bench-col-"))
        cfg = wd / "minimal.yaml"
        cfg.write_text(MINIMAL_CONFIG)
        ports = {k: free_port() for k in ("grpc", "health", "metrics")}
        env.update({
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(ports["metrics"]),
            "OTELCOL_TEMPO_ENDPOINT": sink_grpc,
        })
        col = col_mod.Collector(workdir=wd, storage_dir=wd, env=env, grpc_port=ports["grpc"], http_port=0,
                                browser_port=0, health_port=ports["health"], metrics_port=ports["metrics"],
                                config=cfg)
        col.start()
    try:
        assert col.process is not None and col.process.proc is not None
        pid = col.process.proc.pid
        pinned = _pin(pid, "0")
        ctx = mp.get_context("spawn")  # never fork a process that holds gRPC state
        counter = ctx.Value("q", 0)
        stop_at = time.time() + WARM_S + MEASURE_S + 1.5
        gens = [ctx.Process(target=_generator, args=(f"127.0.0.1:{col.grpc_port}", stop_at, counter))
                for _ in range(GEN_PROCS)]
        for g in gens:
            g.start()
            if pinned and g.pid is not None and (os.cpu_count() or 1) > 1:
                _pin(g.pid, f"1-{(os.cpu_count() or 2) - 1}")
        time.sleep(WARM_S + 1.0)  # spawn + imports + warm-up

        def sample() -> tuple[float, float, float, float]:
            # Recent Collectors drop the _total suffix; read both spellings.
            acc = sum(col.metric_sum(n, receiver="otlp") for n in
                      ("otelcol_receiver_accepted_spans", "otelcol_receiver_accepted_spans_total"))
            ref = sum(col.metric_sum(n, receiver="otlp") for n in
                      ("otelcol_receiver_refused_spans", "otelcol_receiver_refused_spans_total"))
            sent = sum(col.metric_sum(n, exporter="otlp_grpc/tempo") for n in
                       ("otelcol_exporter_sent_spans", "otelcol_exporter_sent_spans_total"))
            cpu, _ = _proc_stats(pid)
            return acc, ref, sent, cpu

        t0, s0 = time.monotonic(), sample()
        time.sleep(MEASURE_S)
        t1, s1 = time.monotonic(), sample()
        for g in gens:
            g.join(timeout=30)
        _, hwm = _proc_stats(pid)
        dt = t1 - t0
        acc, ref, sent, cpu = ((b - a) / dt for a, b in zip(s0, s1, strict=True))
        out = {"accepted_per_s": acc, "refused_per_s": ref, "delivered_per_s": sent, "cpu_per_s": cpu,
               "spans_per_cpu_s": acc / cpu if cpu > 0 else float("nan"), "rss_peak_mib": hwm / 2**20,
               "offered_total": float(counter.value), "pinned": float(pinned)}
        print(f"{kind:8} accepted {acc:9.0f}/s  refused {ref:7.0f}/s  delivered {sent:9.0f}/s  "
              f"cpu {cpu:4.2f}  per-cpu-s {out['spans_per_cpu_s']:9.0f}  rss-peak {out['rss_peak_mib']:6.1f} MiB",
              flush=True)
        return out
    finally:
        col.stop()


def main() -> None:
    from _common import report
    from agentpress_otel._harness._proc import ComponentMissing
    from harness.otlp_sink import OTLPSink

    null = ThreadingHTTPServer(("127.0.0.1", 0), _NullHTTP)
    threading.Thread(target=null.serve_forever, daemon=True).start()
    null_url = f"http://127.0.0.1:{null.server_address[1]}"
    results: dict[str, list[dict[str, float]]] = {"minimal": [], "ours": []}
    repeats = int(os.environ.get("BENCH_REPEATS", "1"))
    try:
        with OTLPSink() as sink:
            stop = threading.Event()

            def drain() -> None:  # keep the receiving end's memory flat: count nothing, keep nothing
                while not stop.wait(0.5):
                    with sink.lock:
                        sink.received.traces.clear()
                        sink.received.headers.clear()

            threading.Thread(target=drain, daemon=True).start()
            sink_grpc = f"127.0.0.1:{sink.grpc_port}"
            for _ in range(repeats):
                for kind in ("minimal", "ours"):
                    results[kind].append(run_one(kind, sink_grpc, null_url))
            stop.set()
    except ComponentMissing as exc:
        print(f"bench_collector skipped: {exc}")
        report("collector", [])
        return
    finally:
        null.shutdown()

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    rows = []
    for key, label, unit in (
        ("accepted_per_s", "spans/s accepted", "/s"),
        ("delivered_per_s", "spans/s delivered to backend", "/s"),
        ("spans_per_cpu_s", "spans accepted per CPU-second", "/s"),
        ("cpu_per_s", "CPU (cores busy)", ""),
        ("rss_peak_mib", "peak RSS", "MiB"),
    ):
        ours, base = med("ours", key), med("minimal", key)
        goal = ">= 10000/s (sizing guide)" if key == "spans_per_cpu_s" else ""
        rows.append({"name": f"{label}, our config vs minimal", "value": ours, "unit": unit,
                     "baseline": base, "ratio": ours / base if base else float("nan"), "goal": goal,
                     "pass": (ours >= 10000) if key == "spans_per_cpu_s" else None})
    report("collector", rows)


if __name__ == "__main__":
    main()
