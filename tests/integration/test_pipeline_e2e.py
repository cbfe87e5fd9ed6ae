"""End to end: the real Collector build with the shipped config (unchanged; ports/paths/timings via OTELCOL_* env),
Collector stand-ins for Tempo (OTLP gRPC -> file) and Loki (OTLP HTTP -> file), and Debian's Prometheus.

Two workloads feed the same pipeline:
* a FastAPI app on the raw OpenTelemetry SDK (no client-side redaction), driven in-process through httpx's ASGI
  transport; its routes emit GenAI `chat` spans and gen_ai.client.token.usage with known token counts, so the
  sampling and metric assertions are exact;
* a FastAPI app set up with ``agentpress_otel.instrument(app)`` calling LiteLLM against the loopback
  OpenAI-compatible server (``_harness/llm_server.py``), in a child process (instrument() is process-wide).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import find_binary
from agentpress_otel._harness.collector import (
    Collector,
    StandIn,
    ensure_collector_binary,
    start_collector,
    start_standin,
)
from agentpress_otel._harness.prometheus import Prometheus
from conftest import need
from harness.pipeline import local_pipeline

pytestmark = pytest.mark.integration

SAMPLING_PERCENT = 25
N_OK = 200  # plain successful /chat traces: subject to the probabilistic share
N_ERR = 20  # /fail -> HTTP 500 -> server span status ERROR: all kept
N_LLM_ERR = 10  # /chat-retry -> 200, but the chat span carries error.type: all kept (llm-errors policy)
N_SLOW = 3  # /slow sleeps past OTELCOL_TAIL_SLOW_MS: all kept
SLOW_MS = 300
COLLECTOR_ENV = {
    "OTELCOL_TAIL_SAMPLING_PERCENTAGE": str(SAMPLING_PERCENT),
    "OTELCOL_TAIL_DECISION_WAIT": "2s",
    "OTELCOL_TAIL_SLOW_MS": str(SLOW_MS),
    "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
    "OTELCOL_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
    "OTELCOL_SERVICEGRAPH_STORE_TTL": "2s",
    "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms",
    "OTELCOL_RETRY_MAX_INTERVAL": "1s",
    "OTELCOL_LOG_LEVEL": "warn",
}
PAGE_ORIGIN = "http://app.test:5173"


def poll(pred: Any, *, timeout: float, what: str, interval: float = 0.3) -> Any:
    """Poll ``pred`` until it returns a truthy value; return it (or fail with ``what``)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last={last!r})")


# ------------------------------------------------------------------------------------------------ the stack


@dataclass
class Stack:
    prom: Prometheus
    tempo: StandIn
    loki: StandIn
    collector: Collector
    workdir: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need(ensure_collector_binary)
    need(lambda: find_binary("prometheus"))
    wd = tmp_path_factory.mktemp("pipeline")
    # Prometheus runs the shipped prometheus.yml with its `otel-collector:8888` target mapped to the Collector.
    with local_pipeline(env=COLLECTOR_ENV, cors_origins=[PAGE_ORIGIN], workdir=wd) as p:
        yield Stack(prom=p.prometheus, tempo=p.tempo, loki=p.loki, collector=p.collector, workdir=wd)


# ------------------------------------------------------------------------------------------------ the workload


@dataclass
class Workload:
    service: str
    trace_ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # route -> trace ids
    thread_ids: dict[str, str] = field(default_factory=dict)  # trace id -> thread id
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


