"""Outbound trust boundary: our id baggage stays inside the network; traceparent goes everywhere.

A real httpx client talks through a real (tiny) forward proxy on loopback, so requests addressed to an
outside host (``api.llm-provider.example``) actually leave the process and we can read what was sent.
"""

from __future__ import annotations

import asyncio
import socketserver
import threading
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry import baggage, context

from agentpress_otel import inject, thread_context
from agentpress_otel.testing import capture

_OURS = ("agentpress.project.id", "agentpress.thread.id", "user.id")


class _Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, str]] = {}  # request target -> headers
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").split()
        headers: dict[str, str] = {}
        while (h := self.rfile.readline().decode("latin-1").strip()) != "":
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        assert isinstance(self.server, _Proxy)
        self.server.seen[line[1]] = headers
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@pytest.fixture
def proxy() -> Iterator[_Proxy]:
    srv = _Proxy()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _bag(headers: dict[str, str]) -> dict[str, str]:
    return dict(m.strip().split("=", 1) for m in headers.get("baggage", "").split(",") if "=" in m)


TARGETS = {
    "http://api.llm-provider.example/v1/chat": False,  # a third party: no ids
    "http://10.20.30.40/internal": True,  # private network
    "http://billing/check": True,  # single-label name (compose/k8s service)
    "http://llm.corp.example/v1/chat": True,  # listed in internal_hosts
}


def _call_all(proxy_url: str, *, use_async: bool) -> None:
    if use_async:
        async def run() -> None:
            async with httpx.AsyncClient(proxy=proxy_url) as c:
                for url in TARGETS:
                    await c.get(url, timeout=5)

        asyncio.run(run())
    else:
        with httpx.Client(proxy=proxy_url) as c:
            for url in TARGETS:
                c.get(url, timeout=5)


@pytest.mark.parametrize("use_async", [False, True])
def test_id_baggage_only_to_internal_hosts(proxy: _Proxy, use_async: bool) -> None:
    """Our id baggage goes only to internal hosts, while traceparent and others' baggage go everywhere."""
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    with capture(integrations=["httpx"], internal_hosts=["corp.example"]) as cap:
        assert "httpx" in cap.telemetry.integrations
        token = context.attach(baggage.set_baggage("team", "agents"))  # the app's own entry
        try:
            with thread_context(project_id="p-1", thread_id="t-1", user_id="u-1"):
                _call_all(proxy_url, use_async=use_async)
                internal = inject({})  # our own propagation (Dramatiq, manual) is internal: ids travel
        finally:
            context.detach(token)
    assert len(proxy.seen) == len(TARGETS)
    for url, is_internal in TARGETS.items():
        headers = proxy.seen[url]
        assert headers["traceparent"].startswith("00-"), url  # the trace goes everywhere (W3C)
        bag = _bag(headers)
        assert bag.get("team") == "agents", url  # not our entry: left alone
        for key in _OURS:
            assert (key in bag) is is_internal, (url, key, bag)
    assert {k: v for k, v in _bag(internal).items() if k in _OURS} == {
        "agentpress.project.id": "p-1", "agentpress.thread.id": "t-1", "user.id": "u-1"}  # fmt: skip


def test_external_request_with_only_our_ids_sends_no_baggage_header(proxy: _Proxy) -> None:
    """An external request whose baggage would hold only our ids gets no baggage header, only traceparent."""
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    with capture(integrations=["httpx"]), thread_context(thread_id="t-1", user_id="u-1"):
        httpx.get("http://api.llm-provider.example/v1/x", proxy=proxy_url, timeout=5)
    headers = proxy.seen["http://api.llm-provider.example/v1/x"]
    assert "baggage" not in headers
    assert "traceparent" in headers


def test_filter_is_removed_at_shutdown(proxy: _Proxy) -> None:
    """Shutdown removes the baggage filter and httpx is plain again."""
    proxy_url = f"http://127.0.0.1:{proxy.server_address[1]}"
    with capture(integrations=["httpx"]):
        pass
    assert not hasattr(httpx.HTTPTransport.handle_request, "__wrapped__")
    assert not hasattr(httpx.AsyncHTTPTransport.handle_async_request, "__wrapped__")
    # Without instrument(), nothing filters (and nothing injects): plain httpx again.
    httpx.get("http://api.llm-provider.example/plain", proxy=proxy_url, timeout=5)
    assert "traceparent" not in proxy.seen["http://api.llm-provider.example/plain"]
