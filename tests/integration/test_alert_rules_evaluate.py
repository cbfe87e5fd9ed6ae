"""Every shipped alert rule evaluates in real Prometheus while a sick Collector reports every self-metric kind.

Debian's Prometheus runs the shipped prometheus.yml and rule files; its ``otel-collector`` scrape job points at a
small exposition served here that looks like a Collector losing data everywhere at once: receivers refusing spans,
log records and metric points over the same transport, exporters failing to send and to enqueue several signals,
queues nearly full (Collector 0.159 spelling without ``_total`` on some counters, ``_total`` on others, as the
rules must accept both). After several evaluation rounds every rule must be healthy (no ``lastError``: before the
fix ``OtelCollectorRefusingData`` and ``OtelCollectorDroppingData`` failed with "vector cannot contain metrics with
the same labelset") and the data-loss alerts must be active with the right label sets.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from agentpress_otel._harness._proc import find_binary, free_port, wait_until
from conftest import need

pytestmark = pytest.mark.integration

SIGNALS = ("spans", "log_records", "metric_points")


class _SickCollector(http.server.BaseHTTPRequestHandler):
    scrapes = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        n = type(self).scrapes * 60  # counters grow 60 per scrape
        lines: list[str] = []

        def counter(name: str, labels: str, value: float) -> None:
            lines.append(f"# TYPE {name} counter")
            lines.append(f"{name}{{{labels}}} {value}")

        for i, sig in enumerate(SIGNALS):
            suffix = "_total" if sig == "metric_points" else ""  # both spellings, as Collector versions differ
            for receiver, transport in (("otlp", "grpc"), ("otlp/browser", "http")):
                rl = f'receiver="{receiver}",transport="{transport}"'
                counter(f"otelcol_receiver_accepted_{sig}{suffix}", rl, n * 10)
                counter(f"otelcol_receiver_refused_{sig}{suffix}", rl, n * (i + 1))
            for exporter in ("otlp_grpc/tempo", "otlp_http/loki", "otlp_grpc/gateway"):
                el = f'exporter="{exporter}"'
                counter(f"otelcol_exporter_sent_{sig}{suffix}", el, n * 10)
                counter(f"otelcol_exporter_send_failed_{sig}{suffix}", el, n * (i + 1))
                counter(f"otelcol_exporter_enqueue_failed_{sig}{suffix}", el, n)
        for exporter, kind in (("otlp_grpc/tempo", "traces"), ("otlp_http/loki", "logs")):
            lines.append(f'otelcol_exporter_queue_size{{exporter="{exporter}",data_type="{kind}"}} 4900')
            lines.append(f'otelcol_exporter_queue_capacity{{exporter="{exporter}",data_type="{kind}"}} 5000')
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from agentpress_otel._harness.prometheus import start_prometheus

    need(lambda: find_binary("prometheus"))
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), _SickCollector)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    p = start_prometheus(targets={"otel-collector:8888": f"127.0.0.1:{port}"}, scrape_interval="1s",
                         workdir=tmp_path_factory.mktemp("rules-eval"))
    try:
        yield p
    finally:
        p.stop()
        srv.shutdown()


def _rules(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/api/v1/rules", timeout=5) as resp:  # noqa: S310 - loopback
        groups = json.loads(resp.read())["data"]["groups"]
    return [r for g in groups for r in g["rules"]]


def test_every_rule_evaluates_and_data_loss_alerts_are_active(prom: Any) -> None:
    """Every shipped rule evaluates in real Prometheus, and the data-loss alerts fire against a sick Collector."""
    # rate() over a 5m window needs two samples; a few evaluation rounds (1 s each) after that.
    wait_until(lambda: _SickCollector.scrapes >= 8, timeout=60, interval=0.5, what="8 scrapes")
    time.sleep(3)
    rules = _rules(prom.url)
    assert len(rules) > 20
    broken = {r["name"]: r.get("lastError") for r in rules if r.get("health") != "ok" or r.get("lastError")}
    assert not broken, broken
    active: dict[str, set[tuple[str, ...]]] = {}
    for r in rules:
        if r["type"] == "alerting":
            for a in r.get("alerts", []):
                labels = a["labels"]
                active.setdefault(r["name"], set()).add(
                    tuple(labels.get(k, "") for k in ("exporter", "receiver", "severity")))
    exporters = {"otlp_grpc/tempo", "otlp_http/loki", "otlp_grpc/gateway"}
    assert {e for e, _, _ in active.get("OtelCollectorDroppingData", set())} == exporters, active
    assert {r for _, r, _ in active.get("OtelCollectorRefusingData", set())} == {"otlp", "otlp/browser"}, active
    assert {(e, s) for e, _, s in active.get("OtelCollectorQueueNearlyFull", set())} >= {
        ("otlp_grpc/tempo", "critical"), ("otlp_http/loki", "critical")}, active
    # The value is the sum over all signals and failure kinds, not one of them. Each counter grows a multiple of
    # one unit per scrape: send_failed 1/2/3 units (spans/log records/metric points) + enqueue_failed 1 unit each
    # = 9 units per exporter; refused 1/2/3 units = 6 per receiver.
    unit = prom.query_value('rate(otelcol_exporter_enqueue_failed_spans{exporter="otlp_grpc/gateway"}[5m])')
    assert unit and unit > 0
    values = {(r["name"], a["labels"].get("exporter") or a["labels"].get("receiver")): float(a["value"])
              for r in _rules(prom.url) if r["type"] == "alerting" for a in r.get("alerts", [])}
    assert values[("OtelCollectorDroppingData", "otlp_grpc/gateway")] == pytest.approx(9 * unit, rel=0.15), values
    assert values[("OtelCollectorRefusingData", "otlp")] == pytest.approx(6 * unit, rel=0.15), values
