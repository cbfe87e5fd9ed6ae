"""Every PromQL query of every dashboard panel returns data from the real Prometheus after a realistic workload.

The workload is our own library (``agentpress_otel.instrument`` + genai + runtime + FastAPI/httpx + Dramatiq) in a
child process, exporting over OTLP to the Collector built from our manifest running the shipped config, which
remote-writes to Debian's Prometheus (the pipeline issue's ``local_pipeline`` harness). The shipped host-metrics
agent (``collector-config/hostmetrics.yaml``) runs too, so the host panels have data; and a short Tempo/Loki outage
makes the Collector really fail exports. Queries are extracted from the dashboard files, so a new panel is checked
automatically. Each query runs twice: with every Grafana variable at "All" (``.*``), and with an environment and the
workload's service picked. The app sets no environment and the Collector gets no OTELCOL_DEPLOYMENT_ENVIRONMENT, as
in a first `stack up`: the library's default and the Collector's fallback must be the same name for the picked
environment to find everything (service-graph edges, host metrics, Collector-stamped series).

Panels that would show "No data" fall back to 0 (``or vector(0)``, ``or (base) * 0``); such a fallback would make
the check pass without any data, so each target's ``mainExpr`` (the expression without the fallback, written by
grafana/build_dashboards.py) is what must return data. The only exceptions are in ``NOT_INDUCED``, with the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import find_binary
from conftest import need

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_dashboards_structure import load_dashboards, substitute, targets  # noqa: E402

SERVICE = f"dash-e2e-{uuid.uuid4().hex[:6]}"

WORKLOAD = textwrap.dedent('''
    import asyncio, logging, os, sys, time
    import httpx
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    import agentpress_otel
    from agentpress_otel import _selftel
    from agentpress_otel.genai import agent_run, llm_call, record_score, tool_call

    app = FastAPI()
    class ToolFailed(Exception):
        pass
    tel = agentpress_otel.instrument(
        app, service_name=os.environ["SVC"], endpoint=os.environ["EP"], metric_interval_s=1.0,
        runtime_interval_s=1.0, integrations=["fastapi", "httpx", "runtime", "logging", "dramatiq"])
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    broker = StubBroker()
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name="agent_runs", max_retries=1, min_backoff=10, max_backoff=20)
    def background_run(i: int) -> None:
        if i % 4 == 0:
            raise ValueError("worker failed")  # retried once, then failed for good
    log = logging.getLogger("dash.e2e")

    # A real upstream over a loopback socket for the app's outbound httpx calls (the httpx integration records
    # http.client.request.duration on real transports): every third call gets a 502.
    import http.server, threading
    class Upstream(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(502 if self.path.startswith("/fail") else 200)
            self.end_headers()
            self.wfile.write(b"{}")
        def log_message(self, *args) -> None:
            pass
    upstream_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream_srv.serve_forever, daemon=True).start()
    UPSTREAM = f"http://127.0.0.1:{upstream_srv.server_address[1]}"

    class Boom(Exception):
        pass

    async def one_run(i: int, fail: bool) -> None:
        async with agent_run("suna", thread_id=f"thr-{i}", agent_run_id=f"run-{i}", project_id="proj-e2e",
                             model="gpt-5-mini"):
            async with llm_call(model="gpt-5-mini", provider="openai", server_address="api.openai.com",
                                stream=True) as call:
                await asyncio.sleep(0.01)
                call.set_time_to_first_chunk(0.05 + i / 100)
                call.set_usage(input_tokens=100 + i, output_tokens=20 + i, cache_read_tokens=10)
                call.set_response(model="gpt-5-mini", id=f"resp-{i}", finish_reasons=["stop"])
            record_score("helpfulness", 0.8, response_id=f"resp-{i}")
            async with llm_call(model="my-unpriced-model", provider="openai", server_address="llm.internal") as call:
                call.set_usage(input_tokens=5, output_tokens=5)
            with tool_call("web_search") as t:
                t.set_result({"success": True})
            if i % 3 == 1:
                try:
                    with tool_call("flaky_api"):
                        raise ToolFailed("flaky_api timed out")
                except ToolFailed:
                    pass
            log.warning("tool web_search was slow")
            try:
                async with llm_call(model="gpt-5-mini", provider="openai", server_address="api.openai.com"):
                    if i % 3 == 0:
                        raise Boom("upstream 500")
            except Boom:
                pass
            if fail:
                raise Boom("agent gave up")

    @app.get("/api/thread/{tid}/run")
    async def run(tid: str, i: int = 0) -> dict[str, str]:
        async with httpx.AsyncClient() as upstream:
            await upstream.get(UPSTREAM + ("/fail" if i % 3 == 0 else "/ok"))
        try:
            await one_run(i, fail=i % 4 == 0)
        except Boom:
            log.error("agent run failed", exc_info=True)
            return JSONResponse({"error": "failed"}, status_code=500)
        return {"ok": "yes"}

    @app.get("/api/fail")
    async def fail() -> JSONResponse:
        raise RuntimeError("broken endpoint")

    async def main() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            deadline = time.monotonic() + float(os.environ.get("DURATION", "12"))
            i = 0
            while time.monotonic() < deadline:
                await client.get(f"/api/thread/t{i}/run", params={"i": i})
                if i % 5 == 0:
                    await client.get("/api/fail")
                    time.sleep(0.02)  # a short blocking call: event-loop lag shows up
                _selftel.record_dropped("logs", "e2e_probe")
                _selftel.record_error("e2e_probe", RuntimeError("forced internal error"))
                i += 1
                await asyncio.sleep(0.2)

    for i in range(20):
        background_run.send(i)
    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    broker.join("agent_runs", timeout=20000, fail_fast=False)
    worker.join()
    worker.stop()
    asyncio.run(main())
    time.sleep(2.5)  # let the 1 s metric reader export the final values a few times
    tel.shutdown(timeout_s=10)
''')


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from agentpress_otel._harness.collector import ensure_collector_binary, start_hostmetrics_agent
    from harness.pipeline import local_pipeline

    need(lambda: ensure_collector_binary(build=False))
    need(lambda: find_binary("prometheus"))
    env = {"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100", "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
           "OTELCOL_SERVICEGRAPH_FLUSH_INTERVAL": "1s", "OTELCOL_SERVICEGRAPH_STORE_TTL": "2s",
           "OTELCOL_TAIL_DECISION_WAIT": "1s", "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms",
           # Exports to a dead backend give up (and count as send_failed) after 3 s: see _induce_export_failures.
           "OTELCOL_RETRY_MAX_INTERVAL": "1s", "OTELCOL_RETRY_MAX_ELAPSED_TIME": "3s"}
    wd = tmp_path_factory.mktemp("dash")
    with local_pipeline(env=env, workdir=wd) as p:
        # The shipped host-metrics agent (compose profile "hostmetrics") feeding the gateway: host panels get data.
        agent = start_hostmetrics_agent(p.collector.otlp_grpc_endpoint.removeprefix("http://"), interval="1s",
                                        host_name="e2e-host", workdir=wd / "hostmetrics")
        try:
            yield p
        finally:
            agent.stop()


def _induce_export_failures(p: Any) -> None:
    """Tempo and Loki down: a span and a log record the Collector accepted cannot be delivered; after the (test's
    3 s) retry budget the exporters give up, which is what otelcol_exporter_send_failed_* count. Then both are back."""
    import logging

    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    p.tempo.stop()
    p.loki.stop()
    try:
        ep = p.collector.otlp_grpc_endpoint
        resource = Resource.create({"service.name": f"{SERVICE}-outage", "deployment.environment.name": "e2e"})
        tp = TracerProvider(resource=resource)
        tp.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=ep, insecure=True)))
        with tp.get_tracer("outage").start_as_current_span("sent while Tempo is down"):
            pass
        tp.shutdown()
        lp = LoggerProvider(resource=resource)
        lp.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=ep, insecure=True)))
        logger = logging.getLogger(f"outage.{SERVICE}")
        logger.propagate = False
        handler = LoggingHandler(logger_provider=lp)
        logger.addHandler(handler)
        logger.warning("sent while Loki is down")
        logger.removeHandler(handler)
        lp.shutdown()
        prom = p.prometheus
        deadline = time.monotonic() + 60
        q = 'count by (__name__) ({__name__=~"otelcol_exporter_send_failed_(spans|log_records)(_total)?"} > 0)'
        while len(prom.query(q)) < 2:
            assert time.monotonic() < deadline, f"no export failures recorded: {prom.query(q)}"
            time.sleep(1)
    finally:
        p.tempo.start()
        p.loki.start()


@pytest.fixture(scope="module")
def workload(pipeline: Any) -> Any:
    env = {**os.environ, "SVC": SERVICE, "EP": pipeline.collector.otlp_grpc_endpoint, "DURATION": "12",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("OTEL_SDK_DISABLED", None)
    proc = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    prom = pipeline.prometheus
    # Span metrics flush every second and the app exports every second; wait until the slowest series is there.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if prom.query(f'gen_ai_client_operation_time_to_first_chunk_seconds_count{{service_name="{SERVICE}"}}') \
                and prom.query('{__name__=~"otelcol_exporter_sent_spans(_total)?"}') \
                and prom.query(f'traces_service_graph_request_total{{server="{SERVICE}"}}'):
            break
        time.sleep(1)
    _induce_export_failures(pipeline)
    time.sleep(3)
    return pipeline


# Series that only exist once the Collector fails in a way this test does not provoke. Their targets keep the
# fallback (a 0 line) and are checked for that; the reason says why provoking them is out of reach here.
NOT_INDUCED = {
    "otelcol_exporter_enqueue_failed_": "a sending queue must be full (5000 batches waiting): a long outage under "
                                        "load, minutes of data; the send_failed series of the same panel are induced",
    "otelcol_exporter_send_failed_metric_points": "prometheus_remote_write retries for 10 minutes before giving up, "
                                                  "and its backend is the Prometheus this test queries",
    "otelcol_exporter_prometheusremotewrite_failed_translations": "only for data points remote write cannot "
                                                                  "represent; OTLP from our SDK has none",
}


def _all_queries() -> list[tuple[str, str, str]]:
    out = []
    for path, dash in load_dashboards():
        for title, t in targets(dash, "prometheus"):
            out.append((path.name, title, t.get("mainExpr", t["expr"])))
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                # label_values(selector, label) -> the selector must match series
                sel = v["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
                out.append((path.name, f"variable ${v['name']}", sel))
    return out


QUERIES = _all_queries()
# The library's default deployment.environment.name (the workload sets none).
DEFAULT_ENV = "development"
MODES = ("all", "picked")


def _fill(expr: str, mode: str) -> str:
    """Grafana's substitution: "All" everywhere, or $env and $service picked (the rest stays "All")."""
    if mode == "picked":
        expr = expr.replace("$env", DEFAULT_ENV).replace("$service", SERVICE)
    return substitute(expr)


