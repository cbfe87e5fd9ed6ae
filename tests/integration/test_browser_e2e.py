"""Browser → Collector → backends, end to end, in real headless Chromium.

Real processes on loopback, all started through ``agentpress_otel._harness``:

* our Collector build (``otelcol-apotel``, user cache) with the shipped ``collector-config/config.yaml`` (only ports,
  paths and timings overridden by env), its Tempo and Loki destinations replaced by an in-process OTLP sink;
* the instrumented FastAPI backend (``browser/e2e/backend_app.py``, ``agentpress_otel.instrument(app)``) on uvicorn;
* the pipeline harness's ``start_collector`` for the Collector;
* a static server for the test page (``browser/e2e/page.html`` + ``browser/dist``);
* Debian's Chromium driven by ``playwright-core`` (``browser/e2e/drive.mjs``, no browser download).

The page tags a thread, clicks a button that fetches the backend with ``?token=<secret>`` and then throws.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import (
    ComponentMissing,
    ManagedProcess,
    find_binary,
    free_port,
    http_ok,
    wait_until,
)
from agentpress_otel._harness.collector import Collector, ensure_collector_binary, start_collector
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest
from harness import REPO_ROOT
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

BROWSER_DIR = REPO_ROOT / "browser"
SECRET = "s3cr3t-e2e-" + uuid.uuid4().hex[:8]  # not a JWT/key shape: only the SDK's redaction can hide it
THREAD_ID = "thread-" + uuid.uuid4().hex[:8]
PROJECT_ID = "project-e2e"


# --------------------------------------------------------------------------------------------- components
def _chromium() -> str:
    for cand in (os.environ.get("APOTEL_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise ComponentMissing("chromium not installed: apt-get install -y chromium")


def _browser_build() -> str:
    node = find_binary("node")
    for dep in ("playwright-core", "esbuild", "@opentelemetry/sdk-trace"):
        if not (BROWSER_DIR / "node_modules" / dep).is_dir():
            raise ComponentMissing(f"browser/node_modules/{dep} missing: run scripts/setup-browser.sh")
    return node


def _rebuild_dist(node: str) -> None:
    """Bundle browser/src into browser/dist (esbuild, well under a second), so the page tests the current source.

    A stale dist/ from an earlier build would otherwise make this test pass or fail for code that no longer
    exists. A build failure fails the test (it is not a missing component).
    """
    proc = subprocess.run([node, "scripts/build.mjs"], cwd=BROWSER_DIR, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, f"browser build failed:\n{proc.stdout}\n{proc.stderr}"
    bundle = BROWSER_DIR / "dist" / "agentpress-otel.js"
    newest_src = max(f.stat().st_mtime for f in (BROWSER_DIR / "src").glob("*.js"))
    assert bundle.stat().st_mtime >= newest_src, "browser/dist is older than browser/src after the build"


@dataclass
class Stack:
    sink: OTLPSink
    collector_browser_url: str
    page_origin: str
    other_origin: str
    backend_url: str
    logs: list[ManagedProcess]


# Keep every trace and decide fast, so the assertions don't depend on the sampling draw.
COLLECTOR_TEST_ENV = {
    "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "100",
    "OTELCOL_TAIL_DECISION_WAIT": "1s",
    "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms",
    "OTELCOL_LOG_LEVEL": "warn",
    # Browser data gets the Collector's environment, whatever the page says (the page also says "test").
    "OTELCOL_DEPLOYMENT_ENVIRONMENT": "test",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    node = need(_browser_build)
    _rebuild_dist(node)
    need(_chromium)
    need(ensure_collector_binary)
    page_port, other_port, backend_port = free_port(), free_port(), free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    # "localhost" vs "127.0.0.1" are different origins: the same page server, not on the allowlist.
    other_origin = f"http://localhost:{other_port}"
    tmp = Path(tempfile.mkdtemp(prefix="apotel-browser-e2e-"))
    procs: list[ManagedProcess] = []
    sink = OTLPSink().start()
    collector: Collector | None = None
    try:
        # The pipeline harness runs the shipped config; Tempo and Loki are replaced by the in-process sink.
        collector = start_collector(
            traces_endpoint=f"127.0.0.1:{sink.grpc_port}",
            logs_endpoint=sink.http_endpoint,
            remote_write_url=f"{sink.http_endpoint}/api/v1/write",
            env=COLLECTOR_TEST_ENV,
            workdir=tmp / "otelcol",
            cors_origins=[page_origin],
        )

        backend = ManagedProcess(
            "backend",
            [sys.executable, "-m", "uvicorn", "--app-dir", str(BROWSER_DIR / "e2e"), "backend_app:app",
             "--host", "127.0.0.1", "--port", str(backend_port), "--log-level", "warning"],
            env={
                "PAGE_ORIGIN": page_origin,
                "PYTHONPATH": str(REPO_ROOT / "src"),
                "AGENTPRESS_OTEL_ENDPOINT": collector.otlp_grpc_endpoint,
                "AGENTPRESS_OTEL_PROTOCOL": "grpc",
                "AGENTPRESS_OTEL_METRICS": "false",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            },
            cwd=REPO_ROOT,
            log_dir=tmp,
        )  # fmt: skip
        procs.append(backend)
        backend.start(ready=lambda: http_ok(f"http://127.0.0.1:{backend_port}/health"), timeout=60)

        for name, port in (("page", page_port), ("other", other_port)):
            server = ManagedProcess(
                f"{name}-server",
                [
                    sys.executable,
                    "-m",
                    "http.server",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--directory",
                    str(BROWSER_DIR),
                ],
                log_dir=tmp,
            )
            procs.append(server)
            blank = f"http://127.0.0.1:{port}/e2e/blank.html"
            server.start(ready=functools.partial(http_ok, blank), timeout=30)

        yield Stack(
            sink=sink,
            collector_browser_url=collector.browser_endpoint,
            page_origin=page_origin,
            other_origin=other_origin,
            backend_url=f"http://127.0.0.1:{backend_port}",
            logs=procs,
        )
    finally:
        for p in reversed(procs):
            p.stop()
        if collector is not None:
            collector.stop()
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------- driving
def _drive(stack: Stack) -> dict[str, Any]:
    node = _browser_build()
    query = urllib.parse.urlencode(
        {
            "collector": stack.collector_browser_url,
            "backend": stack.backend_url,
            "thread": THREAD_ID,
            "project": PROJECT_ID,
            "secret": SECRET,
            # Nothing listens here: a fetch to it fails at the network level (status 0).
            "dead": f"http://127.0.0.1:{free_port()}",
        }
    )
    cfg = {
        "executablePath": _chromium(),
        "pageUrl": f"{stack.page_origin}/e2e/page.html?{query}",
        "badPageUrl": f"{stack.other_origin}/e2e/blank.html",
        "collectorLogsUrl": f"{stack.collector_browser_url}/v1/logs",
    }
    out_dir = Path(tempfile.mkdtemp(prefix="apotel-drive-"))
    driver = ManagedProcess(
        "drive", [node, str(BROWSER_DIR / "e2e" / "drive.mjs"), json.dumps(cfg)], cwd=BROWSER_DIR, log_dir=out_dir
    )
    try:
        driver.start()
        wait_until(lambda: not driver.running, timeout=120, interval=0.2, what="chromium driver to finish")
        text = driver.log_path.read_text() if driver.log_path else ""
    finally:
        driver.stop()
        shutil.rmtree(out_dir, ignore_errors=True)
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    assert lines, f"driver printed no result:\n{text}"
    result: dict[str, Any] = json.loads(lines[-1])
    assert "error" not in result, f"driver failed: {result['error']}\nconsole: {result.get('console')}"
    return result


def _browser_spans(sink: OTLPSink) -> list[tuple[dict[str, Any], Any]]:
    out = []
    with sink.lock:
        reqs = list(sink.received.traces)
    for r in reqs:
        for rs in r.resource_spans:
            res = attrs_to_dict(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(({**res, "_scope": ss.scope.name}, s))
    return out


def _log_records(sink: OTLPSink) -> list[tuple[dict[str, Any], Any]]:
    out = []
    with sink.lock:
        reqs = list(sink.received.logs)
    for r in reqs:
        for rl in r.resource_logs:
            res = attrs_to_dict(rl.resource.attributes)
            for sl in rl.scope_logs:
                for rec in sl.log_records:
                    out.append((res, rec))
    return out


@pytest.fixture(scope="module")
def driven(stack: Stack) -> dict[str, Any]:
    return _drive(stack)


# --------------------------------------------------------------------------------------------- tests
def test_fetch_span_click_and_errors_reach_the_collector_on_one_trace(stack: Stack, driven: dict[str, Any]) -> None:
    """The browser fetch span and the backend server span share a trace; click and errors arrive as logs."""
    session_id = driven["sessionId"]
    assert session_id
    tp = driven["fetchResult"]["traceparent"]
    assert tp and tp.startswith("00-"), driven["fetchResult"]
    trace_id = tp.split("-")[1]

    def fetch_and_server() -> bool:
        spans = _browser_spans(stack.sink)
        kinds = {(res.get("service.name"), s.kind) for res, s in spans if s.trace_id.hex() == trace_id}
        return ("browser-e2e-frontend", 3) in kinds and ("browser-e2e-backend", 2) in kinds

    try:
        wait_until(
            fetch_and_server, timeout=45, interval=0.3, what="browser fetch span + backend server span in Tempo sink"
        )
    except TimeoutError as exc:
        seen = [(res.get("service.name"), s.kind, s.name, s.trace_id.hex()) for res, s in _browser_spans(stack.sink)]
        logs = {p.name: p.log_path.read_text()[-3000:] for p in stack.logs if p.log_path and p.log_path.exists()}
        raise AssertionError(f"{exc}; trace {trace_id}; spans seen: {seen}; driver: {driven}; logs: {logs}") from exc

    def wanted_logs() -> bool:
        names = [
            rec.event_name for res, rec in _log_records(stack.sink) if res.get("service.name") == "browser-e2e-frontend"
        ]
        return "browser.user_action.click" in names and names.count("exception") >= 2

    wait_until(wanted_logs, timeout=45, interval=0.3, what="click event and 2 exception logs in Loki sink")

    spans = [(res, s) for res, s in _browser_spans(stack.sink) if s.trace_id.hex() == trace_id]
    fetch = next(s for res, s in spans if res.get("service.name") == "browser-e2e-frontend" and s.kind == 3)
    server = next(s for res, s in spans if res.get("service.name") == "browser-e2e-backend" and s.kind == 2)
    # The server span is a child of the browser's fetch span (its traceparent carried the fetch span id).
    assert server.parent_span_id == fetch.span_id
    fa = attrs_to_dict(fetch.attributes)
    assert fa["session.id"] == session_id
    assert fa["agentpress.thread.id"] == THREAD_ID
    assert fa["agentpress.project.id"] == PROJECT_ID
    assert fa["url.full"].endswith("?token=REDACTED"), fa["url.full"]
    assert fa["http.response.status_code"] == 200
    assert attrs_to_dict(server.attributes).get("agentpress.thread.id") == THREAD_ID

    # The XMLHttpRequest call joins the backend the same way.
    xhr_tp = driven["xhrResult"]["traceparent"]
    assert xhr_tp and xhr_tp.startswith("00-"), driven["xhrResult"]
    xhr_trace = xhr_tp.split("-")[1]
    wait_until(
        lambda: {s.kind for _, s in _browser_spans(stack.sink) if s.trace_id.hex() == xhr_trace} >= {2, 3},
        timeout=45,
        interval=0.3,
        what="XHR span + backend server span",
    )
    xhr_spans = [(res, s) for res, s in _browser_spans(stack.sink) if s.trace_id.hex() == xhr_trace]
    xhr = next(s for res, s in xhr_spans if res["_scope"] == "@agentpress-otel/browser-xhr")
    xhr_server = next(s for res, s in xhr_spans if res.get("service.name") == "browser-e2e-backend" and s.kind == 2)
    assert xhr_server.parent_span_id == xhr.span_id
    xa = attrs_to_dict(xhr.attributes)
    assert "api_key=REDACTED" in xa["url.full"], xa["url.full"]
    assert xa["session.id"] == session_id
    assert xa["agentpress.thread.id"] == THREAD_ID

    logs = [(res, rec) for res, rec in _log_records(stack.sink) if res.get("service.name") == "browser-e2e-frontend"]
    res0 = logs[0][0]
    assert res0["agentpress.telemetry.source"] == "browser"  # stamped by the Collector's browser pipeline
    assert res0["deployment.environment.name"] == "test"

    click = next(attrs_to_dict(r.attributes) for _, r in logs if r.event_name == "browser.user_action.click")
    assert click["browser.user_action.target.name"] == "ask-agent"
    assert click["browser.user_action.name"] == "ask-agent"
    errors = [r for _, r in logs if r.event_name == "exception"]
    sources = {attrs_to_dict(r.attributes)["exception.source"] for r in errors}
    assert sources >= {"window.onerror", "unhandledrejection"}
    for rec in errors:
        a = attrs_to_dict(rec.attributes)
        assert a["exception.type"] in {"Error", "TypeError"}
        assert "REDACTED" in a["exception.message"], a["exception.message"]
        # Both are Error objects (the page rejects with a TypeError and throws an Error): each has its stack,
        # pointing into the page that raised it.
        assert "page.html" in a.get("exception.stacktrace", ""), (a["exception.source"], a)
        assert rec.severity_number == 17
    rejection = next(attrs_to_dict(r.attributes) for r in errors
                     if attrs_to_dict(r.attributes)["exception.source"] == "unhandledrejection")
    assert rejection["exception.type"] == "TypeError"
    assert rejection["exception.stacktrace"].startswith("TypeError: stream failed"), rejection
    # Every browser log record (page views, click, errors) carries the one session and the thread.
    for _, rec in logs:
        a = attrs_to_dict(rec.attributes)
        assert a["session.id"] == session_id, (rec.event_name, a)
        assert a["agentpress.thread.id"] == THREAD_ID, (rec.event_name, a)
    for res, s in _browser_spans(stack.sink):
        if res.get("service.name") == "browser-e2e-frontend":
            assert attrs_to_dict(s.attributes)["session.id"] == session_id

    views = [attrs_to_dict(r.attributes) for _, r in logs if r.event_name == "browser.page_view"]
    assert {v["browser.page_view.type"] for v in views} >= {"load", "route_change"}
    assert any("access_token=REDACTED" in v["url.full"] for v in views)


def test_failed_fetches_are_error_spans_at_the_collector(stack: Stack, driven: dict[str, Any]) -> None:
    """A fetch with no HTTP answer (status 0: refused connection, abort) ends as an ERROR span with error.type,
    which the Collector's tail-sampling errors policy keeps, and reaches the Collector's trace output."""
    assert driven["failedFetches"] == ["TypeError", "AbortError"], driven["failedFetches"]

    def failed() -> dict[str, Any]:
        out = {}
        for res, s in _browser_spans(stack.sink):
            url = attrs_to_dict(s.attributes).get("url.full", "")
            if res.get("service.name") == "browser-e2e-frontend" and s.kind == 3:
                if "/unreachable" in url:
                    out["refused"] = s
                elif "aborted=1" in url:
                    out["aborted"] = s
        return out

    wait_until(lambda: len(failed()) == 2, timeout=45, interval=0.3, what="the two failed fetch spans")
    for name, want in (("refused", "network_error"), ("aborted", "aborted")):
        span = failed()[name]
        attrs = attrs_to_dict(span.attributes)
        assert span.status.code == 2, (name, span.status)  # STATUS_CODE_ERROR: what tail sampling keeps
        assert attrs.get("error.type") == want, (name, attrs)
        assert SECRET not in attrs.get("url.full", "")


def test_no_secret_leaves_the_browser(stack: Stack, driven: dict[str, Any]) -> None:
    """The token in the page URL, the fetch URL and the error messages never reaches the Collector's outputs."""
    wait_until(lambda: len(_log_records(stack.sink)) > 0, timeout=45, interval=0.3, what="browser logs")
    browser_text = "".join(
        str(s) for res, s in _browser_spans(stack.sink) if res.get("service.name") == "browser-e2e-frontend"
    ) + "".join(str(r) for res, r in _log_records(stack.sink) if res.get("service.name") == "browser-e2e-frontend")
    assert browser_text
    assert SECRET not in browser_text
    assert "route-secret" not in browser_text


