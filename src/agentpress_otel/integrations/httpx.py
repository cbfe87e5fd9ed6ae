"""httpx: CLIENT spans with W3C traceparent/tracestate/baggage injected (stock instrumentation, our provider)."""

from __future__ import annotations

import os
from typing import Any

from agentpress_otel._setup import Telemetry

_instrumentor: Any = None


def instrument(tel: Telemetry) -> bool:
    global _instrumentor
    import httpx  # noqa: F401  - ImportError here means "not installed": the integration is skipped
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    if _instrumentor is not None:
        return True
    # Stable HTTP semantic conventions (server.address, http.request.method, ...) unless the app chose otherwise;
    # dashboards group outbound calls by server.address.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    inst = HTTPXClientInstrumentor()
    if inst.is_instrumented_by_opentelemetry:
        return False  # the app instrumented httpx itself: leave it alone
    inst.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)
    _instrumentor = inst
    return True


def uninstrument() -> None:
    global _instrumentor
    if _instrumentor is not None:
        _instrumentor.uninstrument()
        _instrumentor = None
