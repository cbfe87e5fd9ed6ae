"""The FastAPI middleware in-process (httpx.ASGITransport): exclusions, request id, trust boundary, loop probe."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from opentelemetry.trace import SpanKind

from agentpress_otel import current_ids
from agentpress_otel.integrations import runtime
from agentpress_otel.testing import Capture, capture


def _app(seen: list[dict[str, str]] | None = None) -> FastAPI:
    app = FastAPI()

    for path in ("/health", "/api/health", "/healthcheck", "/api/client/{n}/info", "/metrics-report"):

        @app.get(path)
        async def plain() -> dict[str, bool]:
            return {"ok": True}

    @app.get("/api/thread/{thread_id}/x")
    async def x(thread_id: str) -> dict[str, str]:
        if seen is not None:
            seen.append(current_ids())
        return {"thread_id": thread_id}

    @app.get("/own-rid")
    async def own_rid() -> JSONResponse:
        return JSONResponse({"ok": True}, headers={"X-Request-ID": "app-chose-this"})

    return app


async def _get(app: FastAPI, *paths: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return [await c.get(p, headers=headers) for p in paths]


def _server_paths(cap: Capture) -> list[str]:
    return sorted(str((s.attributes or {}).get("url.path")) for s in cap.spans() if s.kind is SpanKind.SERVER)


def test_default_exclusions_are_exact_paths_with_optional_slash() -> None:
    """Default excluded paths match exactly (optional trailing slash), not as prefixes."""
    app = _app()
    with capture(app=app, integrations=["fastapi"]) as cap:
        paths = ["/health", "/health/", "/health?x=1", "/api/health", "/healthcheck", "/metrics-report",
                 "/api/thread/t1/x"]  # fmt: skip
        assert all(r.status_code < 400 for r in asyncio.run(_get(app, *paths)))  # "/health/" redirects
        assert _server_paths(cap) == ["/api/thread/t1/x", "/healthcheck", "/metrics-report"]


@pytest.mark.parametrize("var", ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "OTEL_PYTHON_EXCLUDED_URLS"])
def test_standard_excluded_urls_are_regexes_searched_in_the_path(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    """The standard excluded-URLs variable replaces the defaults and its entries are searched as regexes."""
    monkeypatch.setenv(var, "client/.*/info,healthcheck")
    app = _app()
    with capture(app=app, integrations=["fastapi"]) as cap:
        asyncio.run(_get(app, "/api/client/42/info", "/healthcheck", "/health", "/api/thread/t1/x"))
        # The standard list replaces the defaults: /health is traced now, the two patterns are not.
        assert _server_paths(cap) == ["/api/thread/t1/x", "/health"]


def test_app_set_request_id_is_not_duplicated() -> None:
    """A request id the app sets itself is kept, and every response has exactly one."""
    app = _app()
    with capture(app=app, integrations=["fastapi"]):
        (own, other) = asyncio.run(_get(app, "/own-rid", "/api/thread/t1/x"))
    assert own.headers.get_list("x-request-id") == ["app-chose-this"]
    assert len(other.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize("trust", [False, True])
def test_inbound_baggage_user_id_is_not_trusted_by_default(trust: bool) -> None:
    """Inbound baggage labels work with project and run ids, but sets the user id only when trusted."""
    seen: list[dict[str, str]] = []
    app = _app(seen)
    baggage = "user.id=admin-spoofed,agentpress.project.id=p-9,agentpress.agent_run.id=r-3"
    with capture(app=app, integrations=["fastapi"], trust_baggage_user_id=trust) as cap:
        asyncio.run(_get(app, "/api/thread/t1/x", headers={"baggage": baggage}))
        (server,) = [s for s in cap.spans() if s.kind is SpanKind.SERVER]
    attrs: dict[str, Any] = dict(server.attributes or {})
    # Ids that only label the work are still accepted from baggage...
    assert attrs["agentpress.project.id"] == "p-9" and attrs["agentpress.agent_run.id"] == "r-3"
    assert seen[0]["project_id"] == "p-9" and seen[0]["thread_id"] == "t1"
    # ...but the user only when the operator says the callers are trusted.
    assert ("user.id" in attrs) is trust
    assert ("user_id" in seen[0]) is trust


def test_first_request_probes_a_loop_the_patch_never_saw() -> None:
    """A loop already running before instrument() (like uvloop's, which the run_forever patch cannot see)."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        app = _app()
        with capture(app=app, integrations=["fastapi", "runtime"]) as cap:
            assert "runtime" in cap.telemetry.integrations
            assert loop not in runtime._watched_loops()
            asyncio.run_coroutine_threadsafe(_get(app, "/api/thread/t1/x"), loop).result(10)
            assert loop in runtime._watched_loops()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()
