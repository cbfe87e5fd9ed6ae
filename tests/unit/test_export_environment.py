"""OTLP/HTTP exporters read the proxy, CA-bundle and netrc environment once (``_export.pin_environment``), with the
result ``requests`` would have computed on every export; when ``requests`` would add nothing (no proxy, no
credentials) they send with urllib3 directly (``_export.direct_transport``), with the same certificate checks.

The real path: real SDK exporters as ``instrument()`` builds them, a real HTTP proxy, a real receiver and a real TLS
receiver on loopback, real ``requests`` sessions compared with and without the pinning."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

import agentpress_otel
from agentpress_otel import _export
from agentpress_otel._config import load_config
from harness.otlp_sink import OTLPSink

URL = "http://collector.example:4318/v1/traces"


_TLS = Path(__file__).resolve().parents[1] / "data" / "tls"


class _Receiver:
    """An OTLP/HTTP receiver (HTTP/1.1 keep-alive, over real TLS when ``tls``) on 127.0.0.1: records each POST's path
    and the client port it came from (one port per TCP connection). With ``drop`` it closes every connection after
    its answer without saying so, as a Collector or a load balancer closing an idle connection does."""

    def __init__(self, *, tls: bool = True, drop: bool = False) -> None:
        import ssl

        self.seen: list[tuple[str, int]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen.append((self.path, self.client_address[1]))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = drop

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(_TLS / "loopback.pem", _TLS / "loopback.key")
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def paths(self) -> list[str]:
        """The request path of every POST received (a proxied request carries the absolute URL)."""
        return [path for path, _ in self.seen]

    def traces(self) -> list[int]:
        """The client port of each trace export received."""
        return [port for path, port in self.seen if path == "/v1/traces"]


@pytest.fixture
def proxy() -> Iterator[_Receiver]:
    """A forward proxy on loopback that answers every request itself (200, empty body)."""
    p = _Receiver(tls=False)
    yield p
    p.close()


def _exporter(signal: str, url: str = "http://collector.example:4318", *, direct: bool = False) -> Any:
    """The exporter ``instrument()`` builds; with ``direct=False`` it keeps the pinned requests session (what the
    parity tests compare), with ``direct=True`` it is exactly what ``instrument()`` gets."""
    cfg = load_config({"endpoint": url, "protocol": "http/protobuf", "service_name": "env-test"}, env={})
    if direct:
        return _export._make_exporter(cfg, signal)
    real = _export.direct_transport
    _export.direct_transport = lambda exporter: False  # type: ignore[assignment]
    try:
        return _export._make_exporter(cfg, signal)
    finally:
        _export.direct_transport = real


def _session(exporter: Any) -> requests.Session:
    session = exporter._client._transport._session
    assert type(session) is requests.Session
    return session


def _sent(exporter: Any, url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any, Any, str | None]:
    """(proxies, verify, cert, Authorization) that requests hands its adapter for one request made through the
    exporter's own transport, as an export makes it (the adapter answers 200 without a network)."""
    seen: dict[str, Any] = {}

    def send(self: Any, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        seen.update(kwargs, auth=request.headers.get("Authorization"))
        response = requests.Response()
        response.status_code, response._content, response.request, response.url = 200, b"", request, request.url
        return response

    with monkeypatch.context() as m:
        m.setattr(requests.adapters.HTTPAdapter, "send", send)
        result = exporter._client._transport.request("POST", url, headers={"Content-Type": "application/x-protobuf"},
                                                     data=b"x", timeout=5)
    assert result.status_code == 200, result.error
    return seen["proxies"], seen["verify"], seen["cert"], seen["auth"]


_CASES = {
    "nothing set": {},
    "proxy": {"HTTP_PROXY": "http://proxy.internal:3128", "HTTPS_PROXY": "http://proxy.internal:3129"},
    "proxy, host in NO_PROXY": {"HTTP_PROXY": "http://proxy.internal:3128", "NO_PROXY": "localhost,collector.example"},
    "proxy, other host in NO_PROXY": {"http_proxy": "http://proxy.internal:3128", "no_proxy": "elsewhere.example"},
    "CA bundle": {"REQUESTS_CA_BUNDLE": "{dir}/custom.pem"},
    "curl CA bundle": {"CURL_CA_BUNDLE": "{dir}/curl.pem"},
    "OTLP certificate and CA bundle": {"OTEL_EXPORTER_OTLP_CERTIFICATE": "{dir}/ca.pem",
                                       "REQUESTS_CA_BUNDLE": "{dir}/custom.pem"},
    "CA bundle that does not exist": {"REQUESTS_CA_BUNDLE": "{dir}/missing.pem"},
    "netrc": {"NETRC": "{netrc}"},
}


def _environment(case: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only ``_CASES[case]`` of what requests and the exporters read (a netrc for collector.example and the CA
    files the cases name, but ``missing.pem``, in ``tmp_path``)."""
    import os

    netrc = tmp_path / "netrc"
    netrc.write_text("machine collector.example login otlp password s3cret\n")
    netrc.chmod(0o600)
    for name in ("custom.pem", "curl.pem", "ca.pem"):
        (tmp_path / name).write_text("")
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY",
                "all_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC",
                *(k for k in os.environ if k.startswith(("OTEL_EXPORTER_OTLP_", "OTEL_PYTHON_EXPORTER_OTLP_")))):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc of the machine's
    for key, value in _CASES[case].items():
        monkeypatch.setenv(key, value.format(netrc=netrc, dir=tmp_path))


@pytest.mark.parametrize("case", list(_CASES))
@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_pinned_session_resolves_what_requests_would_per_request(
    case: str, signal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Same proxies, CA bundle and credentials as an unpinned session of the same exporter, for every signal."""
    _environment(case, monkeypatch, tmp_path)
    path = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}[signal]
    url = "http://collector.example:4318" + path

    pinned = _exporter(signal)
    assert _session(pinned).trust_env is False
    want = _sent(_exporter_unpinned(signal, monkeypatch), url, monkeypatch)
    assert _sent(pinned, url, monkeypatch) == want
    if case == "netrc":
        assert want[3] is not None and want[3].startswith("Basic ")
    if case == "proxy":
        assert want[0]["http"] == "http://proxy.internal:3128"
    if case == "CA bundle":
        assert want[1] == f"{tmp_path}/custom.pem"


def _exporter_unpinned(signal: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The exporter as the SDK builds it, without our pinning."""
    with monkeypatch.context() as m:
        m.setattr(_export, "pin_environment", lambda exporter, url: False)
        return _exporter(signal)


def test_exports_go_through_the_environment_proxy_without_reading_the_environment_again(
    proxy: _Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """instrument() over OTLP/HTTP with HTTP_PROXY set: every export reaches the collector through the proxy, and
    no export scans the environment for proxies (before the pinning, each one did, twice)."""
    for key in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    tel = agentpress_otel.instrument(service_name="env-test", endpoint="http://collector.example:4318",
                                     protocol="http/protobuf", integrations=[])
    scans = []
    real = urllib.request.getproxies_environment
    monkeypatch.setattr(urllib.request, "getproxies_environment", lambda: scans.append(1) or real())
    tracer = tel.tracer_provider.get_tracer("env-test")
    for _ in range(3):
        tracer.start_span("work").end()
        assert tel.tracer_provider.force_flush(10_000)
    tel.shutdown()
    assert proxy.paths.count("http://collector.example:4318/v1/traces") == 3
    assert scans == []


def test_host_in_no_proxy_goes_direct(monkeypatch: pytest.MonkeyPatch, proxy: _Receiver) -> None:
    """NO_PROXY is honoured as requests honours it: the receiver gets the export, the proxy nothing."""
    with OTLPSink() as sink:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.delenv("no_proxy", raising=False)
        tel = agentpress_otel.instrument(service_name="env-test", endpoint=sink.http_endpoint,
                                         protocol="http/protobuf", integrations=[])
        tel.tracer_provider.get_tracer("env-test").start_span("work").end()
        assert tel.tracer_provider.force_flush(10_000)
        tel.shutdown()
        assert [s.name for s in sink.spans()] == ["work"]
    assert proxy.paths == []


def test_a_session_of_another_type_is_left_alone() -> None:
    """A credential provider's session (a requests.Session subclass) keeps reading its environment itself."""

    class Authorized(requests.Session):
        pass

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=URL)
    exporter._client._transport._session = Authorized()
    assert _export.pin_environment(exporter, URL) is False
    assert exporter._client._transport._session.trust_env is True



def test_an_app_process_started_with_a_proxy_exports_through_it(proxy: _Receiver, tmp_path: Path) -> None:
    """The path users run: a separate interpreter whose environment names the proxy at start-up (as a container's
    does) calls instrument() over OTLP/HTTP and exits; atexit's flush sends the span through the proxy."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env.update(HTTP_PROXY=proxy.url, HOME=str(tmp_path))
    code = ("import agentpress_otel\n"
            "tel = agentpress_otel.instrument(service_name='proxied', endpoint='http://collector.example:4318',"
            " protocol='http/protobuf', integrations=[])\n"
            "tel.tracer_provider.get_tracer('t').start_span('work').end()\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "http://collector.example:4318/v1/traces" in proxy.paths, (proxy.paths, proc.stderr[-2000:])


#: Which transport instrument()'s exporters get per environment, and the CA file urllib3 is given when direct.
_DIRECT = {
    "nothing set": "default",
    "proxy": None,  # requests: it speaks to the proxy
    "proxy, host in NO_PROXY": "default",
    "proxy, other host in NO_PROXY": None,
    "CA bundle": "custom.pem",
    "curl CA bundle": "curl.pem",
    "OTLP certificate and CA bundle": "custom.pem",  # requests' environment bundle wins, as it does there
    "CA bundle that does not exist": None,  # requests: it fails the export at once (urllib3 would retry it)
    "netrc": None,  # requests: it adds the credentials
}


@pytest.mark.parametrize("case", list(_CASES))
@pytest.mark.parametrize("signal", ["traces", "metrics", "logs"])
def test_direct_transport_only_where_requests_adds_nothing_with_its_certificate_checks(
    case: str, signal: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a proxy or credentials for the URL, exports go through urllib3 directly, verifying against the CA
    file requests would use (its default bundle, or the bundle the environment names); otherwise through the pinned
    requests session (the parity test above)."""
    from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
    from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport
    from requests.utils import DEFAULT_CA_BUNDLE_PATH

    _environment(case, monkeypatch, tmp_path)
    transport = _exporter(signal, direct=True)._client._transport
    want = _DIRECT[case]
    if want is None:
        assert type(transport) is RequestsHTTPTransport
        assert transport._session.trust_env is False
        return
    assert type(transport) is Urllib3HTTPTransport
    kw = transport._pool.connection_pool_kw
    assert kw["cert_reqs"] == "CERT_REQUIRED"
    assert kw["ca_certs"] == (DEFAULT_CA_BUNDLE_PATH if want == "default" else str(tmp_path / want))
    assert "cert_file" not in kw


def test_client_certificate_and_credential_providers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """mTLS files reach urllib3 as requests would pass them (a missing one keeps requests, which fails the export at
    once where urllib3 would retry it); a credential provider's session keeps requests."""
    from opentelemetry.exporter.http.transport._requests import RequestsHTTPTransport
    from opentelemetry.exporter.http.transport._urllib3 import Urllib3HTTPTransport

    _environment("nothing set", monkeypatch, tmp_path)
    pem, key = tmp_path / "client.pem", tmp_path / "client.key"
    pem.write_text("")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(pem))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(key))
    assert type(_exporter("traces", direct=True)._client._transport) is RequestsHTTPTransport  # no key file yet
    key.write_text("")
    transport = _exporter("traces", direct=True)._client._transport
    assert type(transport) is Urllib3HTTPTransport
    kw = transport._pool.connection_pool_kw
    assert (kw["cert_file"], kw["key_file"]) == (str(pem), str(key))

    pinned = _exporter("traces")  # a pinned requests session, as if a provider had handed it over
    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER", "vault")
    assert _export.direct_transport(pinned) is False
    monkeypatch.delenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER")
    _session(pinned).headers["Authorization"] = "Bearer t"  # a session that adds something of its own
    assert _export.direct_transport(pinned) is False
    del _session(pinned).headers["Authorization"]
    assert _export.direct_transport(pinned) is True


