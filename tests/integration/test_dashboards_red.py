"""The Service-health RED panels tell the truth in every step of docs/rollout.md.

For each documented step (1: metrics only; 2: traces at ``sample_ratio=0.1``; everything on) a real FastAPI app in
its own process, served by real uvicorn and instrumented by our library with that step's switches, answers a paced
stream of real HTTP requests with a known mix of successes, client errors (404) and server errors (500 from an
exception, 503 returned). Its telemetry goes through the Collector built from our manifest running the shipped config
into Debian's Prometheus. Every Prometheus query of the dashboard's "Inbound requests" row is then run with the
Grafana variables set to this environment and service (not "All"), at several times inside the steady part of the
run, and must match what the client counted: request rate, server-error rate and error ratio within 5 % (rates may
also be off by one request per window), per route where the panel is per route. The ``$service``, ``$env`` and
``$route`` variables must list the service, its environment and its routes.

Before the fix the panels read ``traces_span_metrics_*``: empty in step 1 (no spans) and about a tenth of the truth in
step 2 (the app's head sampling drops spans before the Collector's span_metrics connector counts them).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentpress_otel._harness._proc import find_binary, free_port, wait_until
from conftest import need

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "unit"))
from test_dashboards_structure import load_dashboards  # noqa: E402

ENV = f"rollout-{uuid.uuid4().hex[:6]}"
# docs/rollout.md "A suggested order": the instrument() switches of each step we promise RED panels for.
STEPS: dict[str, dict[str, Any]] = {
    "1-metrics-only": {"traces": False, "logs": False},
    "2-traces-sampled-0.1": {"traces": True, "sample_ratio": 0.1, "logs": False},
    "everything-on": {"traces": True, "logs": True},
}
RATE = 10.0  # requests per second per step, paced on an absolute schedule
DURATION = 34.0  # seconds of traffic per step
WINDOW = 20  # seconds: what $__rate_interval becomes here
CHECK_AT = (24.0, 29.0, 34.0)  # seconds after the first request: windows well inside the steady part

APP = textwrap.dedent('''
    import asyncio, json, os
    import uvicorn
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import JSONResponse
    import agentpress_otel

    app = FastAPI()
    agentpress_otel.instrument(app, service_name=os.environ["SVC"], environment=os.environ["ENV"],
                               endpoint=os.environ["EP"], metric_interval_s=1.0, integrations=["fastapi"],
                               **json.loads(os.environ["STEP"]))

    @app.get("/api/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        await asyncio.sleep(0.01)
        if item_id == "missing":
            raise HTTPException(status_code=404)  # the client's fault: not a server error
        return {"id": item_id}

    @app.get("/api/broken")
    async def broken() -> None:
        raise RuntimeError("broken endpoint")  # unhandled: 500

    @app.get("/api/unavailable")
    async def unavailable() -> JSONResponse:
        return JSONResponse({"error": "down"}, status_code=503)

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="critical")
''')

# One cycle of 10 requests: 6 ok + 1 404 on the items route, 2 x 500, 1 x 503.
CYCLE = ["/api/items/a1", "/api/items/b2", "/api/items/c3", "/api/items/d4", "/api/items/e5", "/api/items/f6",
         "/api/items/missing", "/api/broken", "/api/broken", "/api/unavailable"]
ROUTE_OF = {"/api/broken": "/api/broken", "/api/unavailable": "/api/unavailable"}


@dataclass
class Run:
    step: str
    service: str
    start: float = 0.0
    sent: list[tuple[float, str, int]] = field(default_factory=list)  # (time answered, route, status)
    error: str = ""

    def truth(self, t: float) -> dict[str, Any]:
        """What the client saw in the window (t - WINDOW, t]: rates per second, overall and per route."""
        rows = [(route, status) for when, route, status in self.sent if t - WINDOW < when <= t]
        routes = {r for r, _ in rows}
        req = {r: sum(1 for x, _ in rows if x == r) / WINDOW for r in routes}
        err = {r: sum(1 for x, s in rows if x == r and s >= 500) / WINDOW for r in routes}
        return {"req": sum(req.values()), "err": sum(err.values()), "req_by_route": req, "err_by_route": err}


def _drive(run: Run, url: str) -> None:
    import httpx

    try:
        # A new connection per request: uvicorn may close a keep-alive connection after a handler raised, and a
        # request already sent on it then fails with a reset (seen under load) although the server never saw it.
        with httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            run.start = time.time()
            n = int(RATE * DURATION)
            for i in range(n):
                due = run.start + i / RATE
                if (delay := due - time.time()) > 0:
                    time.sleep(delay)
                path = CYCLE[i % len(CYCLE)]
                status = client.get(path).status_code
                run.sent.append((time.time(), ROUTE_OF.get(path, "/api/items/{item_id}"), status))
    except Exception as exc:  # reported by the test, not lost in a thread
        run.error = repr(exc)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, Run]]]:
    from agentpress_otel._harness.collector import ensure_collector_binary
    from harness.pipeline import local_pipeline

    need(lambda: ensure_collector_binary(build=False))
    need(lambda: find_binary("prometheus"))
    env = {"OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s", "OTELCOL_SERVICEGRAPH_FLUSH_INTERVAL": "1s",
           "OTELCOL_TAIL_DECISION_WAIT": "1s", "OTELCOL_BATCH_FLUSH_TIMEOUT": "200ms"}
    with local_pipeline(env=env, workdir=tmp_path_factory.mktemp("red")) as p:
        procs: list[subprocess.Popen[str]] = []
        result: dict[str, Run] = {}
        threads = []
        try:
            # The three steps run side by side (one service each): same pipeline, a third of the wall time.
            for step, kw in STEPS.items():
                port = free_port()
                svc = f"red-{step.split('-')[0]}-{uuid.uuid4().hex[:6]}"
                penv = {**os.environ, "SVC": svc, "ENV": ENV, "EP": p.collector.otlp_grpc_endpoint,
                        "STEP": json.dumps(kw), "PORT": str(port)}
                penv.pop("OTEL_SDK_DISABLED", None)
                procs.append(subprocess.Popen([sys.executable, "-c", APP], env=penv, text=True,
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
                url = f"http://127.0.0.1:{port}"
                wait_until(lambda u=url: _answers(u), timeout=60, interval=0.25, what=f"app of step {step}")
                result[step] = Run(step, svc)
                threads.append(threading.Thread(target=_drive, args=(result[step], url), daemon=True))
            for t in threads:
                t.start()
            for t in threads:
                t.join(DURATION + 60)
            # The last export after the traffic (every 1 s) must be in Prometheus before the last window is judged.
            for run in result.values():
                assert not run.error, f"{run.step}: {run.error}"
                end = run.start + max(CHECK_AT) + 1.5
                q = f'max(timestamp(http_server_request_duration_seconds_count{{service_name="{run.service}"}}))'
                wait_until(lambda q=q, end=end: (p.prometheus.query_value(q) or 0) >= end, timeout=60, interval=0.5,
                           what=f"{run.step}: metrics after the traffic")
            yield p, result
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url + "/api/items/warmup", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _service_health() -> dict[str, Any]:
    return next(d for path, d in load_dashboards() if path.name == "service-health.json")


def _red_targets() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) of every panel in the "Inbound requests" row."""
    out, in_row = [], False
    for p in _service_health()["panels"]:
        if p["type"] == "row":
            in_row = p["title"].startswith("Inbound requests")
            continue
        if in_row:
            out += [(p["title"], t) for t in p["targets"]]
    return out