def _run_app_workload(endpoint: str) -> Workload:
    """A FastAPI app on the raw OTel SDK sending all three signals over OTLP gRPC to the Collector."""
    import httpx
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    wl = Workload(service=f"e2e-{uuid.uuid4().hex[:8]}")
    resource = Resource.create({"service.name": wl.service, "service.namespace": "agentpress-tests"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=200)
    )
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=endpoint, insecure=True), export_interval_millis=1000
    )
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(
        BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True), schedule_delay_millis=200)
    )
    logger = logging.getLogger(f"agentpress.e2e.{wl.service}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = LoggingHandler(level=logging.INFO, logger_provider=lp)
    logger.addHandler(handler)

    tracer = tp.get_tracer("e2e.llm")
    tokens = mp.get_meter("e2e.llm").create_histogram(
        "gen_ai.client.token.usage", unit="{token}", description="Tokens used per LLM call"
    )

    def fake_llm(i: int, *, handled_error: bool) -> None:
        # What an LLM integration records: a client `chat {model}` span plus token usage.
        inp, out = 10 + i % 7, 3 + i % 5
        with tracer.start_as_current_span("chat gpt-4o-mini", kind=trace.SpanKind.CLIENT) as span:
            span.set_attribute("gen_ai.operation.name", "chat")
            span.set_attribute("gen_ai.provider.name", "openai")
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            span.set_attribute("gen_ai.usage.input_tokens", inp)
            span.set_attribute("gen_ai.usage.output_tokens", out)
            if handled_error:
                span.set_attribute("error.type", "RateLimitError")  # recovered by a retry: status left UNSET
        common = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        }
        tokens.record(inp, {**common, "gen_ai.token.type": "input"})
        tokens.record(out, {**common, "gen_ai.token.type": "output"})
        wl.input_tokens += inp
        wl.output_tokens += out

    app = FastAPI()

    def remember(route: str, thread: str) -> None:
        ctx = trace.get_current_span().get_span_context()
        tid = format(ctx.trace_id, "032x")
        wl.trace_ids[route].add(tid)
        wl.thread_ids[tid] = thread
        logger.info("handled %s", route, extra={"agentpress.thread.id": thread, "agentpress.project.id": "p-e2e"})

    @app.get("/chat")
    async def chat(i: int, thread: str) -> dict[str, str]:
        remember("/chat", thread)
        fake_llm(i, handled_error=False)
        return {"ok": "yes"}

    @app.get("/chat-retry")
    async def chat_retry(i: int, thread: str) -> dict[str, str]:
        remember("/chat-retry", thread)
        fake_llm(i, handled_error=True)
        return {"ok": "after retry"}

    @app.get("/fail")
    async def fail(i: int, thread: str) -> JSONResponse:
        remember("/fail", thread)
        return JSONResponse({"error": "boom"}, status_code=500)

    @app.get("/slow")
    async def slow(i: int, thread: str) -> dict[str, str]:
        remember("/slow", thread)
        await asyncio.sleep(SLOW_MS / 1000 + 0.15)
        return {"ok": "slow"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"ok": "yes"}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tp, meter_provider=mp)

    plan = [("/chat", N_OK), ("/chat-retry", N_LLM_ERR), ("/fail", N_ERR), ("/slow", N_SLOW), ("/healthz", 20)]

    async def drive() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            for route, n in plan:
                for i in range(n):
                    params = {} if route == "/healthz" else {"i": i, "thread": f"thread-{route.strip('/')}-{i}"}
                    await client.get(route, params=params)
                    wl.requests += route != "/healthz"

    try:
        asyncio.run(drive())
    finally:
        tp.force_flush()
        mp.force_flush()
        lp.force_flush()
        tp.shutdown()
        mp.shutdown()
        lp.shutdown()
        logger.removeHandler(handler)
        FastAPIInstrumentor.uninstrument_app(app)
    return wl


@pytest.fixture(scope="module")
def workload(stack: Stack, app_process: AppProcess) -> Workload:
    del app_process  # started first on purpose: it runs concurrently with this workload
    wl = _run_app_workload(stack.collector.otlp_grpc_endpoint.removeprefix("http://"))
    col = stack.collector
    # Every trace has reached a sampling decision once the tail-sampler has seen them all and decided.
    total = N_OK + N_ERR + N_LLM_ERR + N_SLOW
    poll(
        lambda: (
            col.metric_sum("otelcol_processor_tail_sampling_new_trace_id_received") >= total
            and col.metric_sum("otelcol_processor_tail_sampling_global_count_traces_sampled") >= total
        ),
        timeout=60,
        what="tail sampling decisions",
    )
    return wl


def _app_spans(stack: Stack, wl: Workload) -> list[Any]:
    return [s for s in stack.tempo.spans() if s.resource.get("service.name") == wl.service]


def _kept_traces(stack: Stack, wl: Workload) -> dict[str, set[str]]:
    """route -> trace ids found at the Tempo stand-in (by the server span's http.route)."""
    out: dict[str, set[str]] = defaultdict(set)
    for s in _app_spans(stack, wl):
        if s.kind == 2 and "http.route" in s.attributes:  # SPAN_KIND_SERVER
            out[s.attributes["http.route"]].add(s.trace_id)
    return out


def _settled_kept(stack: Stack, wl: Workload) -> dict[str, set[str]]:
    """Wait until all must-keep traces arrived and the stand-in output stopped growing."""
    poll(lambda: len(_kept_traces(stack, wl)["/fail"]) >= N_ERR, timeout=60, what="error traces at Tempo stand-in")
    prev, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 2.0:
        n = len(_app_spans(stack, wl))
        if n != prev:
            prev, stable_since = n, time.monotonic()
        time.sleep(0.3)
    return _kept_traces(stack, wl)


# ------------------------------------------------------------------------------------------------ traces + sampling