def _not_induced(expr: str) -> str | None:
    return next((why for name, why in NOT_INDUCED.items() if name in expr), None)


def test_every_fallback_is_recorded() -> None:
    """A fallback without mainExpr would let a panel pass on the fallback alone."""
    for path, dash in load_dashboards():
        for title, t in targets(dash, "prometheus"):
            if " or vector(0)" in t["expr"] or ") * 0" in t["expr"]:
                assert "mainExpr" in t, f"{path.name} / {title}: fallback without mainExpr"
                assert "vector(0)" not in t["mainExpr"] and ") * 0" not in t["mainExpr"], t["mainExpr"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("file", "title", "expr"), QUERIES, ids=[f"{f}:{t}" for f, t, _ in QUERIES])
def test_panel_query_returns_data(workload: Any, file: str, title: str, expr: str, mode: str) -> None:
    """Each dashboard panel query returns data for our service from a real workload."""
    prom = workload.prometheus
    if _not_induced(expr):
        # Not provoked here (see NOT_INDUCED): the panel must still draw its 0 line, and the main part must parse.
        full = next(t["expr"] for _, d in load_dashboards() for _, t in targets(d, "prometheus")
                    if t.get("mainExpr") == expr)
        assert prom.query(_fill(full, mode)), f"{file} / {title}: even the fallback returns nothing"
        # The fallback alone cannot fail (``or vector(0)``): the main part must parse and be empty here,
        # otherwise the workload does provoke it and it belongs with the checked queries.
        assert prom.query(_fill(expr, mode)) == [], f"{file} / {title}: has data now: remove it from NOT_INDUCED"
        return
    result = prom.query(_fill(expr, mode))
    assert result, f"{file} / {title}: no data ({mode}) for\n{_fill(expr, mode)}"
    # Our service must be among the answers where the query is per service.
    if "service_name" in json.dumps(result):
        services = {r["metric"].get("service_name") for r in result}
        assert SERVICE in services or "otel-collector" in services or None in services, services


