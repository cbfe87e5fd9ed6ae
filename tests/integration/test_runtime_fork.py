"""Fork safety in the real AgentPress deployment shape: gunicorn --preload with uvicorn workers.

``instrument()`` runs once in the gunicorn master (import with --preload), then workers fork. Each
worker must export its own process metrics and event-loop lag, under its own pid and
``service.instance.id``; the master, which runs no event loop, exports no loop lag.
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentpress_otel._harness._proc import ComponentMissing, ManagedProcess, free_port, http_ok, wait_until
from conftest import need
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytest.importorskip("uvicorn")

APP = textwrap.dedent(
    """
    import os, time
    import agentpress_otel
    from fastapi import FastAPI

    app = FastAPI()
    tel = agentpress_otel.instrument(
        app,
        service_name="fork-test",
        protocol="http/protobuf",
        endpoint=os.environ["SINK"],
        metric_interval_s=0.5,
        logs=False,
        disabled_integrations=["litellm", "httpx", "logging", "structlog", "slack"],
    )

    @app.get("/pid")
    async def pid():
        return {"pid": os.getpid()}

    @app.get("/stall")
    async def stall():
        time.sleep(0.6)  # blocks this worker's event loop
        return {"pid": os.getpid()}
    """
)


def _gunicorn() -> str:
    exe = Path(sys.executable).with_name("gunicorn")
    if not exe.exists():
        raise ComponentMissing("gunicorn is not installed in the venv (dev dependency)")
    return str(exe)


def _by_pid(sink: OTLPSink) -> dict[int, dict[str, Any]]:
    """pid -> {"instance": service.instance.id, metric name -> list of data points}."""
    out: dict[int, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    with sink.lock:
        reqs = list(sink.received.metrics)
    for r in reqs:
        for rm in r.resource_metrics:
            res = attrs_to_dict(rm.resource.attributes)
            pid = int(res.get("process.pid", -1))
            out[pid]["instance"] = res.get("service.instance.id")
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    out[pid][m.name].extend(getattr(m, kind).data_points)
    return out


def test_gunicorn_preload_workers_report_their_own_runtime_metrics(tmp_path: Path) -> None:
    """gunicorn --preload workers each report their own runtime metrics, including a stall in one."""
    gunicorn = need(_gunicorn)
    (tmp_path / "forkapp.py").write_text(APP)
    port = free_port()
    with OTLPSink() as sink:
        proc = ManagedProcess(
            name="gunicorn",
            argv=[gunicorn, "forkapp:app", "--preload", "--workers", "2", "--worker-class",
                  "uvicorn.workers.UvicornWorker", "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"],
            env={"SINK": sink.http_endpoint, "PYTHONPATH": str(tmp_path), "CI": os.environ.get("CI", "")},
            cwd=tmp_path,
        )  # fmt: skip
        with proc:
            proc.start(ready=lambda: http_ok(f"http://127.0.0.1:{port}/pid"), timeout=60)
            master = proc.proc.pid if proc.proc else -1
            pids: set[int] = set()
            deadline = time.monotonic() + 20
            while len(pids) < 2 and time.monotonic() < deadline:
                pids.add(httpx.get(f"http://127.0.0.1:{port}/pid", timeout=5).json()["pid"])
            assert len(pids) == 2, f"only reached workers {pids}; log:\n{proc.log_tail()}"
            stalled = httpx.get(f"http://127.0.0.1:{port}/stall", timeout=10).json()["pid"]

            def have_all() -> bool:
                data = _by_pid(sink)
                return all(
                    "agentpress.asyncio.loop_lag" in data.get(p, {}) and "process.memory.usage" in data.get(p, {})
                    for p in pids
                ) and any(pt.max >= 0.35 for pt in data.get(stalled, {}).get("agentpress.asyncio.loop_lag", []))

            wait_until(have_all, timeout=20, what="metrics from both workers")
        data = _by_pid(sink)

    assert master not in pids
    instances = {data[p]["instance"] for p in pids}
    assert len(instances) == 2, instances  # each worker has its own service.instance.id
    for p in pids:
        rss = [pt.as_int or pt.as_double for pt in data[p]["process.memory.usage"]]
        assert rss and min(rss) > 10 * 1024 * 1024
    # The stall shows in that worker's histogram, within one probe period (0.25 s) of 0.6 s.
    worst = max(pt.max for pt in data[stalled]["agentpress.asyncio.loop_lag"])
    assert 0.6 - 0.25 - 0.01 <= worst <= 0.6 + 0.2, worst
    # The master never runs an event loop, so it never reports loop lag.
    assert "agentpress.asyncio.loop_lag" not in data.get(master, {})