def _request(
    url: str, *, method: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers=headers, data=body)  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return int(resp.status), {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as exc:
        return int(exc.code), {k.lower(): v for k, v in exc.headers.items()}


def test_disallowed_origin_is_refused_by_cors(stack: Stack, driven: dict[str, Any]) -> None:
    """A page on an origin outside the allowlist can't post telemetry: the browser blocks it after the preflight."""
    assert driven["badOrigin"]["ok"] is False, driven["badOrigin"]
    assert "Failed to fetch" in driven["badOrigin"]["error"]

    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    _, allowed = _request(
        f"{stack.collector_browser_url}/v1/traces", method="OPTIONS", headers={"Origin": stack.page_origin, **preflight}
    )
    assert allowed.get("access-control-allow-origin") == stack.page_origin
    _, refused = _request(
        f"{stack.collector_browser_url}/v1/traces",
        method="OPTIONS",
        headers={"Origin": stack.other_origin, **preflight},
    )
    assert "access-control-allow-origin" not in refused


def _logs_payload(body_chars: int) -> bytes:
    """A valid OTLP/JSON logs request whose size is dominated by one log body."""
    record = {"timeUnixNano": "1", "severityNumber": 9, "body": {"stringValue": "x" * body_chars}}
    scope_logs = [{"scope": {"name": "e2e"}, "logRecords": [record]}]
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "oversize-e2e"}}]}
    return json.dumps({"resourceLogs": [{"resource": resource, "scopeLogs": scope_logs}]}).encode()