def test_labels_the_panels_group_by_exist(workload: Any) -> None:
    """A `sum by (x)` over series without x still returns data (one unlabelled line): check the labels themselves."""
    prom = workload.prometheus
    # Per-process panels: the remote-write translation puts service.instance.id into `instance` (there is no
    # service_instance_id label: resource_to_telemetry_conversion is off).
    rows = prom.query(f'process_memory_usage_bytes{{service_name="{SERVICE}"}}')
    assert rows and all(r["metric"].get("instance") for r in rows), rows
    assert not prom.query('{__name__=~"process_.*", service_instance_id!=""}')
    # Host panels: host_name is copied onto system.* points by the gateway, and only onto them.
    rows = prom.query("system_cpu_time_seconds_total")
    assert rows and {r["metric"].get("host_name") for r in rows} == {"e2e-host"}, rows[:3]
    assert not prom.query(f'process_memory_usage_bytes{{service_name="{SERVICE}", host_name!=""}}')
    # Service graph edges carry client and server.
    assert prom.query(f'traces_service_graph_request_total{{client="user", server="{SERVICE}"}}')
    # ... and the environment of each side, from its spans (the service_graph dimension the dashboards filter on).
    assert prom.query(f'traces_service_graph_request_total{{server="{SERVICE}", '
                      f'server_deployment_environment_name="{DEFAULT_ENV}"}}')
    assert prom.query(f'traces_service_graph_request_total{{client="{SERVICE}", '
                      f'client_deployment_environment_name="{DEFAULT_ENV}"}}')