def test_tail_sampling_keeps_errors_slow_llm_errors_and_a_share_of_the_rest(stack: Stack, workload: Workload) -> None:
    """Tail sampling keeps every error, LLM-error and slow trace, drops health checks, and keeps a share of the rest."""
    kept = _settled_kept(stack, workload)
    assert kept["/fail"] == workload.trace_ids["/fail"], "every error trace must be kept"
    assert kept["/chat-retry"] == workload.trace_ids["/chat-retry"], "every trace with an LLM error must be kept"
    assert kept["/slow"] == workload.trace_ids["/slow"], "every slow trace must be kept"
    assert "/healthz" not in kept, "health checks are filtered"
    # Probabilistic share of the rest: binomial(N_OK, p); accept +-4 sigma.
    n, p = N_OK, SAMPLING_PERCENT / 100
    sigma = (n * p * (1 - p)) ** 0.5
    got = len(kept["/chat"])
    assert kept["/chat"] <= workload.trace_ids["/chat"]
    assert abs(got - n * p) <= 4 * sigma, f"kept {got} of {n} ok traces, expected ~{n * p:.0f}"
    # Kept traces are complete: the LLM child span travels with its server span.
    chat_spans = {s.trace_id for s in _app_spans(stack, workload) if s.name == "chat gpt-4o-mini"}
    assert kept["/chat"] <= chat_spans
    # Resource enrichment happened in the Collector, with the library's own default name (one default everywhere).
    from agentpress_otel._config import load_config

    default_env = load_config({}, env={}).environment
    assert default_env == "development", default_env
    assert all(s.resource.get("deployment.environment.name") == default_env for s in _app_spans(stack, workload))


# ------------------------------------------------------------------------------------------------ logs


def test_logs_reach_loki_standin_with_trace_and_thread_ids(stack: Stack, workload: Workload) -> None:
    """Every request's log reaches the Loki stand-in with trace, span and thread ids."""
    def app_logs() -> list[Any]:
        return [r for r in stack.loki.logs() if r.resource.get("service.name") == workload.service]

    logs = poll(
        lambda: (lambda ls: ls if len(ls) >= workload.requests else None)(app_logs()),
        timeout=30,
        what=f"{workload.requests} logs at the Loki stand-in",
    )
    assert len(logs) == workload.requests, "logs are not sampled: one per request"
    for r in logs:
        assert r.trace_id, r
        assert r.span_id, r
        assert r.attributes["agentpress.thread.id"] == workload.thread_ids[r.trace_id]
        assert r.attributes["agentpress.project.id"] == "p-e2e"


# ------------------------------------------------------------------------------------------------ metrics


def test_token_totals_in_prometheus_are_exact(stack: Stack, workload: Workload) -> None:
    """Token totals in Prometheus equal what the workload's LLM calls reported."""
    svc = workload.service
    q_in = f'sum(gen_ai_client_token_usage_sum{{service_name="{svc}", gen_ai_token_type="input"}})'
    q_out = f'sum(gen_ai_client_token_usage_sum{{service_name="{svc}", gen_ai_token_type="output"}})'
    poll(
        lambda: (
            stack.prom.query_value(q_in) == workload.input_tokens
            and stack.prom.query_value(q_out) == workload.output_tokens
        ),
        timeout=30,
        what=f"token totals {workload.input_tokens}/{workload.output_tokens} in Prometheus",
    )
    calls = stack.prom.query_value(f'sum(gen_ai_client_token_usage_count{{service_name="{svc}"}})')
    assert calls == 2 * (N_OK + N_LLM_ERR)  # one input + one output record per LLM call


def test_span_metrics_per_route_count_every_request_before_sampling(stack: Stack, workload: Workload) -> None:
    """Span metrics count every request per route before sampling, with exemplars linking to kept traces."""
    q = (
        f'sum by (http_route) (traces_span_metrics_calls_total{{service_name="{workload.service}", '
        f'span_kind="SPAN_KIND_SERVER"}})'
    )
    expected = {"/chat": N_OK, "/chat-retry": N_LLM_ERR, "/fail": N_ERR, "/slow": N_SLOW}

    def by_route() -> dict[str, float] | None:
        got = {r["metric"].get("http_route", ""): float(r["value"][1]) for r in stack.prom.query(q)}
        return got if got == expected else None

    poll(by_route, timeout=30, what=f"span metrics per route == {expected}")
    errs = stack.prom.query_value(
        f'sum(traces_span_metrics_calls_total{{service_name="{workload.service}", span_kind="SPAN_KIND_SERVER", '
        f'status_code="STATUS_CODE_ERROR"}})'
    )
    assert errs == N_ERR
    hist = stack.prom.query_value(
        f'sum(traces_span_metrics_duration_seconds_count{{service_name="{workload.service}", http_route="/slow"}})'
    )
    assert hist == N_SLOW
    # Exemplars link the latency histogram to traces; error traces are always kept, so their links resolve.
    ex = stack.prom.exemplars(
        f'traces_span_metrics_duration_seconds_bucket{{service_name="{workload.service}", http_route="/fail"}}'
    )
    linked = {e.get("trace_id") for e in ex}
    assert linked, "no exemplars on the span-metrics histogram"
    assert linked <= workload.trace_ids["/fail"]


