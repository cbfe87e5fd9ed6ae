"""Ports and admin endpoints are exposed only as the docs say.

* The Prometheus that ``agentpress-otel stack up`` and the tests start (the harness) has no lifecycle API:
  a cross-origin ``POST /-/quit`` from any page a local browser opens must not stop it.
* docker-compose publishes the backend OTLP ports (4317/4318) on loopback by default; only the browser port
  (4319) is public.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from agentpress_otel._harness.prometheus import start_prometheus
from conftest import need  # type: ignore[import-not-found]

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.mark.integration
def test_prometheus_quit_endpoint_is_disabled() -> None:
    """Prometheus as we start it refuses POST /-/quit and keeps running."""
    prom = need(start_prometheus)
    try:
        req = urllib.request.Request(f"{prom.url}/-/quit", method="POST",  # noqa: S310 - loopback
                                     headers={"Origin": "https://evil.example"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            status = int(err.code)
        assert status == 403, status  # Prometheus: "Lifecycle API is not enabled."
        assert prom.process.running, "Prometheus stopped after POST /-/quit"
    finally:
        prom.stop()


def test_compose_backend_otlp_ports_bind_loopback_by_default() -> None:
    """The compose Collector binds the backend OTLP ports to loopback by default, the browser port to all."""
    ports = yaml.safe_load(COMPOSE.read_text())["services"]["otel-collector"]["ports"]
    binds: dict[str, str] = {}
    for p in ports:
        # "${VAR:-default}:host:container" -> the bind address compose uses when VAR is unset
        m = re.fullmatch(r"\$\{(\w+):-([^}]+)\}:(\d+):(\d+)", p)
        assert m, f"{p!r}: every published Collector port names its bind address"
        binds[m.group(4)] = m.group(2)
    assert binds == {"4317": "127.0.0.1", "4318": "127.0.0.1", "4319": "0.0.0.0"}, binds
