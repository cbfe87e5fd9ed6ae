"""FastAPI backend for the browser end-to-end test (tests/integration/test_browser_e2e.py).

Instrumented with ``agentpress_otel.instrument(app)``; exports to the Collector named by the standard
``AGENTPRESS_OTEL_*`` / ``OTEL_*`` variables. CORS allows only the test page's origin and the W3C
propagation headers, which is exactly what a production AgentPress API needs for browser traces.
Run: ``uvicorn --app-dir browser/e2e backend_app:app`` with ``PAGE_ORIGIN=http://127.0.0.1:<port>``.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware

import agentpress_otel

app = FastAPI()
app.add_middleware(
    CORSMiddleware,
    allow_origins=[o for o in os.environ.get("PAGE_ORIGIN", "").split(",") if o],
    allow_methods=["GET", "POST"],
    # Authorization for the app's own bearer token; the rest is trace propagation.
    allow_headers=["authorization", "content-type", *agentpress_otel.PROPAGATION_HEADERS],
    expose_headers=["x-request-id"],
    max_age=600,
)
agentpress_otel.instrument(app, service_name="browser-e2e-backend")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/thread/{thread_id}/ping")
async def ping(thread_id: str, request: Request) -> dict[str, str | None]:
    # Echo what propagation delivered so the test can compare it with the browser's span.
    return {"thread_id": thread_id, "traceparent": request.headers.get("traceparent")}
