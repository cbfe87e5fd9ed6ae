"""The Collector (bin/otelcol-apotel) with our shipped config, on one core, under a Python load generator.

Compares, in the same run, ``collector-config/config.yaml`` (memory_limiter, redaction, truncation,
span_metrics, tail_sampling at 100 %, persistent queue) against a minimal pass-through config
(otlp -> otlp, no processors) on the same binary. Both run with ``GOMAXPROCS=1`` and are pinned to CPU 0
with ``taskset`` (when present); the load generator (several processes, pre-built OTLP/gRPC requests with
fresh trace ids, 10 spans per trace) and the receiving end run on the other CPUs.

Reported per config: spans/s accepted by the ``otlp`` receiver, spans/s delivered to the traces backend
(``otelcol_exporter_sent_spans_total``), Collector CPU seconds per second, and peak RSS (VmHWM), over a
measurement window; and accepted spans per CPU-second over the whole run, the Collector drained (every
accepted span and all the CPU spent on it, idle start-up excluded: the number that depends neither on how
hard the generator could push nor on how much CPU a shared machine gave the Collector).
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
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)

WARM_S, MEASURE_S = 2.0, float(os.environ.get("BENCH_COLLECTOR_S", "4"))
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


SHAPES = ("simple", "realistic", "content")
SHAPE_LABEL = {"simple": "5-attribute spans", "realistic": "realistic spans", "content": "realistic + content"}


def _kv(key: str, value: str | int | float | bool | list[str]) -> Any:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v)
                                                                                  for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _resource_realistic(pid: int) -> list[Any]:
    """14 resource attributes, as the demo's backend (SDK defaults + our distro + host/process detectors) sends."""
    return [_kv(k, v) for k, v in (
        ("service.name", "agentpress-backend"), ("service.namespace", "suna"), ("service.version", "0.9.3"),
        ("service.instance.id", f"backend-{pid}-4f6c9a2e"), ("deployment.environment.name", "prod"),
        ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.version", "1.45.2"), ("telemetry.distro.name", "agentpress-otel"),
        ("telemetry.distro.version", "0.1.0"), ("process.pid", pid), ("process.runtime.name", "cpython"),
        ("process.runtime.version", "3.11.7"), ("host.name", "ip-10-0-12-34.ec2.internal"),
    )]


# Content capture (gen_ai.input/output messages, tool arguments/results): prose and JSON a few hundred bytes to
# ~2 KB long, with one SDK redaction tag in it, as our SDK emits them.
_MESSAGES_IN = ('[{"role":"system","parts":[{"type":"text","content":"You are Suna, an autonomous agent. Use the '
                'tools to research, browse and write files. Answer concisely."}]},{"role":"user","parts":[{"type":'
                '"text","content":"Summarise the quarterly report in the workspace and email it to the finance '
                'team; the API key is [REDACTED:api_key:9f2c41d0]. Include revenue 2026 Q3 and the top 5 '
                'customers by spend, as a table."}]}]') * 3
_MESSAGES_OUT = ('[{"role":"assistant","parts":[{"type":"text","content":"I will read the report first, then '
                 'draft the summary. Revenue for Q3 2026 was 4.2M USD (+12% QoQ); the top customers are listed '
                 'below."},{"type":"tool_call","id":"call_7Qx2","name":"read_file","arguments":{"path":'
                 '"/workspace/reports/q3-2026.pdf"}}],"finish_reason":"tool_call"}]')
_TOOL_ARGS = '{"path":"/workspace/reports/q3-2026.pdf","pages":[1,2,3,4,5,6,7,8],"format":"markdown"}'
_TOOL_RESULT = ("# Q3 2026 report\n\nRevenue: 4.2M USD (+12% QoQ). Gross margin 71%. Top customers: Acme Corp "
                "(412k), Globex (301k), Initech (288k), Umbrella (190k), Hooli (177k).\n") * 6