def test_service_graph_metrics_for_the_tempo_service_map(stack: Stack, workload: Workload) -> None:
    """Grafana's Tempo service map queries traces_service_graph_* in Prometheus; the Collector's service_graph
    connector produces them from all traces, before sampling. Every request of the workload is a root server span:
    an edge from the virtual "user" node to the service, failed when the server span is an error."""
    svc = workload.service
    total = N_OK + N_ERR + N_LLM_ERR + N_SLOW
    q = f'sum(traces_service_graph_request_total{{client="user", server="{svc}"}})'
    poll(lambda: stack.prom.query_value(q) == total, timeout=45,
         what=f"{total} user -> {svc} edges in traces_service_graph_request_total")
    failed = stack.prom.query_value(f'sum(traces_service_graph_request_failed_total{{server="{svc}"}})')
    assert failed == N_ERR
    hist = stack.prom.query_value(f'sum(traces_service_graph_request_server_seconds_count{{server="{svc}"}})')
    assert hist == total


def test_prometheus_scrapes_collector_self_metrics(stack: Stack, workload: Workload) -> None:
    """Prometheus scrapes the Collector's own metrics, which count what it accepted."""
    poll(lambda: stack.prom.query_value('up{job="otel-collector"}') == 1, timeout=30, what="otel-collector target up")
    accepted = poll(
        lambda: stack.prom.query_value(
            'sum({job="otel-collector", __name__=~"otelcol_receiver_accepted_spans(_total)?"})'
        ),
        timeout=30,
        what="otelcol_receiver_accepted_spans scraped",
    )
    assert accepted >= N_OK + N_ERR + N_LLM_ERR + N_SLOW
    assert stack.prom.query('{job="otel-collector", __name__="otelcol_exporter_queue_capacity"}')


# ------------------------------------------------------------------------------------------------ redaction


