"""The same app, through the real Collector (our ``otelcol-apotel`` build with the shipped config) into the
Loki stand-in: records keep their trace, span, project and thread ids, and the planted secret never
reaches the backend. Skips locally (fails under CI=true) when the Collector binary is missing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_logs_otlp import APP, JWT, SECRET  # type: ignore[import-not-found]  # same directory

from agentpress_otel._harness._proc import ManagedProcess, free_port, wait_until
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def collector_chain(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    from agentpress_otel._harness.collector import ensure_collector_binary, start_collector, start_standin

    need(lambda: ensure_collector_binary(build=False))
    started: list[Any] = []
    try:
        tempo = start_standin("traces", workdir=tmp_path / "tempo")
        started.append(tempo)
        loki = start_standin("logs", workdir=tmp_path / "loki")
        started.append(loki)
        col = start_collector(
            traces_endpoint=tempo.endpoint,
            logs_endpoint=loki.endpoint,
            remote_write_url=f"http://127.0.0.1:{free_port()}/api/v1/write",  # metrics are not under test
            workdir=tmp_path / "otelcol",
        )
        started.append(col)
        yield col, loki
    finally:
        for s in reversed(started):
            s.stop()


def test_logs_through_real_collector_to_loki(collector_chain: Any, tmp_path: Path) -> None:
    """Logs go through the real Collector to Loki with trace and ids, redacted."""
    col, loki = collector_chain
    script = tmp_path / "app.py"
    script.write_text(APP)
    proc = ManagedProcess(
        "logs-app",
        [sys.executable, str(script), col.otlp_grpc_endpoint, "grpc", SECRET, JWT],
        env={"OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_BSP_SCHEDULE_DELAY": "100"},
        log_dir=tmp_path,
    )
    proc.start()
    try:
        wait_until(lambda: not proc.running, timeout=60, what="app exit")
    finally:
        proc.stop()
    assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail()

    ids = next(json.loads(x) for x in proc.log_tail(10_000).splitlines() if x.startswith('{"marker": "ids"'))

    def bodies() -> set[Any]:
        return {r.body for r in loki.logs()}

    wait_until(lambda: {"stdlib hello world", "structlog hello", "boom"} <= bodies(), timeout=60, what="logs in Loki")
    for body in ("stdlib hello world", "structlog hello", "boom"):
        rec = next(r for r in loki.logs() if r.body == body)
        assert rec.trace_id == ids["trace_id"] and rec.span_id == ids["span_id"], body
        assert rec.attributes["agentpress.project.id"] == "p-1" and rec.attributes["agentpress.thread.id"] == "t-1"
    raw = loki.output.read_text()
    assert SECRET not in raw and JWT not in raw