def _trace_realistic(t: int, *, content: bool) -> list[tuple[str, int, list[Any], int]]:
    """One agent request: (name, kind, attributes, duration ns) for 10 spans, 8-17 attributes each.

    Shapes follow what the demo (FastAPI + AgentPress + LiteLLM + Redis) exports: a server span, the agent run,
    three LLM calls, two tool calls, a Redis call, an outbound HTTP call and a database call.
    """
    ids = {"agentpress.project.id": f"proj-{t % 7:04d}", "agentpress.thread.id": f"thread-{t:06d}-8c1e",
           "agentpress.agent_run.id": f"run-{t:06d}-a41f"}
    server = [("http.request.method", "POST"), ("http.route", "/api/thread/{thread_id}/agent/start"),
              ("url.path", f"/api/thread/thread-{t:06d}-8c1e/agent/start"), ("url.scheme", "https"),
              ("http.response.status_code", 200), ("server.address", "api.suna.so"), ("server.port", 443),
              ("network.protocol.version", "1.1"), ("client.address", "10.0.3.17"),
              ("user_agent.original", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15"),
              ("user.id", f"user-{t % 97:05d}"), ("agentpress.request.id", f"req-{t:08x}"),
              *ids.items()]  # 15
    agent = [("gen_ai.operation.name", "invoke_agent"), ("gen_ai.agent.name", "suna-default"),
             ("gen_ai.conversation.id", f"thread-{t:06d}-8c1e"), ("agentpress.request.id", f"req-{t:08x}"),
             ("user.id", f"user-{t % 97:05d}"), *ids.items()]  # 8

    def llm(i: int) -> list[tuple[str, Any]]:
        a: list[tuple[str, Any]] = [
            ("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "gpt-5-mini"), ("gen_ai.response.model", "gpt-5-mini-2026-08-07"),
            ("gen_ai.response.id", f"chatcmpl-{t:08x}{i}"), ("gen_ai.usage.input_tokens", 812 + 97 * i),
            ("gen_ai.usage.output_tokens", 143 + i), ("gen_ai.response.finish_reasons", ["tool_calls"]),
            ("gen_ai.request.temperature", 0.2), ("gen_ai.request.max_tokens", 4096),
            ("gen_ai.request.stream", True), ("gen_ai.response.time_to_first_chunk", 0.412),
            ("server.address", "api.openai.com"), ("server.port", 443), ("agentpress.llm.cost_usd", 0.00131),
            ("agentpress.thread.id", ids["agentpress.thread.id"]),
            ("agentpress.agent_run.id", ids["agentpress.agent_run.id"])]  # 17
        if content:
            a += [("gen_ai.input.messages", _MESSAGES_IN), ("gen_ai.output.messages", _MESSAGES_OUT)]
        return a

    def tool(name: str) -> list[tuple[str, Any]]:
        a: list[tuple[str, Any]] = [
            ("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", name), ("gen_ai.tool.type", "function"),
            ("gen_ai.tool.call.id", f"call_{t:06d}{name[:3]}"), *ids.items(),
            ("agentpress.tool.duration_ms", 38)]  # 8
        if content:
            a += [("gen_ai.tool.call.arguments", _TOOL_ARGS), ("gen_ai.tool.call.result", _TOOL_RESULT)]
        return a

    redis = [("db.system.name", "redis"), ("db.operation.name", "XADD"), ("db.namespace", "0"),
             ("db.query.text", f"XADD agent_run:run-{t:06d}-a41f:responses * ?"), ("server.address", "redis"),
             ("server.port", 6379), ("network.peer.address", "10.0.5.4"), ("network.peer.port", 6379)]  # 8
    http_out = [("http.request.method", "GET"), ("url.full", "https://api.tavily.com/search?q=quarterly"),
                ("server.address", "api.tavily.com"), ("server.port", 443), ("http.response.status_code", 200),
                ("network.protocol.version", "1.1"), ("agentpress.thread.id", ids["agentpress.thread.id"]),
                ("agentpress.request.id", f"req-{t:08x}")]  # 8
    db = [("db.system.name", "postgresql"), ("db.namespace", "postgres"), ("db.operation.name", "SELECT"),
          ("db.collection.name", "messages"), ("db.query.text", "SELECT * FROM messages WHERE thread_id = $1"),
          ("server.address", "db.supabase.co"), ("server.port", 5432), ("db.response.returned_rows", 42),
          *ids.items()]  # 11
    ms = 1_000_000
    return [
        ("POST /api/thread/{thread_id}/agent/start", 2, [_kv(k, v) for k, v in server], 1900 * ms),
        ("invoke_agent suna-default", 1, [_kv(k, v) for k, v in agent], 1850 * ms),
        ("chat gpt-5-mini", 3, [_kv(k, v) for k, v in llm(0)], 620 * ms),
        ("execute_tool read_file", 1, [_kv(k, v) for k, v in tool("read_file")], 38 * ms),
        ("chat gpt-5-mini", 3, [_kv(k, v) for k, v in llm(1)], 540 * ms),
        ("execute_tool web_search", 1, [_kv(k, v) for k, v in tool("web_search")], 210 * ms),
        ("GET", 3, [_kv(k, v) for k, v in http_out], 190 * ms),
        ("chat gpt-5-mini", 3, [_kv(k, v) for k, v in llm(2)], 480 * ms),
        ("XADD", 3, [_kv(k, v) for k, v in redis], 1 * ms),
        ("SELECT postgres.messages", 3, [_kv(k, v) for k, v in db], 4 * ms),
    ]


def _template(shape: str = "simple") -> Any:
    """One pre-built export request: TRACES_PER_REQ traces of SPANS_PER_TRACE spans (ids are filled per send)."""
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    req = trace_service_pb2.ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    if shape == "simple":
        rs.resource.attributes.extend([_kv("service.name", "bench-loadgen"),
                                       _kv("service.instance.id", f"gen-{os.getpid()}")])
    else:
        rs.resource.attributes.extend(_resource_realistic(os.getpid()))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench" if shape == "simple" else "agentpress_otel"
    now = time.time_ns()
    for t in range(TRACES_PER_REQ):
        if shape == "simple":
            spans = [("chat gpt-5-mini" if i % 2 else "POST /api/thread/{thread_id}/agent/start", 3 if i % 2 else 2,
                      [_kv("http.route", "/api/thread/{thread_id}/agent/start"), _kv("gen_ai.operation.name", "chat"),
                       _kv("gen_ai.request.model", "gpt-5-mini"), _kv("agentpress.thread.id", f"t-{t}"),
                       _kv("gen_ai.usage.input_tokens", 812)], 1_500_000) for i in range(SPANS_PER_TRACE)]
        else:
            spans = _trace_realistic(t, content=shape == "content")
        root = b""
        for i, (name, kind, attrs, dur) in enumerate(spans):
            s = ss.spans.add()
            s.name, s.kind = name, kind
            s.span_id = random.randbytes(8)
            if shape != "simple":  # a real tree: the server span is the root, the rest its descendants
                if i == 0:
                    root = s.span_id
                else:
                    s.parent_span_id = root
            s.start_time_unix_nano = now
            s.end_time_unix_nano = now + dur
            s.attributes.extend(attrs)
    return req


def _generator(endpoint: str, stop_at: float, counter: Any, shape: str) -> None:
    """One load-generator process: send pre-built requests (fresh trace ids each time) until ``stop_at``."""
    import grpc

    req = _template(shape)
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



def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, peak RSS bytes) of ``pid`` from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return cpu, hwm


def _shipped_go_env() -> dict[str, str]:
    """The Go runtime settings the shipped gateway runs with (docker-compose.yml's otel-collector service, defaults
    resolved), so the benchmark measures what users run. ``BENCH_COLLECTOR_GO_ENV`` (``K=V,K=V``) overrides."""
    import re

    import yaml

    svc = yaml.safe_load((HERE.parent / "docker-compose.yml").read_text())["services"]["otel-collector"]
    env = {k: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(v)) for k, v in svc.get("environment", {}).items()
           if k.startswith("GO")}
    for item in filter(None, os.environ.get("BENCH_COLLECTOR_GO_ENV", "").split(",")):
        k, _, v = item.partition("=")
        env[k] = v
    return env


