"""A sick Collector must not hurt the app: latency, event loop, memory, drop counting, shutdown deadline.

Two real uvicorn apps run side by side (tests/integration/_failure_app.py): a *baseline* exporting to a
healthy OTLP receiver, and the *app under test* exporting to a Collector that is refused (nothing
listens), black-holed (accepts TCP, never answers), failing (HTTP 503 + ``Retry-After``) or slow. Requests
alternate between the two so machine noise hits both alike, then we compare.

Latency criterion: p99 under failure <= 1.10 x baseline p99 + slack, slack = ``SLACK_MS`` + 2 x the
baseline's own p99 spread in this run (|p99 of its even requests - p99 of its odd requests|). Why: on a
shared 2-core CI box the p99 of a ~2 ms loopback request moves by several milliseconds between two
identical servers (scheduler noise from other processes, GC), and a fixed slack is either flaky on a
busy box or loose on a quiet one. What these tests guard against is an export reaching the request
path, which adds the export timeout (2 s), the slow Collector's delay (1 s) or a retry backoff
(>= 0.8 s): hundreds of times the slack.

Event-loop criterion: the worst stall seen by a 5 ms probe task <= 50 ms, where a stall excludes the
time Linux kept the loop thread waiting for a CPU (``/proc/thread-self/schedstat`` run delay): on a busy
shared box whole processes are descheduled for 50-300 ms, which is not the app's doing. Blocking code
and GIL waits (an exporter thread hogging the interpreter) are still counted. If even the healthy
baseline app stalled beyond 50 ms in the same window (page faults, memory pressure from other tenants),
the bound is the baseline's worst stall + 25 ms: a failure-induced stall must show up as a *difference*
between two apps that share everything but the Collector's health, and a blocking export would add
>= 1 s.
"""

from __future__ import annotations

import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentpress_otel._harness._proc import ManagedProcess, free_port, http_ok
from harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration

APP = Path(__file__).resolve().parent / "_failure_app.py"
N_REQ, WARMUP = 600, 100
SLACK_MS = 5.0
MAX_STALL_MS = 50.0
RSS_GROWTH_MAX_KB = 40 * 1024
BASELINE_QUEUE = 1024  # batch size is min(512, queue): leave room so a healthy exporter never drops
SHUTDOWN_S = 1.0


class BlackHole:
    """Accepts TCP connections and never reads or answers (a hung Collector / dropped packets)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.conns: list[socket.socket] = []
        self._stop = False
        self.thread = threading.Thread(target=self._accept, daemon=True, name="blackhole")
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
            except OSError:
                continue

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


def _start_app(
    endpoint: str, name: str, export_timeout_s: float = 2.0, queue: int = 256
) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "AGENTPRESS_OTEL_EXPORT_TIMEOUT_S": str(export_timeout_s),
        "AGENTPRESS_OTEL_MAX_QUEUE_SIZE": str(queue),
        "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "1",
        "AGENTPRESS_OTEL_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_S),
        "OTEL_SDK_DISABLED": "false",
    }
    proc = ManagedProcess(name, [sys.executable, str(APP), str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    proc.start(ready=lambda: http_ok(url + "/_probe"), timeout=60)
    return proc, url


@pytest.fixture(scope="module")
def baseline() -> Iterator[tuple[OTLPSink, str]]:
    with OTLPSink() as sink:
        # Default export timeout: a healthy but busy receiver must not be counted as a failure.
        proc, url = _start_app(sink.http_endpoint, "failure-baseline", export_timeout_s=10.0, queue=BASELINE_QUEUE)
        try:
            yield sink, url
        finally:
            proc.stop()


@pytest.fixture
def sick_collector(request: pytest.FixtureRequest) -> Iterator[str]:
    mode = request.param
    if mode == "refused":
        yield f"http://127.0.0.1:{free_port()}"  # nothing listens there
    elif mode == "blackhole":
        bh = BlackHole()
        try:
            yield f"http://127.0.0.1:{bh.port}"
        finally:
            bh.close()
    else:
        with OTLPSink() as sink:
            sink.mode = "fail" if mode == "503" else "slow"
            sink.delay_s = 1.0
            yield sink.http_endpoint


def _p99(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[int(len(xs) * 0.99)]


def _get(c: httpx.Client, url: str) -> float:
    t0 = time.perf_counter()
    r = c.get(url)
    dt = (time.perf_counter() - t0) * 1000
    assert r.status_code == 200
    return dt


@pytest.mark.parametrize("sick_collector", ["refused", "blackhole", "503", "slow"], indirect=True)
def test_sick_collector_does_not_hurt_the_app(baseline: tuple[OTLPSink, str], sick_collector: str) -> None:
    """A sick Collector does not raise the app's latency, loop lag, memory or shutdown time; losses are counted."""
    _, base_url = baseline
    proc, url = _start_app(sick_collector, "failure-app")
    try:
        with httpx.Client(timeout=10) as cb, httpx.Client(timeout=10) as cf:
            for i in range(WARMUP):
                _get(cb, f"{base_url}/api/thread/t-{i}/work")
                _get(cf, f"{url}/api/thread/t-{i}/work")
            rss0 = cf.get(f"{url}/_probe", params={"reset": 1}).json()["rss_kb"]
            cb.get(f"{base_url}/_probe", params={"reset": 1})
            base: list[float] = []
            sick: list[float] = []
            for i in range(N_REQ):  # alternate: the same noise hits both servers
                base.append(_get(cb, f"{base_url}/api/thread/t-{i}/work"))
                sick.append(_get(cf, f"{url}/api/thread/t-{i}/work"))
            pb = cb.get(f"{base_url}/_probe").json()
            pf = cf.get(f"{url}/_probe").json()
            shut = cf.post(f"{url}/_shutdown", params={"timeout": SHUTDOWN_S}).json()

        b99, s99 = _p99(base), _p99(sick)
        noise = abs(_p99(base[0::2]) - _p99(base[1::2]))
        slack = SLACK_MS + 2 * noise
        stall_bound = max(MAX_STALL_MS, pb["max_lag_ms"] + MAX_STALL_MS / 2)
        info = (f"p50 {statistics.median(base):.2f}/{statistics.median(sick):.2f} ms, p99 {b99:.2f}/{s99:.2f} ms "
                f"(baseline/sick); stall {pb['max_lag_ms']:.1f}/{pf['max_lag_ms']:.1f} ms; sick probe {pf}; "
                f"shutdown {shut}; slack {slack:.1f} ms, stall bound {stall_bound:.0f} ms")
        print(info)
        assert s99 <= b99 * 1.10 + slack, info
        assert pf["max_lag_ms"] <= stall_bound, info
        assert pf["rss_kb"] - rss0 <= RSS_GROWTH_MAX_KB, info
        # 700 requests x 5 spans (+ 700 logs) that cannot be delivered: the losses must be counted.
        assert pf["dropped_spans"] > 0, info
        assert shut["elapsed_s"] <= SHUTDOWN_S + 0.3, info
        assert shut["max_lag_ms"] <= stall_bound, info
    finally:
        proc.stop()


def test_baseline_loses_nothing(baseline: tuple[OTLPSink, str]) -> None:
    """The same load against a healthy receiver drops nothing (so the drops above come from the failure)."""
    sink, url = baseline
    with httpx.Client(timeout=10) as c:
        for i in range(200):
            _get(c, f"{url}/api/thread/t-{i}/work")
        before = len(sink.spans())
        probe: dict[str, Any] = c.get(f"{url}/_probe").json()
    assert probe["dropped"] == 0, probe
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(sink.spans()) <= before:
        time.sleep(0.1)
    assert len(sink.spans()) > before
