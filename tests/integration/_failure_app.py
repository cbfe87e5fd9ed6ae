"""The app under test for test_failure_collector.py: real uvicorn, our instrumentation, a loop-lag probe.

Run as ``python _failure_app.py PORT``; exporter settings come from the environment (AGENTPRESS_OTEL_*).
Each work request makes 5 spans and 1 log record. ``/_probe`` reports the worst event-loop stall since
the last reset, RSS and the drop counters; ``/_shutdown`` times ``Telemetry.ashutdown`` while the probe
keeps measuring the loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from opentelemetry import trace

import agentpress_otel
from agentpress_otel import _selftel

PROBE_PERIOD_S = 0.005
_lag = {"max_ms": 0.0, "raw_max_ms": 0.0, "samples": 0}


def _run_delay_ns(fd: int) -> int:
    """Time this thread spent runnable but waiting for a CPU (Linux schedstat, 2nd field)."""
    try:
        return int(os.pread(fd, 128, 0).split()[1])
    except (OSError, ValueError, IndexError):
        return 0


async def _probe() -> None:
    """Sleep 5 ms in a loop; any extra delay is time the loop could not run (a stall).

    ``max_ms`` is the stall minus the time the OS kept the loop thread off a busy CPU (runqueue wait):
    what remains is our own doing (code blocking the loop, or waiting for the GIL held by another
    thread). ``raw_max_ms`` keeps the plain wall-clock figure.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        fd = -1
    while True:
        t0, d0 = loop.time(), _run_delay_ns(fd) if fd >= 0 else 0
        await asyncio.sleep(PROBE_PERIOD_S)
        raw_ms = (loop.time() - t0 - PROBE_PERIOD_S) * 1000
        waited_ms = ((_run_delay_ns(fd) - d0) / 1e6) if fd >= 0 else 0.0
        lag_ms = raw_ms - waited_ms
        _lag["samples"] += 1
        _lag["raw_max_ms"] = max(_lag["raw_max_ms"], raw_ms)
        if lag_ms > _lag["max_ms"]:
            _lag["max_ms"] = lag_ms


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_probe())
    yield
    task.cancel()


app = FastAPI(lifespan=lifespan)
tel = agentpress_otel.instrument(app, service_name="failure-app", integrations=["fastapi", "logging"])
tracer = trace.get_tracer("failure-app")
log = logging.getLogger("failure-app")


@app.get("/api/thread/{thread_id}/work")
async def work(thread_id: str) -> dict[str, Any]:
    for i in range(4):
        with tracer.start_as_current_span(f"step {i}") as span:
            span.set_attribute("step", i)
    log.info("work done", extra={"thread_ref": thread_id})
    return {"thread_id": thread_id}


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


@app.get("/_probe")
async def probe(reset: int = 0) -> dict[str, Any]:
    out = {"max_lag_ms": _lag["max_ms"], "raw_max_lag_ms": _lag["raw_max_ms"], "samples": _lag["samples"],
           "rss_kb": _rss_kb(),
           "dropped": _selftel.dropped(), "dropped_spans": _selftel.dropped("spans"),
           "dropped_queue_full": _selftel.dropped(reason="queue_full"),
           "dropped_export_failed": _selftel.dropped(reason="export_failed"), "errors": _selftel.errors()}
    if reset:
        _lag["max_ms"] = _lag["raw_max_ms"] = 0.0
    return out


@app.post("/_shutdown")
async def shutdown(timeout: float = 1.0) -> dict[str, Any]:  # noqa: ASYNC109 - a query parameter
    _lag["max_ms"] = _lag["raw_max_ms"] = 0.0
    t0 = time.monotonic()
    ok = await tel.ashutdown(timeout_s=timeout)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(0.05)  # let the probe record a stall that ended just now
    return {"elapsed_s": elapsed, "ok": ok, "max_lag_ms": _lag["max_ms"], "raw_max_lag_ms": _lag["raw_max_ms"]}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