def _drain(sample: Any, *, quiet_s: float = 3.0, timeout: float = 90.0) -> tuple[float, float, float, float]:
    """Wait until the Collector has exported what it accepted (or its sent count stops moving for ``quiet_s``,
    longer than the benchmark's 1 s decision wait, batch and queue flush), then return the last sample."""
    last = sample()
    still_since, deadline = time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = sample()
        if cur[2] >= cur[0] > 0:
            return cur
        if cur[2] != last[2]:
            still_since = time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            return cur
        last = cur
    return last


def _pin(pid: int, cpus: str) -> bool:
    taskset = shutil.which("taskset")
    if taskset is None:
        return False
    r = subprocess.run([taskset, "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)
    return r.returncode == 0


def run_one(kind: str, shape: str, sink_grpc: str, null_url: str) -> dict[str, float]:
    from agentpress_otel._assets import deploy_file
    from agentpress_otel._harness import collector as col_mod
    from agentpress_otel._harness._proc import free_port

    env = {
        "GOMAXPROCS": "1",
        **_shipped_go_env(),
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": os.environ.get("BENCH_COLLECTOR_SAMPLING", "100"),  # 100: whole path
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
        ports = {k: free_port() for k in ("grpc", "http", "health", "metrics")}
        env.update({
            "OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['grpc']}",
            "OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(ports["metrics"]),
            "OTELCOL_TEMPO_ENDPOINT": sink_grpc,
        })
        if kind == "agent":  # the shipped agent tier; its one "gateway" is the sink (an IP resolves to itself)
            cfg = deploy_file("collector-config/agent.yaml")
            host, _, port = sink_grpc.rpartition(":")
            env.update({"OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['http']}", "OTELCOL_LB_DNS_HOSTNAME": host,
                        "OTELCOL_LB_DNS_PORT": port, "OTELCOL_GATEWAY_ENDPOINT": sink_grpc,
                        "OTELCOL_STORAGE_DIR": str(wd / "queue")})
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

        def sample() -> tuple[float, float, float, float]:
            # Recent Collectors drop the _total suffix; read both spellings.
            acc = sum(col.metric_sum(n, receiver="otlp") for n in
                      ("otelcol_receiver_accepted_spans", "otelcol_receiver_accepted_spans_total"))
            ref = sum(col.metric_sum(n, receiver="otlp") for n in
                      ("otelcol_receiver_refused_spans", "otelcol_receiver_refused_spans_total"))
            exporter = "load_balancing" if kind == "agent" else "otlp_grpc/tempo"
            sent = sum(col.metric_sum(n, exporter=exporter) for n in
                       ("otelcol_exporter_sent_spans", "otelcol_exporter_sent_spans_total"))
            cpu, _ = _proc_stats(pid)
            return acc, ref, sent, cpu

        idle = sample()  # before any load: start-up CPU is not the pipeline's
        stop_at = time.time() + WARM_S + MEASURE_S + 1.5
        gens = [ctx.Process(target=_generator, args=(f"127.0.0.1:{col.grpc_port}", stop_at, counter, shape))
                for _ in range(GEN_PROCS)]
        for g in gens:
            g.start()
            if pinned and g.pid is not None and (os.cpu_count() or 1) > 1:
                _pin(g.pid, f"1-{(os.cpu_count() or 2) - 1}")
        time.sleep(WARM_S + 1.0)  # spawn + imports + warm-up
        t0, s0 = time.monotonic(), sample()
        time.sleep(MEASURE_S)
        t1, s1 = time.monotonic(), sample()
        for g in gens:
            g.join(timeout=30)
        drained = _drain(sample)
        _, hwm = _proc_stats(pid)
        dt = t1 - t0
        acc, ref, sent, cpu = ((b - a) / dt for a, b in zip(s0, s1, strict=True))
        # Spans per CPU-second over the whole run: every accepted span and ALL the CPU spent on it (receive through
        # export, tail-sampling wait and queue included), idle start-up excluded. A window of accepted/CPU alone
        # mis-states it when the Collector is starved on a shared machine: work accepted in the window is finished
        # after it (seen: 16k to 52k for one config between runs).
        total_acc, total_cpu = drained[0] - idle[0], drained[3] - idle[3]
        out = {"accepted_per_s": acc, "refused_per_s": ref, "delivered_per_s": sent, "cpu_per_s": cpu,
               "spans_per_cpu_s": total_acc / total_cpu if total_cpu > 0 else float("nan"),
               "spans_per_cpu_s_window": acc / cpu if cpu > 0 else float("nan"), "rss_peak_mib": hwm / 2**20,
               "delivered_total": drained[2] - idle[2], "accepted_total": total_acc,
               "offered_total": float(counter.value), "pinned": float(pinned)}
        print(f"{kind:8} {shape:9} accepted {acc:9.0f}/s  refused {ref:7.0f}/s  delivered {sent:9.0f}/s  "
              f"cpu {cpu:4.2f}  per-cpu-s {out['spans_per_cpu_s']:7.0f} "
              f"(window {out['spans_per_cpu_s_window']:7.0f})  delivered/accepted "
              f"{out['delivered_total']:.0f}/{total_acc:.0f}  rss-peak {out['rss_peak_mib']:6.1f} MiB", flush=True)
        return out
    finally:
        col.stop()


def main() -> None:
    from _common import report
    from agentpress_otel._harness._proc import ComponentMissing
    from harness.null_http import NullHTTP
    from harness.otlp_sink import OTLPSink

    null = ThreadingHTTPServer(("127.0.0.1", 0), NullHTTP)
    threading.Thread(target=null.serve_forever, daemon=True).start()
    null_url = f"http://127.0.0.1:{null.server_address[1]}"
    shapes = [s for s in os.environ.get("BENCH_COLLECTOR_SHAPES", ",".join(SHAPES)).split(",") if s in SHAPES]
    results: dict[tuple[str, str], list[dict[str, float]]] = {(k, s): [] for k in ("minimal", "ours") for s in shapes}
    agent_tier = "realistic" in shapes and os.environ.get("BENCH_COLLECTOR_AGENT", "1") == "1"
    if agent_tier:
        results["agent", "realistic"] = []
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
                for shape in shapes:
                    for kind in ("minimal", "ours", "agent"):
                        if (kind, shape) in results:
                            results[kind, shape].append(run_one(kind, shape, sink_grpc, null_url))
            stop.set()
    except ComponentMissing as exc:
        print(f"bench_collector skipped: {exc}")
        report("collector", [])
        return
    finally:
        null.shutdown()

    def med(kind: str, shape: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind, shape])

    def delivered_all(shape: str) -> bool:
        # A cheap pipeline that loses data is no result: at 100 % sampling every accepted span must reach the sink.
        if os.environ.get("BENCH_COLLECTOR_SAMPLING", "100") != "100":
            return True
        lost = [r["accepted_total"] - r["delivered_total"] for r in results["ours", shape]]
        if any(lost):
            print(f"bench_collector: {shape}: spans accepted but not delivered per repeat: {lost}")
        return not any(lost)

    rows = []
    for shape in shapes:
        # The goal on realistic spans is 2x what the shipped config did before issue 17 (11.4k/s; 8.1k/s with
        # content); the 5-attribute shape keeps the sizing guide's figure.
        goal_value = 10000 if shape == "simple" else 25000 if shape == "realistic" else 16000
        for key, label, unit in (
            ("accepted_per_s", "spans/s accepted", "/s"),
            ("delivered_per_s", "spans/s delivered to backend", "/s"),
            ("spans_per_cpu_s", "spans accepted per CPU-second", "/s"),
            ("cpu_per_s", "CPU (cores busy)", ""),
            ("rss_peak_mib", "peak RSS", "MiB"),
        ):
            if shape != "realistic" and key in ("accepted_per_s", "delivered_per_s", "cpu_per_s"):
                continue  # keep the table short: the per-CPU-second figure is the one that carries over
            ours, base = med("ours", shape, key), med("minimal", shape, key)
            graded = key == "spans_per_cpu_s"
            rows.append({"name": f"{label}, {SHAPE_LABEL[shape]}, ours vs pass-through", "value": ours,
                         "unit": unit, "baseline": base, "ratio": ours / base if base else float("nan"),
                         "goal": f">= {goal_value}/s" if graded else "",
                         "pass": (ours >= goal_value and delivered_all(shape)) if graded else None})
    if agent_tier:
        agent, base = med("agent", "realistic", "spans_per_cpu_s"), med("minimal", "realistic", "spans_per_cpu_s")
        rows.append({"name": "agent tier (agent.yaml) spans per CPU-second, realistic, vs pass-through",
                     "value": agent, "unit": "/s", "baseline": base, "ratio": agent / base if base else float("nan"),
                     "goal": "", "pass": None})
        rows.append({"name": "agent tier CPU per span, realistic", "value": 1e6 / agent if agent else float("nan"),
                     "unit": "us", "baseline": None, "ratio": None, "goal": "", "pass": None})
    report("collector", rows, details={f"{k}/{s}": v for (k, s), v in results.items()})


if __name__ == "__main__":
    main()
