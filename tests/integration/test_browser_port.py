"""The browser port cannot write what backends write, nor starve them (real Collector, shipped config).

* A forged backend metric posted to the browser receiver never becomes a Prometheus series, while the same
  post to the backend port does (the control).
* A browser resource claiming a backend service and environment arrives renamed and re-stamped.
* A browser log flood with Loki down fills only the browser log queue: every backend log export succeeds.
* A browser flood of large bodies keeps the Collector under its configured memory limit.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from agentpress_otel._harness._proc import wait_until
from conftest import need  # type: ignore[import-not-found]
from harness.pipeline import Pipeline, local_pipeline

pytestmark = pytest.mark.integration


def _post(url: str, doc: dict[str, Any] | bytes) -> int:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    req = urllib.request.Request(url, data=body, method="POST",  # noqa: S310 - loopback
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except OSError:
        return 0


def _res(service: str, env: str | None = None) -> dict[str, Any]:
    attrs = [{"key": "service.name", "value": {"stringValue": service}}]
    if env:
        attrs.append({"key": "deployment.environment.name", "value": {"stringValue": env}})
    return {"attributes": attrs}


def _metric(name: str, value: float) -> dict[str, Any]:
    now = str(time.time_ns())
    return {"resourceMetrics": [{"resource": _res("agentpress-api", "production"), "scopeMetrics": [{
        "scope": {"name": "forged"}, "metrics": [{"name": name, "unit": "USD", "sum": {
            "aggregationTemporality": 2, "isMonotonic": True,
            "dataPoints": [{"asDouble": value, "startTimeUnixNano": now, "timeUnixNano": now}]}}]}]}]}


def _log(marker: str, service: str, env: str | None = None, pad: int = 0) -> dict[str, Any]:
    return {"resourceLogs": [{"resource": _res(service, env), "scopeLogs": [{"scope": {"name": "t"}, "logRecords": [{
        "timeUnixNano": str(time.time_ns()), "severityNumber": 9, "body": {"stringValue": marker + "x" * pad},
        "attributes": [{"key": "test.marker", "value": {"stringValue": marker}}]}]}]}]}


@pytest.fixture
def pipe() -> Iterator[Pipeline]:
    with need(lambda: local_pipeline(env={"OTELCOL_DEPLOYMENT_ENVIRONMENT": "staging"})) as p:
        yield p


def test_browser_cannot_forge_backend_metrics_or_identity(pipe: Pipeline) -> None:
    """The browser receiver refuses backend metrics and overrides the page's resource identity."""
    col = pipe.collector
    forged = _post(f"{col.browser_endpoint}/v1/metrics", _metric("agentpress.llm.cost", 1_500_219))
    control = _post(f"{col.otlp_http_endpoint}/v1/metrics", _metric("apotel.control.cost", 1))
    assert control == 200
    wait_until(lambda: bool(pipe.prometheus.series('{__name__=~"apotel_control_cost.*"}')), timeout=60,
               what="the control metric (backend port) in Prometheus")
    assert pipe.prometheus.series('{__name__=~"agentpress_llm_cost.*"}') == [], f"forged metric (HTTP {forged})"

    marker = uuid.uuid4().hex
    for service in ("agentpress-api", "agentpress-frontend"):
        assert _post(f"{col.browser_endpoint}/v1/logs", _log(marker, service, "production")) == 200
    wait_until(lambda: len([r for r in pipe.loki.logs() if r.attributes.get("test.marker") == marker]) == 2,
               timeout=30, what="both browser logs at the Loki stand-in")
    got = {r.resource["service.name"]: r.resource for r in pipe.loki.logs()
           if r.attributes.get("test.marker") == marker}
    assert set(got) == {"browser/agentpress-api", "agentpress-frontend"}, got
    for res in got.values():
        assert res["deployment.environment.name"] == "staging"  # the Collector's, not the page's "production"
        assert res["agentpress.telemetry.source"] == "browser"


def test_browser_log_flood_with_loki_down_cannot_fail_backend_logs(pipe: Pipeline) -> None:
    """A browser log flood with Loki down cannot make backend log exports fail."""
    col = pipe.collector
    pipe.loki.stop()  # Loki down: every log waits in the exporters' queues
    statuses: list[int] = []
    lock = threading.Lock()

    def flood(n: int) -> None:
        for _ in range(n):
            s = _post(f"{col.browser_endpoint}/v1/logs", _log("flood", "agentpress-frontend"))
            with lock:
                statuses.append(s)

    threads = [threading.Thread(target=flood, args=(700,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refused = sum(1 for s in statuses if s != 200)
    assert refused > 0, "the flood must have hit the browser queue's limit"
    backend = [_post(f"{col.otlp_http_endpoint}/v1/logs", _log(f"backend-{i}", "agentpress-api")) for i in range(50)]
    assert backend == [200] * 50, f"backend log export failed during a browser flood: {backend}"
    assert col.metric_sum("otelcol_exporter_enqueue_failed_log_records", exporter="otlp_http/loki") == 0
    print(f"browser posts: {len(statuses)}, refused {refused}; backend: 50/50 accepted")


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


LIMIT_MIB = 300
# memory_limiter bounds the Go heap; the process also holds the binary, stacks and freed-but-unreturned pages.
# docker-compose pairs limit_mib 800 and GOMEMLIMIT 800MiB with a 1 GiB container limit: the same proportion here
# is the budget a flood must not break (the container would be OOM-killed past it).
CONTAINER_MIB = LIMIT_MIB * 1024 // 800


def test_browser_flood_keeps_collector_under_its_memory_limit() -> None:
    """A browser flood keeps the Collector under its memory limit, the browser limiter refusing part of it."""
    env = {"OTELCOL_MEMORY_LIMIT_MIB": str(LIMIT_MIB), "OTELCOL_MEMORY_SPIKE_MIB": "60",
           "OTELCOL_BROWSER_MEMORY_LIMIT_MIB": "80", "OTELCOL_BROWSER_MEMORY_SPIKE_MIB": "20",
           "GOMEMLIMIT": f"{LIMIT_MIB}MiB"}
    with need(lambda: local_pipeline(env=env)) as p:
        col = p.collector
        assert col.process is not None and col.process.proc is not None
        pid = col.process.proc.pid
        body = json.dumps(_log("big", "agentpress-frontend", pad=216 * 1024)).encode()
        stop = time.monotonic() + 15
        peak = [0.0]
        statuses: list[int] = []

        def flood() -> None:
            while time.monotonic() < stop:
                statuses.append(_post(f"{col.browser_endpoint}/v1/logs", body))

        def sample() -> None:
            while time.monotonic() < stop + 2:
                peak[0] = max(peak[0], _rss_mib(pid))
                time.sleep(0.1)

        threads = [threading.Thread(target=flood) for _ in range(64)] + [threading.Thread(target=sample)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(f"collector peak RSS {peak[0]:.0f} MiB (limiter {LIMIT_MIB}, container budget {CONTAINER_MIB}); "
              f"posts {len(statuses)}, refused {sum(1 for s in statuses if s != 200)}")
        assert peak[0] < CONTAINER_MIB, f"Collector RSS peaked at {peak[0]:.0f} MiB (budget {CONTAINER_MIB} MiB)"
        # The browser limit (heap above 60 MiB) refused part of the flood: the limiter is real, not a share of
        # the host's RAM that a flood never reaches.
        assert any(s != 200 for s in statuses), "the browser memory limiter never refused anything"
