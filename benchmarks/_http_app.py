"""The trivial endpoint served by uvicorn for bench_http.py, in one of five modes (argv[1]).

* ``bare``: no telemetry (FastAPI's native telemetry off);
* ``default``: the one line a user writes, ``agentpress_otel.instrument(app)``, every default on (traces,
  metrics, logs, all integrations, runtime probe), exporting over OTLP to the benchmark's local sink;
* ``ours``: only our FastAPI integration, logs off (the middleware's own cost);
* ``stock``: the SDK + upstream ``FastAPIInstrumentor``;
* ``native``: the SDK with FastAPI's built-in OpenTelemetry spans.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from fastapi import FastAPI

mode, port = sys.argv[1], int(sys.argv[2])
app = FastAPI()


@app.get("/api/thread/{thread_id}/status")
async def status(thread_id: str) -> dict[str, str]:
    return {"thread_id": thread_id, "status": "running"}


if mode == "default":
    import agentpress_otel

    agentpress_otel.instrument(app)  # service name from OTEL_SERVICE_NAME, endpoint from OTEL_EXPORTER_OTLP_*
elif mode == "ours":
    import agentpress_otel

    agentpress_otel.instrument(app, service_name="bench", integrations=["fastapi"], metrics=True, logs=False)
elif mode in {"stock", "native"}:
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tp = TracerProvider()
    tp.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"], insecure=True))
    )
    trace.set_tracer_provider(tp)
    if mode == "stock":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=tp)
else:
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})  # type: ignore[call-arg]
    app.get("/api/thread/{thread_id}/status")(status)

uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
