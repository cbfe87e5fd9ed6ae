"""Every PromQL query of every dashboard panel returns data from the real Prometheus after a realistic workload.

The workload is our own library (``agentpress_otel.instrument`` + genai + runtime + FastAPI/httpx) in a child
process, exporting over OTLP to the Collector built from our manifest running the shipped config, which remote-
writes to Debian's Prometheus (the pipeline issue's ``local_pipeline`` harness). Queries are extracted from the
dashboard files, so a new panel is checked automatically. Grafana variables are replaced by "All" (``.*``).
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
    tel = agentpress_otel.instrument(
        app, service_name=os.environ["SVC"], environment="e2e", endpoint=os.environ["EP"], metric_interval_s=1.0,
        runtime_interval_s=1.0, integrations=["fastapi", "httpx", "runtime", "logging", "dramatiq"])
    import dramatiq
    from dramatiq.brokers.stub import StubBroker
    broker = StubBroker()
    dramatiq.set_broker(broker)

    @dramatiq.actor(queue_name="agent_runs", max_retries=0)
    def background_run(i: int) -> None:
        if i % 4 == 0:
            raise ValueError("worker failed")
    log = logging.getLogger("dash.e2e")

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
    from agentpress_otel._harness.collector import ensure_collector_binary, local_pipeline

    need(lambda: ensure_collector_binary(build=False))
    need(lambda: find_binary("prometheus"))
    env = {"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100", "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
           "OTELCOL_DEPLOYMENT_ENVIRONMENT": "e2e"}
    with local_pipeline(env=env, workdir=tmp_path_factory.mktemp("dash")) as p:
        yield p


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
                and prom.query("otelcol_exporter_sent_spans_total"):
            break
        time.sleep(1)
    time.sleep(3)
    return pipeline


def _all_queries() -> list[tuple[str, str, str]]:
    out = []
    for path, dash in load_dashboards():
        for title, t in targets(dash, "prometheus"):
            out.append((path.name, title, t["expr"]))
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                # label_values(selector, label) -> the selector must match series
                sel = v["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
                out.append((path.name, f"variable ${v['name']}", sel))
    return out


QUERIES = _all_queries()


@pytest.mark.parametrize(("file", "title", "expr"), QUERIES, ids=[f"{f}:{t}" for f, t, _ in QUERIES])
def test_panel_query_returns_data(workload: Any, file: str, title: str, expr: str) -> None:
    prom = workload.prometheus
    result = prom.query(substitute(expr))
    assert result, f"{file} / {title}: no data for\n{substitute(expr)}"
    # Our service must be among the answers where the query is per service.
    if "service_name" in json.dumps(result):
        services = {r["metric"].get("service_name") for r in result}
        assert SERVICE in services or "otel-collector" in services or None in services, services


def test_metric_names_used_by_alert_rules_exist(workload: Any) -> None:
    """The alert rules use the same Prometheus names as the dashboards: check the ones this workload produces."""
    prom = workload.prometheus
    for name in ("gen_ai_invoke_agent_duration_seconds_count", "gen_ai_client_operation_duration_seconds_bucket",
                 "gen_ai_client_operation_time_to_first_chunk_seconds_bucket", "agentpress_llm_cost_USD_total",
                 "gen_ai_client_token_usage_sum", "agentpress_asyncio_loop_lag_seconds_bucket",
                 "process_memory_usage_bytes", "agentpress_otel_exporter_dropped_total", "target_info",
                 "otelcol_exporter_queue_size", "otelcol_exporter_queue_capacity"):
        assert prom.query(f'count({name})'), name


# Attributes that only the browser SDK / browser receiver produce (issue 9); this workload has no browser.
BROWSER_ONLY_SPAN = {"agentpress.telemetry.source", "http.response.status_code"}
BROWSER_ONLY_LOG = {"agentpress_telemetry_source", "exception_type"}


def test_traceql_and_logql_use_names_the_workload_really_emitted(workload: Any) -> None:
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