def test_metric_names_used_by_alert_rules_exist(workload: Any) -> None:
    """The alert rules use the same Prometheus names as the dashboards: check the ones this workload produces."""
    prom = workload.prometheus
    for name in ("gen_ai_invoke_agent_duration_seconds_count", "gen_ai_client_operation_duration_seconds_bucket",
                 "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "agentpress_llm_cost_USD_total",
                 "gen_ai_client_token_usage_sum", "agentpress_asyncio_loop_lag_seconds_bucket",
                 "process_memory_usage_bytes", "agentpress_otel_exporter_dropped_total", "target_info",
                 "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity",
                 "agentpress_asyncio_loop_lag_max_seconds", "agentpress_queue_messages_enqueued_total",
                 "agentpress_queue_messages_processed_total"):
        assert prom.query(f'count({name})'), name


# Attributes that only the browser SDK / browser receiver produce (issue 9); this workload has no browser.
BROWSER_ONLY_SPAN = {"agentpress.telemetry.source", "http.response.status_code"}
BROWSER_ONLY_LOG = {"agentpress_telemetry_source", "exception_type", "browser_page_view_type"}


def test_traceql_and_logql_use_names_the_workload_really_emitted(workload: Any) -> None:
    """TraceQL and LogQL queries use only names the workload's exported spans and logs carry."""
    import re

    from test_dashboards_structure import _logql_fields

    spans = [s for s in workload.tempo.spans() if s.resource.get("service.name") == SERVICE]
    logs = [r for r in workload.loki.logs() if r.resource.get("service.name") == SERVICE]
    assert spans and logs
    span_keys = {k for s in spans for k in s.attributes} | {k for s in spans for k in s.resource}
    # Loki turns attribute dots into "_"; trace_id / span_id / severity_text come from the record itself.
    log_keys = {k.replace(".", "_") for r in logs for k in (*r.attributes, *r.resource)}
    log_keys |= {"trace_id", "span_id", "severity_text", "detected_level"}
    assert {"agentpress.thread.id", "agentpress.project.id", "gen_ai.usage.cache_read.input_tokens"} <= span_keys
    for path, dash in load_dashboards():
        for title, t in targets(dash, "tempo"):
            used = set(re.findall(r"\b(?:span|resource)\.([\w.]+)", t["query"]))
            missing = used - span_keys - BROWSER_ONLY_SPAN
            assert not missing, f"{path.name} / {title}: {sorted(missing)} not on any exported span"
        for title, t in targets(dash, "loki"):
            missing = _logql_fields(t["expr"]) - log_keys - BROWSER_ONLY_LOG
            assert not missing, f"{path.name} / {title}: {sorted(missing)} not on any exported log record"
