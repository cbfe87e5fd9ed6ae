"""App for test_stop_flush.py: one span, one log record and one counter increment per request.

Instrumented at import (so in gunicorn's master under ``--preload``). ``python _stop_app.py PORT`` serves it
with ``uvicorn.run`` the way most deployments start it.
"""

from __future__ import annotations

import logging
import os
import sys

from fastapi import FastAPI
from opentelemetry import metrics, trace

import agentpress_otel

app = FastAPI()
tel = agentpress_otel.instrument(app, service_name="stop-app", integrations=["fastapi", "logging"])
tracer = trace.get_tracer("stop-app")
work_counter = metrics.get_meter("stop-app").create_counter("stop_app.work")
log = logging.getLogger("stop_app")


@app.get("/work/{i}")
async def work(i: int) -> dict[str, int]:
    with tracer.start_as_current_span("work.inner") as span:
        span.set_attribute("work.i", i)
        log.warning("work done %d", i)
    work_counter.add(1)
    return {"pid": os.getpid()}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