def _fill(expr: str, service: str) -> str:
    return (expr.replace("$__rate_interval", f"{WINDOW}s").replace("$env", ENV).replace("$service", service)
            .replace("$route", ".*"))


def _close(got: float, want: float, what: str, *, ratio: bool = False) -> None:
    # 5 % plus one request per window: the client stamps a request when it is answered, the app's counter is sampled
    # at its 1 s export, so one request at either edge of the window can fall on the other side (seen on the 1 req/s
    # route: 21 counted against the client's 20). The sampling bug this guards against is off by 90 %.
    assert math.isfinite(got), what
    slack = 0.0 if ratio else 1.0 / WINDOW
    assert abs(got - want) <= 0.05 * abs(want) + slack + 1e-9, (
        f"{what}: panel says {got:.4f}, the client saw {want:.4f}")


def _by_route(rows: list[dict[str, Any]]) -> dict[str, float]:
    return {r["metric"].get("http_route", ""): float(r["value"][1]) for r in rows}


# The truth each panel of the row must show; a new panel in the row fails until it is listed here.
def _check_panel(title: str, rows: list[dict[str, Any]], truth: dict[str, Any], what: str) -> None:
    req, err = truth["req"], truth["err"]
    if title == "Requests / s":
        _close(float(rows[0]["value"][1]), req, what)
    elif title == "Server errors / s (5xx)":
        _close(float(rows[0]["value"][1]), err, what)
    elif title == "Error rate":
        _close(float(rows[0]["value"][1]), err / req, what, ratio=True)
    elif title == "Request rate by route":
        got = _by_route(rows)
        assert set(got) == set(truth["req_by_route"]), (what, got)
        for route, want in truth["req_by_route"].items():
            _close(got[route], want, f"{what} [{route}]")
    elif title == "Server errors by route and status":
        got: dict[str, float] = {}
        for r in rows:
            route = r["metric"].get("http_route", "")
            got[route] = got.get(route, 0.0) + float(r["value"][1])
        for route, want in truth["err_by_route"].items():
            _close(got.get(route, 0.0), want, f"{what} [{route}]")
        statuses = {r["metric"].get("http_response_status_code") for r in rows if float(r["value"][1]) > 0}
        assert statuses == {"500", "503"}, (what, statuses)
    elif title == "Error rate by route":
        got = _by_route(rows)
        for route, want in truth["err_by_route"].items():
            _close(got[route], want / truth["req_by_route"][route], f"{what} [{route}]", ratio=True)
    elif title.startswith("Duration"):
        # Latency from the same histogram: every quantile is there, finite, and in the range the handlers sleep
        # (10 ms on the items route, ~0 elsewhere; histogram buckets interpolate).
        values = [float(r["value"][1]) for r in rows]
        assert values and all(math.isfinite(v) and 0 < v < 1.0 for v in values), (what, rows)
    else:
        raise AssertionError(f"{what}: no expected value for this RED panel; add it to _check_panel")