def test_oversized_body_is_refused(stack: Stack) -> None:
    """The browser receiver's body limit (256 KiB in the shipped config) refuses a 300 KiB request; 1 KiB passes."""
    headers = {"Origin": stack.page_origin, "Content-Type": "application/json"}
    url = f"{stack.collector_browser_url}/v1/logs"
    ok, _ = _request(url, method="POST", headers=headers, body=_logs_payload(1024))
    assert ok == 200
    status, _ = _request(url, method="POST", headers=headers, body=_logs_payload(300 * 1024))
    assert status in (400, 413), status


def test_backend_cors_accepts_propagation_headers(stack: Stack) -> None:
    """The backend's CORS preflight allows traceparent/tracestate/baggage from the page origin only."""
    pre = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "traceparent,tracestate,baggage",
    }
    status, h = _request(
        f"{stack.backend_url}/api/thread/x/ping", method="OPTIONS", headers={"Origin": stack.page_origin, **pre}
    )
    assert status == 200
    allowed = {x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",")}
    assert {"traceparent", "tracestate", "baggage"} <= allowed
    status, h = _request(
        f"{stack.backend_url}/api/thread/x/ping", method="OPTIONS", headers={"Origin": stack.other_origin, **pre}
    )
    assert status == 400 or "access-control-allow-origin" not in h
