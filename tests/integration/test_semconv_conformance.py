"""Conformance: everything the demo (every scenario), a Redis workload and a Dramatiq workload send over real
OTLP is checked against the published semantic conventions (tests/semconv_rules.py: names, deprecations,
units and instruments from the opentelemetry-semantic-conventions package; requirement levels, span names,
buckets and enums from the convention documents). Zero violations outside our ``agentpress.*`` namespace."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from conftest import need
from harness.otlp_sink import OTLPSink, any_value, attrs_to_dict
from harness.redis import start_redis
from semconv_rules import Metric, Span, check_log, check_metric, check_resource, check_span

pytestmark = pytest.mark.integration

_KINDS = {1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["NO_COLOR"] = "1"
    return env


def _violations(sink: OTLPSink) -> tuple[list[str], dict[str, int]]:
    """Every violation in what ``sink`` received, plus counts of what was checked."""
    out: list[str] = []
    with sink.lock:
        traces, metrics, logs = list(sink.received.traces), list(sink.received.metrics), list(sink.received.logs)
    spans: list[Span] = []
    resources: list[dict[str, Any]] = []
    for req in traces:
        for rs in req.resource_spans:
            resources.append(attrs_to_dict(rs.resource.attributes))
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(Span(s.name, _KINDS.get(s.kind, "?"), attrs_to_dict(s.attributes),
                                      s.status.code == 2, s.span_id, s.parent_span_id))
    by_id = {s.span_id: s for s in spans}
    for s in spans:
        check_span(s, by_id, out)
    by_name: dict[str, Metric] = {}
    for req in metrics:
        for rm in req.resource_metrics:
            resources.append(attrs_to_dict(rm.resource.attributes))
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    which = m.WhichOneof("data")
                    data = getattr(m, which)
                    kind = {"gauge": "gauge", "histogram": "histogram"}.get(which) or (
                        "counter" if data.is_monotonic else "up_down_counter")
                    met = by_name.setdefault(m.name, Metric(m.name, kind, m.unit))
                    if (met.kind, met.unit) != (kind, m.unit):
                        out.append(f"metric {m.name!r}: sent as both {met.kind}/{met.unit} and {kind}/{m.unit}")
                    for p in data.data_points:
                        met.points.append(attrs_to_dict(p.attributes))
                        if which == "histogram" and list(p.explicit_bounds) not in met.bounds:
                            met.bounds.append(list(p.explicit_bounds))
    for met in by_name.values():
        check_metric(met, out)
    n_logs = 0
    for req in logs:
        for rl in req.resource_logs:
            resources.append(attrs_to_dict(rl.resource.attributes))
            for sl in rl.scope_logs:
                for lr in sl.log_records:
                    n_logs += 1
                    check_log({kv.key: any_value(kv.value) for kv in lr.attributes}, lr.event_name, out)
    seen: set[str] = set()
    for r in resources:
        key = repr(sorted(r.items()))
        if key not in seen:
            seen.add(key)
            check_resource(r, out)
    return sorted(set(out)), {"spans": len(spans), "metrics": len(by_name), "logs": n_logs,
                              "resources": len(seen)}


@pytest.mark.parametrize("opt_in", ["", "http,gen_ai_latest_experimental"], ids=["baseline", "latest"])
def test_demo_every_scenario_conforms(tmp_path: Path, opt_in: str) -> None:
    """Every demo scenario's telemetry conforms to the semantic conventions, with and without opt-in."""
    env = {**_env(), **({"OTEL_SEMCONV_STABILITY_OPT_IN": opt_in} if opt_in else {})}
    with OTLPSink() as sink:
        proc = subprocess.run(
            [sys.executable, "-m", "agentpress_otel", "demo", "--threads", "6", "--endpoint", sink.grpc_endpoint],
            capture_output=True, text=True, env=env, timeout=240, check=False, cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        violations, counts = _violations(sink)
        metric_names = sink.metric_names()
    # The demo covers HTTP server/client, GenAI agent/tool/LLM spans and metrics, Dramatiq, logs, runtime.
    assert counts["spans"] > 50 and counts["metrics"] > 10 and counts["logs"] > 10, counts
    latest = "gen_ai.client.inference.usage.input_tokens" in metric_names
    assert latest == bool(opt_in) and ("gen_ai.client.token.usage" in metric_names) != latest
    assert violations == [], "\n".join(violations)


_WORKLOAD = textwrap.dedent('''
    import sys, time
    import structlog, redis, dramatiq
    from dramatiq.brokers.redis import RedisBroker
    import agentpress_otel
    from agentpress_otel.testing import agentpress_structlog_processors

    url, endpoint = sys.argv[1], sys.argv[2]
    tel = agentpress_otel.instrument(service_name="conformance-worker", endpoint=endpoint,
                                     metric_interval_s=1.0)
    structlog.configure(processors=agentpress_structlog_processors(), cache_logger_on_first_use=False)
    log = structlog.get_logger()
    broker = RedisBroker(url=url, namespace="apotel-conformance")
    dramatiq.set_broker(broker)
    r = redis.Redis.from_url(url)

    class QuotaExceeded(Exception):
        pass

    @dramatiq.actor(broker=broker, queue_name="agents", max_retries=0)
    def run_agent(thread_id: str) -> None:
        r.rpush(f"out:{thread_id}", "chunk-1", "chunk-2")
        r.lrange(f"out:{thread_id}", 0, -1)
        with r.pipeline() as pipe:
            pipe.rpush(f"out:{thread_id}", "done").expire(f"out:{thread_id}", 60).execute()
        try:
            r.execute_command("NOSUCHCOMMAND")
        except redis.ResponseError:
            log.exception("redis command failed")

    @dramatiq.actor(broker=broker, queue_name="agents", max_retries=0)
    def broken(thread_id: str) -> None:
        api_key = "sk-local-variable-" + thread_id  # a frame local: never exported
        raise QuotaExceeded(f"quota for {len(api_key)}")

    tracer = tel.tracer_provider.get_tracer("conformance")
    with tracer.start_as_current_span("enqueue"):
        run_agent.send(thread_id="t-1")
        broken.send(thread_id="t-2")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    broker.join("agents", timeout=30_000)
    worker.join()
    worker.stop()
    try:
        raise QuotaExceeded("outside any actor")
    except QuotaExceeded:
        log.exception("billing check failed")
    time.sleep(1.5)  # one more metric export cycle (process metrics included)
    assert tel.force_flush(timeout_s=10)
    tel.shutdown()
''')


def test_redis_and_dramatiq_workload_conforms(tmp_path: Path) -> None:
    """A Redis and Dramatiq workload's telemetry conforms to the semantic conventions."""
    srv = need(start_redis)
    script = tmp_path / "workload.py"
    script.write_text(_WORKLOAD)
    try:
        with OTLPSink() as sink:
            proc = subprocess.run([sys.executable, str(script), srv.url, sink.grpc_endpoint], capture_output=True,
                                  text=True, env=_env(), timeout=120, check=False, cwd=tmp_path)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            violations, counts = _violations(sink)
            names = {s.name for req in sink.received.traces for rs in req.resource_spans for ss in rs.scope_spans
                     for s in ss.spans}
    finally:
        srv.stop()
    # What the conventions' rules were exercised on: queue spans, Redis commands, a pipeline, a failed command.
    assert {"send agents", "process agents", "RPUSH", "LRANGE", "PIPELINE", "NOSUCHCOMMAND"} <= names, names
    assert counts["logs"] >= 2 and counts["metrics"] >= 5, counts
    assert violations == [], "\n".join(violations)