@pytest.mark.parametrize("step", list(STEPS))
def test_red_panels_show_the_true_rates(runs: tuple[Any, dict[str, Run]], step: str) -> None:
    """The RED panels show the true request and error rates of a paced workload."""
    pipeline, result = runs
    run = result[step]
    prom = pipeline.prometheus
    targets = _red_targets()
    assert len(targets) >= 8, targets
    for at in CHECK_AT:
        t = run.start + at
        truth = run.truth(t)
        # 10 req/s with 3 server errors in every 10: the pacing held (otherwise the check below proves little).
        assert truth["req"] == pytest.approx(RATE, rel=0.1), truth
        for title, target in targets:
            expr = _fill(target["expr"], run.service)
            rows = prom.query(expr, at=t)
            what = f"step {step}, t+{at:g}s, {title!r}: {expr}"
            assert rows, f"{what}: no data"
            _check_panel(title, rows, truth, what)


@pytest.mark.parametrize("step", list(STEPS))
def test_variables_list_the_service(runs: tuple[Any, dict[str, Run]], step: str) -> None:
    """The RED dashboard's variables list the workload's service."""
    pipeline, result = runs
    run = result[step]
    prom = pipeline.prometheus
    variables = {v["name"]: v for v in _service_health()["templating"]["list"] if v["type"] == "query"}
    want = {"env": ("deployment_environment_name", {ENV}), "service": ("service_name", {run.service}),
            "route": ("http_route", {"/api/items/{item_id}", "/api/broken", "/api/unavailable"})}
    assert set(variables) == set(want)
    for name, (label, values) in want.items():
        # label_values(selector, label): the values of `label` on the series the selector matches.
        sel = variables[name]["definition"].removeprefix("label_values(").rsplit(",", 1)[0]
        sel = _fill(sel, run.service) if name == "route" else sel.replace("$env", ENV)
        found = {r["metric"].get(label) for r in prom.query(sel)}
        assert values <= found, f"${name} ({sel}) lists {sorted(map(str, found))[:20]}, not {values}"