def _three_exports(url: str) -> None:
    tel = agentpress_otel.instrument(service_name="direct-test", endpoint=url, protocol="http/protobuf",
                                     integrations=[], export_timeout_s=2)
    tracer = tel.tracer_provider.get_tracer("direct-test")
    for _ in range(3):
        tracer.start_span("work").end()
        tel.tracer_provider.force_flush(10_000)
    tel.shutdown()


@pytest.mark.parametrize("trusted", [True, False])
def test_direct_exports_over_real_tls_verify_the_collector(
    trusted: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """instrument() over OTLP/HTTPS to a real TLS receiver: with its CA named (OTEL_EXPORTER_OTLP_CERTIFICATE) three
    exports arrive over one kept-alive connection; without it the certificate is refused and nothing arrives (the
    direct transport verifies, against requests' default bundle, as requests does)."""
    _environment("nothing set", monkeypatch, tmp_path)
    if trusted:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(_TLS / "loopback.pem"))
    receiver = _Receiver()
    try:
        _three_exports(receiver.url)
    finally:
        receiver.close()
    if trusted:
        assert len(receiver.traces()) == 3
        assert len(set(receiver.traces())) == 1  # one connection, kept alive
    else:
        assert receiver.traces() == []


def test_a_connection_the_collector_dropped_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The receiver closes each connection after answering, without a ``Connection: close``: every export still
    arrives, each on a new connection (the pooled one is found dead, or the SDK's immediate retry on a connection
    error sends it again)."""
    _environment("nothing set", monkeypatch, tmp_path)
    receiver = _Receiver(tls=False, drop=True)
    try:
        _three_exports(receiver.url)
    finally:
        receiver.close()
    assert len(receiver.traces()) == 3
    assert len(set(receiver.traces())) == 3
