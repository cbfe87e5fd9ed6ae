"""Debian's ``prometheus`` (2.42 on bookworm) running the shipped ``stack/prometheus/prometheus.yml``.

Prometheus has no environment-variable expansion in scrape targets, so the only documented way to point the
shipped file at loopback test ports is to give it a different file. We therefore copy the shipped config and
rewrite ONLY the ``host:port`` strings of ``static_configs.targets`` (compose service names -> 127.0.0.1:<free
port>) and make ``rule_files`` absolute; everything else (jobs, rule globs, alerting) is used as shipped.
Flags match docker-compose.yml: remote-write receiver (the Collector pushes metrics) and exemplar storage.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentpress_otel._assets import deploy_file
from agentpress_otel._harness._proc import ManagedProcess, find_binary, free_port, http_ok, loopback_url

__all__ = ["PROMETHEUS_CONFIG", "Prometheus", "render_config", "start_prometheus"]

PROMETHEUS_CONFIG = deploy_file("stack/prometheus/prometheus.yml")
START_TIMEOUT = 60.0


def render_config(
    *,
    targets: Mapping[str, str],
    source: Path = PROMETHEUS_CONFIG,
    scrape_interval: str | None = None,
) -> str:
    """Return the shipped config text with ``targets`` (``{"otel-collector:8888": "127.0.0.1:40123"}``) rewritten.

    A plain text substitution of exact ``host:port`` tokens (no YAML round trip, so comments, ordering and any
    key we do not know about survive). Relative ``rule_files`` globs are made absolute because the rendered file
    lives in a temp dir. ``scrape_interval`` optionally shortens the global scrape/evaluation interval for tests.

    Example::

        text = render_config(targets={"otel-collector:8888": "127.0.0.1:40123"})
    """
    text = source.read_text()
    for old, new in targets.items():
        text = re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w.-])", new, text)

    def absolute_rule(m: re.Match[str]) -> str:
        return f"{m.group(1)}{(source.parent / m.group(2)).resolve()}"

    text = re.sub(r"(?m)^(\s*-\s+)(rules/\S+)", absolute_rule, text)
    if scrape_interval:
        text = re.sub(r"(?m)^(\s+(?:scrape|evaluation)_interval:\s*)\S+", rf"\g<1>{scrape_interval}", text)
    return text


@dataclass
class Prometheus:
    """A running Prometheus on a loopback port with a private TSDB directory."""

    port: int
    workdir: Path
    process: ManagedProcess
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return loopback_url(self.port)

    @property
    def remote_write_url(self) -> str:
        return f"{self.url}/api/v1/write"

    def _get(self, path: str, params: Mapping[str, str]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus query failed: {body}")
        return body["data"]

    def query(self, promql: str, *, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (now, or at the Unix time ``at``); returns the ``result`` list (``metric``, ``value``).

        Example::

            rows = prom.query('sum(rate(traces_span_metrics_calls_total[1m])) by (http_route)')
        """
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        data = self._get("/api/v1/query", params)
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_value(self, promql: str) -> float | None:
        """Value of a single-series instant query, or ``None`` when the result is empty.

        Example::

            total = prom.query_value('sum(gen_ai_client_token_usage_sum)')
        """
        rows = self.query(promql)
        if not rows:
            return None
        return float(rows[0]["value"][1])

    def exemplars(self, promql: str, *, window_s: float = 600.0) -> list[dict[str, str]]:
        """Exemplar label sets (``trace_id``, ``span_id``) attached to the series of ``promql`` in the last window.

        Example::

            ids = {e["trace_id"] for e in prom.exemplars('traces_span_metrics_duration_seconds_bucket')}
        """
        now = time.time()
        data = self._get("/api/v1/query_exemplars", {"query": promql, "start": str(now - window_s), "end": str(now)})
        return [dict(e["labels"]) for row in data for e in row.get("exemplars", [])]

    def series(self, match: str) -> list[dict[str, str]]:
        """Label sets of the series matching the selector ``match``."""
        data: list[dict[str, str]] = self._get("/api/v1/series", {"match[]": match})
        return data

    def targets_health(self) -> dict[str, str]:
        """``{job: health}`` of the active scrape targets."""
        data = self._get("/api/v1/targets", {"state": "active"})
        return {t["labels"].get("job", ""): t["health"] for t in data["activeTargets"]}

    def stop(self) -> None:
        self.process.stop(timeout=15.0)

    def log_tail(self, n: int = 60) -> str:
        return self.process.log_tail(n)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(
    *,
    targets: Mapping[str, str] | None = None,
    scrape_interval: str | None = None,
    workdir: Path | None = None,
    port: int | None = None,
    timeout: float = START_TIMEOUT,
) -> Prometheus:
    """Start ``prometheus`` with the shipped config on ``port`` (default: a free loopback port); the caller must
    ``stop()`` it.

    ``targets`` maps shipped targets to loopback ones (``localhost:9090`` is always mapped to this instance).
    Raises :class:`ComponentMissing` when the binary is not installed.

    Example::

        prom = start_prometheus(targets={"otel-collector:8888": f"127.0.0.1:{col.metrics_port}"})
        try:
            prom.query_value("up")
        finally:
            prom.stop()
    """
    binary = find_binary("prometheus")
    wd = workdir or Path(tempfile.mkdtemp(prefix="apotel-prometheus-"))
    wd.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    mapping = {"localhost:9090": f"127.0.0.1:{port}", **(targets or {})}
    cfg_path = wd / "prometheus.yml"
    cfg_path.write_text(render_config(targets=mapping, scrape_interval=scrape_interval))
    proc = ManagedProcess(
        name="prometheus",
        argv=[
            binary,
            f"--config.file={cfg_path}",
            f"--storage.tsdb.path={wd / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-remote-write-receiver",
            "--enable-feature=exemplar-storage",
            # No --web.enable-lifecycle: any web page could POST /-/quit to it (`agentpress-otel stack up` uses this).
        ],
        cwd=wd,
        log_dir=wd,
    )
    proc.start(ready=lambda: http_ok(loopback_url(port, "/-/ready")), timeout=timeout)
    return Prometheus(port=port, workdir=wd, process=proc)
