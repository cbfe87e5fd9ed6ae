"""App for test_failure_fork.py: instrumented at import, i.e. in gunicorn's master under ``--preload``."""

from __future__ import annotations

import os
from typing import Any

from fastapi import FastAPI
from opentelemetry import metrics, trace

import agentpress_otel

app = FastAPI()
tel = agentpress_otel.instrument(app, service_name="fork-app", integrations=["fastapi"], logs=False)
MASTER_PID = os.getpid()
tracer = trace.get_tracer("fork-app")
requests_counter = metrics.get_meter("fork-app").create_counter("fork_app.requests")


@app.get("/api/thread/{thread_id}/who")
async def who(thread_id: str) -> dict[str, Any]:
    with tracer.start_as_current_span("who.inner"):
        requests_counter.add(1, {"route": "who"})
    cur = agentpress_otel.current()
    res = cur.resource.attributes if cur is not None else {}
    return {"pid": os.getpid(), "master_pid": MASTER_PID, "instance": res.get("service.instance.id")}