def test_secrets_from_a_non_redacting_client_do_not_reach_the_backends(stack: Stack) -> None:
    """The Collector masks secrets from a client that does not redact, keeping token counts."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    openai_key = "sk-proj-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    password = "hunter2-" + uuid.uuid4().hex[:12]
    bearer = "Bearer " + uuid.uuid4().hex + uuid.uuid4().hex
    marker = uuid.uuid4().hex
    base = stack.collector.otlp_http_endpoint
    resource = Resource.create({"service.name": f"leaky-{marker[:6]}"})
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs")))
    logger = logging.getLogger(f"leaky.{marker}")
    logger.propagate = False
    handler = LoggingHandler(logger_provider=lp)
    logger.addHandler(handler)
    try:
        with tp.get_tracer("leaky").start_as_current_span("leaky op") as span:
            span.set_attribute("test.marker", marker)
            span.set_attribute("db.password", password)
            span.set_attribute("llm.request.headers", f"x-client: 1; key={openai_key}")
            span.set_attribute("http.request.header.authorization", bearer)
            span.set_attribute("gen_ai.usage.input_tokens", 42)  # must NOT be masked
            span.set_status(Status(StatusCode.ERROR))  # kept by tail sampling, deterministically
            logger.warning("calling provider with %s", openai_key, extra={"password": password, "test.marker": marker})
    finally:
        tp.shutdown()
        lp.shutdown()
        logger.removeHandler(handler)

    spans = poll(
        lambda: [s for s in stack.tempo.spans() if s.attributes.get("test.marker") == marker],
        timeout=30,
        what="leaky span at Tempo stand-in",
    )
    logs = poll(
        lambda: [r for r in stack.loki.logs() if r.attributes.get("test.marker") == marker],
        timeout=30,
        what="leaky log at Loki stand-in",
    )
    attrs = spans[0].attributes
    assert attrs["db.password"] == "****"
    assert "http.request.header.authorization" not in attrs  # dropped outright
    assert openai_key not in attrs["llm.request.headers"]
    assert "x-client: 1" in attrs["llm.request.headers"]
    assert attrs["gen_ai.usage.input_tokens"] == 42
    assert logs[0].attributes["password"] == "****"
    # Nothing anywhere in what the backends received (raw bytes, all records).
    for path in (stack.tempo.output, stack.loki.output):
        raw = path.read_text()
        for secret in (openai_key, password, bearer.split()[1]):
            assert secret not in raw, f"{secret[:10]}... leaked into {path.name}"


_SDK_TAG = re.compile(r"^\[REDACTED:[a-z][a-z0-9_]*:[0-9a-f]{4}\]$")

SDK_REDACTING_APP = textwrap.dedent('''
    import logging, os
    import agentpress_otel
    tel = agentpress_otel.instrument(service_name=os.environ["SVC"], endpoint=os.environ["EP"], traces=False,
                                     metrics=False, logs=True, integrations=["logging"],
                                     redact_hash_key=os.environ["HASH_KEY"])
    log = logging.getLogger("sdk.redacting")
    for i in range(2):  # the same secret twice: the tag must be the same (the correlation redact_hash_key promises)
        log.warning("provider call %d", i, extra={"api_key": os.environ["SECRET"], "test.marker": os.environ["MARKER"]})
    tel.shutdown(timeout_s=10)
''')


def test_an_sdk_redaction_tag_reaches_loki_unchanged(stack: Stack) -> None:
    """The Collector's second-line redaction keeps a value the SDK already replaced by its tag (it would mask a
    credential-named key's value to **** otherwise) and still masks raw secrets (test above)."""
    marker = uuid.uuid4().hex
    secret = "sk-proj-" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))},
           "SVC": f"sdk-redacting-{marker[:6]}", "EP": stack.collector.otlp_grpc_endpoint, "SECRET": secret,
           "MARKER": marker, "HASH_KEY": "pipeline-test-key"}
    proc = subprocess.run([sys.executable, "-c", SDK_REDACTING_APP], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    logs = poll(lambda: [r for r in stack.loki.logs() if r.attributes.get("test.marker") == marker] or None,
                timeout=30, what="SDK-redacted log records at the Loki stand-in")
    tags = {r.attributes.get("api_key") for r in logs}
    assert len(logs) == 2 and len(tags) == 1, [r.attributes for r in logs]
    tag = tags.pop()
    assert isinstance(tag, str) and _SDK_TAG.match(tag), f"the Collector changed the SDK's tag: {tag!r}"
    assert secret not in stack.loki.output.read_text()


def test_doctor_probe_is_accepted_but_not_stored(stack: Stack) -> None:
    """`agentpress-otel doctor` proves the Collector accepts each signal; its probe never reaches Tempo, Loki or
    Prometheus (filter/doctor), so no doctor service or series shows up in the dashboards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    svc = f"doctor-probe-{uuid.uuid4().hex[:6]}"
    proc = subprocess.run([sys.executable, "-m", "agentpress_otel", "doctor", "--endpoint",
                           stack.collector.otlp_grpc_endpoint], env={**env, "OTEL_SERVICE_NAME": svc},
                          capture_output=True, text=True, timeout=90, check=False)
    assert "accepted a test span" in proc.stdout, proc.stdout + proc.stderr
    assert "accepted a test log record" in proc.stdout and "accepted a test metric" in proc.stdout, proc.stdout
    # The Collector received all three (its own counters say so) ...
    poll(lambda: stack.prom.query('sum(otelcol_receiver_accepted_metric_points{receiver="otlp"}) > 0') or None,
         timeout=30, what="metric points accepted")
    # ... and, after the batch timeout and a span-metrics flush, none of it is in a store.
    time.sleep(4)
    assert not [s for s in stack.tempo.spans() if s.resource.get("service.name") == svc]
    assert not [r for r in stack.loki.logs() if r.resource.get("service.name") == svc]
    assert not stack.prom.query(f'{{service_name="{svc}"}}')
    assert not stack.prom.query(f'{{__name__=~"agentpress_doctor.*", service_name="{svc}"}}')


# ------------------------------------------------------------------------------------------------ browser receiver


def _http(url: str, *, method: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return int(err.code), dict(err.headers)


def test_browser_receiver_cors_allowlist(stack: Stack) -> None:
    """The browser receiver grants CORS only to allowed origins and headers."""
    url = f"{stack.collector.browser_endpoint}/v1/traces"
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,traceparent"}
    _, ok_headers = _http(url, method="OPTIONS", headers={"Origin": PAGE_ORIGIN, **pre})
    assert ok_headers.get("Access-Control-Allow-Origin") == PAGE_ORIGIN
    _, bad_headers = _http(url, method="OPTIONS", headers={"Origin": "https://evil.example", **pre})
    assert "Access-Control-Allow-Origin" not in bad_headers, "a disallowed origin must get no CORS grant"
    # Headers outside the allowlist are not granted either.
    _, hdr = _http(
        url,
        method="OPTIONS",
        headers={
            "Origin": PAGE_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert "authorization" not in hdr.get("Access-Control-Allow-Headers", "").lower()


def test_browser_receiver_cors_is_enforced_by_browsers_only(stack: Stack) -> None:
    """What docs/pipeline.md states: CORS only tells a browser whether a page may read the answer. A non-browser
    client (curl, a script) with a forbidden Origin is accepted like any other; only the grant header is missing.
    Abuse protection therefore needs the reverse proxy / rate limit in front, not the allowlist."""
    marker = uuid.uuid4().hex
    status, headers = _http(f"{stack.collector.browser_endpoint}/v1/traces", method="POST",
                            headers={"Origin": "https://evil.example", "Content-Type": "application/json"},
                            body=_browser_trace(marker))
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers
    poll(lambda: [sp for sp in stack.tempo.spans() if sp.attributes.get("test.marker") == marker], timeout=30,
         what="the span posted with a forbidden Origin at the Tempo stand-in")


def _browser_trace(marker: str, *, pad: int = 0) -> bytes:
    span = {
        "traceId": uuid.uuid4().hex,
        "spanId": uuid.uuid4().hex[:16],
        "name": "documentLoad",
        "kind": 1,
        "startTimeUnixNano": str(time.time_ns() - 1_000_000),
        "endTimeUnixNano": str(time.time_ns()),
        "status": {"code": 2},  # error: kept by tail sampling deterministically
        "attributes": [
            {"key": "test.marker", "value": {"stringValue": marker}},
            {"key": "pad", "value": {"stringValue": "x" * pad}},
        ],
    }
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "web"}}]},
                "scopeSpans": [{"scope": {"name": "browser"}, "spans": [span]}],
            }
        ]
    }
    return json.dumps(doc).encode()


def test_browser_receiver_accepts_small_and_refuses_oversized_bodies(stack: Stack) -> None:
    """The browser receiver accepts small bodies, marked as browser telemetry, and refuses oversized ones."""
    url = f"{stack.collector.browser_endpoint}/v1/traces"
    headers = {"Origin": PAGE_ORIGIN, "Content-Type": "application/json"}
    small, big = uuid.uuid4().hex, uuid.uuid4().hex
    status, _ = _http(url, method="POST", headers=headers, body=_browser_trace(small))
    assert status == 200
    status, _ = _http(url, method="POST", headers=headers, body=_browser_trace(big, pad=600 * 1024))
    assert status in (400, 413), f"oversized body accepted with {status}"
    spans = poll(
        lambda: [s for s in stack.tempo.spans() if s.attributes.get("test.marker") == small],
        timeout=30,
        what="small browser span at Tempo stand-in",
    )
    assert spans[0].resource.get("agentpress.telemetry.source") == "browser"
    # Give the oversized one the same time to (not) arrive.
    time.sleep(1.0)
    assert not [s for s in stack.tempo.spans() if s.attributes.get("test.marker") == big]


# ------------------------------------------------------------------------------------------------ durability


def test_sigkill_while_tempo_down_then_everything_accepted_is_delivered(stack: Stack, tmp_path: Path) -> None:
    """Persistent queue: accepted data survives a Collector crash during a backend outage."""
    tempo = start_standin("traces", workdir=tmp_path / "tempo")
    loki = start_standin("logs", workdir=tmp_path / "loki")
    col: Collector | None = None
    try:
        col = start_collector(
            traces_endpoint=tempo.endpoint,
            logs_endpoint=loki.endpoint,
            remote_write_url=stack.prom.remote_write_url,
            env={**COLLECTOR_ENV, "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100", "OTELCOL_TAIL_DECISION_WAIT": "1s"},
            workdir=tmp_path / "otelcol",
        )
        tempo.stop()  # Tempo outage

        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        n = 40
        tp = TracerProvider(resource=Resource.create({"service.name": "durability"}))
        tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=col.otlp_grpc_endpoint, insecure=True)))
        sent: set[str] = set()
        tracer = tp.get_tracer("durability")
        for i in range(n):
            with tracer.start_as_current_span(f"job {i}") as span:
                sent.add(format(span.get_span_context().trace_id, "032x"))
        tp.shutdown()  # flushes: the Collector has accepted all spans when this returns

        c = col
        poll(
            lambda: (
                c.metric_sum("otelcol_processor_tail_sampling_global_count_traces_sampled", decision="sampled") >= n
            ),
            timeout=30,
            what="sampling decisions",
        )
        poll(
            lambda: c.metric_sum("otelcol_exporter_queue_size", exporter="otlp_grpc/tempo") > 0,
            timeout=15,
            what="spans parked in the persistent queue",
        )
        time.sleep(0.5)
        col.kill()  # crash: SIGKILL, no drain
        col.start()  # same ports, same storage directory
        tempo.start()  # Tempo is back
        got = poll(
            lambda: (lambda ids: ids if sent <= ids else None)({s.trace_id for s in tempo.spans()}),
            timeout=60,
            what=f"all {n} traces delivered after restart",
        )
        assert sent <= got
    finally:
        if col is not None:
            col.stop()
        tempo.stop()
        loki.stop()


# ------------------------------------------------------------------------------------------------ instrumented app
# The same pipeline fed by the library itself: agentpress_otel.instrument(app) on a FastAPI app whose routes call
# LiteLLM against the loopback OpenAI-compatible server. It runs in a child process because instrument() sets
# process-wide providers, which must not leak into the other tests.

_APP_SCRIPT = r"""
import asyncio, json, logging, os, sys
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
endpoint, service = sys.argv[1], sys.argv[2]

import httpx
import litellm
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry import trace

import agentpress_otel
from agentpress_otel._harness.llm_server import LLMServer
from agentpress_otel.genai import agent_run

litellm.suppress_debug_info = True
app = FastAPI()
log = logging.getLogger("pipeline.app")
log.setLevel(logging.INFO)  # the app's own level: instrument() keeps the levels it finds (WARNING by default)
srv = LLMServer().start()
# A second way apps point LiteLLM at their endpoint: no api_base on the call, so the chat span learns its server from
# the call's HTTP request.
os.environ["OPENAI_BASE_URL"] = srv.base_url


def kw(prompt):
    return {"model": "openai/gpt-5-mini", "api_base": srv.base_url, "api_key": "sk-test",
            "messages": [{"role": "user", "content": prompt}]}


@app.post("/threads/{thread_id}/runs")
async def run(thread_id: str):
    tid = format(trace.get_current_span().get_span_context().trace_id, "032x")
    async with agent_run("suna", thread_id=thread_id, agent_run_id="run-" + thread_id, project_id="p-e2e"):
        await litellm.acompletion(**kw("say hello to " + thread_id + " [[words:7]]"))
        await litellm.acompletion(**{k: v for k, v in kw("and again [[words:3]]").items() if k != "api_base"})
        log.info("run finished")
    return {"trace_id": tid}


@app.post("/threads/{thread_id}/broken")
async def broken(thread_id: str):
    tid = format(trace.get_current_span().get_span_context().trace_id, "032x")
    async with agent_run("suna", thread_id=thread_id, project_id="p-e2e"):
        try:
            await litellm.acompletion(**kw("fail [[error:500]]"), num_retries=0)
        except Exception:
            log.warning("llm failed")
    return JSONResponse({"trace_id": tid}, status_code=502)


tel = agentpress_otel.instrument(app, service_name=service, endpoint=endpoint, protocol="grpc",
                                 metric_interval_s=1.0, sample_ratio=1.0)


async def main():
    out = {"ok": [], "broken": [], "threads": {}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as c:
        for i in range(8):
            r = await c.post(f"/threads/t-{i}/runs")
            out["ok"].append(r.json()["trace_id"]); out["threads"][r.json()["trace_id"]] = f"t-{i}"
        for i in range(3):
            r = await c.post(f"/threads/b-{i}/broken")
            out["broken"].append(r.json()["trace_id"]); out["threads"][r.json()["trace_id"]] = f"b-{i}"
    return out


out = asyncio.run(main())
ok = [r for r in srv.requests if r.status == 200]
out["input_tokens"] = sum(r.prompt_tokens for r in ok)
out["output_tokens"] = sum(r.completion_tokens for r in ok)
out["requests"] = len(srv.requests)
out["failed_requests"] = len(srv.requests) - len(ok)
tel.force_flush()
tel.shutdown()
srv.stop()
print("RESULT " + json.dumps(out))
"""


@dataclass
class AppProcess:
    proc: Any
    service: str
    out: Path
    err: Path


@pytest.fixture(scope="module")
def app_process(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """Start the instrumented app early (importing LiteLLM takes ~10 s) so it overlaps the SDK workload's waits."""
    import os
    import subprocess
    import sys

    pytest.importorskip("litellm")
    wd = tmp_path_factory.mktemp("app")
    script = wd / "app.py"
    script.write_text(_APP_SCRIPT)
    service = f"e2e-app-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    out, err = wd / "stdout.txt", wd / "stderr.txt"
    # Output goes to files, not pipes: a chatty child must never block on a full pipe.
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(
            [sys.executable, str(script), stack.collector.otlp_grpc_endpoint, service], stdout=fo, stderr=fe, env=env
        )
    try:
        yield AppProcess(proc=proc, service=service, out=out, err=err)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def app_run(app_process: AppProcess) -> dict[str, Any]:
    app_process.proc.wait(timeout=180)
    stdout, stderr = app_process.out.read_text(), app_process.err.read_text()
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    assert app_process.proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert lines, stdout[-3000:] + stderr[-3000:]
    out: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    out["service"] = app_process.service
    return out


def test_instrumented_app_traces_logs_and_exact_tokens(stack: Stack, app_run: dict[str, Any]) -> None:
    """An instrumented app's traces, logs and token totals arrive complete and exact through the pipeline."""
    svc = app_run["service"]
    # Traces: every broken (HTTP 502 + LLM error) trace is kept, with its chat span marked as an error.
    broken = set(app_run["broken"])
    spans = poll(
        lambda: (lambda ss: ss if broken <= {s.trace_id for s in ss} else None)(
            [s for s in stack.tempo.spans() if s.resource.get("service.name") == svc]
        ),
        timeout=60,
        what="broken app traces at the Tempo stand-in",
    )
    llm_err = [s for s in spans if s.trace_id in broken and s.attributes.get("gen_ai.operation.name") == "chat"]
    assert {s.trace_id for s in llm_err} == broken
    assert all("error.type" in s.attributes for s in llm_err)
    agent = [s for s in spans if s.name.startswith("invoke_agent")]
    assert all(s.attributes.get("agentpress.thread.id") == app_run["threads"][s.trace_id] for s in agent)
    # Logs: correlated with the trace and carrying the thread id.
    want = set(app_run["threads"])

    def app_logs() -> list[Any] | None:
        logs = [r for r in stack.loki.logs() if r.resource.get("service.name") == svc and r.trace_id in want]
        return logs if {r.trace_id for r in logs} == want else None

    for r in poll(app_logs, timeout=30, what="one log per run at the Loki stand-in"):
        assert r.attributes.get("agentpress.thread.id") == app_run["threads"][r.trace_id], r
    # Metrics: the token totals in Prometheus equal what the LLM server reported.
    q = 'sum(gen_ai_client_token_usage_sum{{service_name="{}", gen_ai_token_type="{}"}})'
    poll(
        lambda: (
            stack.prom.query_value(q.format(svc, "input")) == app_run["input_tokens"]
            and stack.prom.query_value(q.format(svc, "output")) == app_run["output_tokens"]
        ),
        timeout=30,
        what=f"app token totals {app_run['input_tokens']}/{app_run['output_tokens']} in Prometheus",
    )
    # Span metrics per route, from all requests (before sampling).
    rq = f'sum by (http_route) (traces_span_metrics_calls_total{{service_name="{svc}", span_kind="SPAN_KIND_SERVER"}})'
    want_routes = {"/threads/{thread_id}/runs": 8.0, "/threads/{thread_id}/broken": 3.0}
    poll(
        lambda: {r["metric"].get("http_route"): float(r["value"][1]) for r in stack.prom.query(rq)} == want_routes,
        timeout=30,
        what=f"span metrics {want_routes}",
    )


def test_llm_calls_keep_their_service_graph_edge_and_a_failed_request_its_span(
        stack: Stack, app_run: dict[str, Any]) -> None:
    """The instrumented app with the default llm_http_spans, through the real Collector into Tempo and Prometheus:
    each run makes two LiteLLM calls (one given api_base, one reaching the server through OPENAI_BASE_URL), each
    broken route one call the server answers 500. A successful call's request has no span of its own, yet every
    chat span names the server, so the service graph counts one edge to the LLM server per chat span, plus one per
    failed request, whose span is kept: in the kept (broken) traces it sits under its chat span with status 500 and
    its own start inside the chat span's time."""
    svc = app_run["service"]
    runs, broken = len(app_run["ok"]), set(app_run["broken"])
    assert app_run["requests"] == 2 * runs + len(broken) and app_run["failed_requests"] == len(broken)

    def broken_traces() -> list[Any] | None:
        ss = [s for s in stack.tempo.spans() if s.resource.get("service.name") == svc and s.trace_id in broken]
        posts = [s for s in ss if s.name == "POST"]
        return ss if {s.trace_id for s in posts} == broken else None

    spans = poll(broken_traces, timeout=60, what="the broken traces' request spans at the Tempo stand-in")
    for tid in broken:
        (chat,) = [s for s in spans if s.trace_id == tid and s.attributes.get("gen_ai.operation.name") == "chat"]
        (post,) = [s for s in spans if s.trace_id == tid and s.name == "POST"]
        assert post.parent_span_id == chat.span_id and post.kind == 3  # CLIENT
        assert post.attributes["http.response.status_code"] == 500 and post.attributes["error.type"] == "500"
        assert chat.start_ns <= post.start_ns < post.end_ns <= chat.end_ns
        assert chat.attributes["server.address"] == "127.0.0.1"
    edges = 2 * runs + len(broken) + app_run["failed_requests"]  # chat spans + failed requests' spans
    q = f'sum(traces_service_graph_request_total{{client="{svc}", server="127.0.0.1"}})'
    poll(lambda: stack.prom.query_value(q) == edges, timeout=45,
         what=f"{edges} {svc} -> 127.0.0.1 edges in traces_service_graph_request_total")
