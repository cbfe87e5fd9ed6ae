"""Runtime integration: process metrics, event-loop lag probe, undo, fork safety (in-memory reader)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentpress_otel._config import load_config
from agentpress_otel.integrations import Skip, runtime
from agentpress_otel.testing import metric_points

INTERVAL = 0.02  # probe period used by these tests (the default is 0.25 s)


class Rig:
    def __init__(self, **cfg: Any) -> None:
        self.reader = InMemoryMetricReader()
        self.mp = MeterProvider(metric_readers=[self.reader])
        self.tel = SimpleNamespace(config=load_config(cfg, env={}), meter_provider=self.mp)

    def points(self) -> dict[str, list[Any]]:
        return metric_points(self.reader)


@pytest.fixture
def rig() -> Iterator[Rig]:
    r = Rig(runtime_interval_s=5.0)
    try:
        yield r
    finally:
        runtime.uninstrument()
        r.mp.shutdown()


class LoopThread:
    """A real asyncio loop running forever on a background thread (like Dramatiq's AsyncIO middleware)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="bg-loop", daemon=True)

    def __enter__(self) -> LoopThread:
        self.thread.start()
        while not self.loop.is_running():
            time.sleep(0.005)
        return self

    def block(self, seconds: float) -> None:
        self.loop.call_soon_threadsafe(time.sleep, seconds)

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


#: What the registry (semantic-conventions v1.44.0 process and cpython metrics) names each measurement,
#: with the attribute keys it defines for it; units come from the published package (semconv_rules.METRICS).
REGISTRY_PROCESS = {
    "process.cpu.time": {"cpu.mode"},
    "process.cpu.utilization": {"cpu.mode"},
    "process.memory.usage": set(),
    "process.memory.virtual": set(),
    "process.unix.file_descriptor.count": set(),
    "process.thread.count": set(),
    "process.context_switches": {"process.context_switch.type"},
    "process.disk.io": {"disk.io.direction"},
    "cpython.gc.collections": {"cpython.gc.generation"},
    "cpython.gc.collected_objects": {"cpython.gc.generation"},
    "cpython.gc.uncollectable_objects": {"cpython.gc.generation"},
}


def test_process_metrics_are_per_process_with_registry_names_units_and_attributes(rig: Rig) -> None:
    """Process metrics use the registry's names, units and attributes, without host-wide or deprecated ones."""
    from semconv_rules import METRIC_DEPRECATED, METRICS

    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    data = rig.reader.get_metrics_data()
    assert data is not None
    got = {m.name: m for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}
    assert set(REGISTRY_PROCESS) <= set(got), set(REGISTRY_PROCESS) - set(got)
    # Host-wide and deprecated duplicates are left to the Collector / not emitted at all.
    assert not [n for n in got if n.startswith(("system.", "process.runtime.")) or n in METRIC_DEPRECATED]
    for name, keys in REGISTRY_PROCESS.items():
        m = got[name]
        assert m.unit == METRICS[name][1], (name, m.unit)
        for p in m.data.data_points:
            assert set(p.attributes or {}) <= keys, (name, dict(p.attributes or {}))
    pts = rig.points()
    assert pts["process.memory.usage"][0].value > 10 * 1024 * 1024  # RSS of a Python process
    assert pts["process.unix.file_descriptor.count"][0].value > 0
    assert pts["process.thread.count"][0].value >= 1
    assert {p.attributes["cpython.gc.generation"] for p in pts["cpython.gc.collections"]} == {0, 1, 2}
    assert {p.attributes["cpu.mode"] for p in pts["process.cpu.time"]} == {"user", "system"}


def test_blocked_loop_shows_in_lag_histogram_within_error(rig: Rig) -> None:
    """A blocked event loop shows in the lag histogram as one sample of about the block's length."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    blocked: list[float] = []

    async def main() -> None:
        await asyncio.sleep(0.15)  # probes run on time first
        t0 = time.perf_counter()
        time.sleep(0.3)  # noqa: ASYNC251 - a synchronous call on the loop: the classic "agent is stuck"
        blocked.append(time.perf_counter() - t0)
        await asyncio.sleep(0.15)

    asyncio.run(main())
    (pt,) = rig.points()[runtime.LOOP_LAG]
    assert pt.attributes == {"loop": "main"}
    # The probe due soonest after the block started ran right after it ended: lag is the block
    # length minus at most one probe period (plus scheduling slack on a busy machine).
    assert blocked[0] - INTERVAL - 0.005 <= pt.max <= blocked[0] + 0.05, (pt.max, blocked)
    # Exactly one sample saw the stall; the others were near zero.
    big = sum(c for c, bound in zip(pt.bucket_counts, (*pt.explicit_bounds, float("inf")), strict=True) if bound > 0.1)
    assert big == 1
    assert pt.count >= 10
    assert pt.sum - pt.max < 0.05 * pt.count  # normal probes are ~1 ms late at most


def test_stall_in_progress_is_visible_before_the_loop_recovers(rig: Rig) -> None:
    """A stall in progress is visible in the max-lag gauge before the loop recovers."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    with LoopThread() as lt:
        assert runtime.watch_loop(lt.loop) is True  # idempotent with the run_forever patch
        time.sleep(0.1)
        lt.block(0.8)
        time.sleep(0.5)
        # The loop is still blocked: the reader thread computes how overdue the pending probe is.
        during = runtime.max_loop_lag()
        gauge = {p.attributes["loop"]: p.value for p in rig.points()[runtime.LOOP_LAG_MAX]}
        assert 0.3 <= during <= 0.8, during
        assert 0.3 <= gauge["background"] <= 0.8, gauge
        time.sleep(0.6)
        after = runtime.max_loop_lag()  # recovered: the window keeps the peak
        assert 0.8 - INTERVAL - 0.005 <= after <= 1.0, after
    hist = rig.points()[runtime.LOOP_LAG]
    assert {p.attributes["loop"] for p in hist} == {"background"}


def test_window_forgets_old_peaks() -> None:
    """The max-lag window forgets a peak once it is older than the window."""
    r = Rig(runtime_interval_s=0.3)
    try:
        runtime.instrument(r.tel, probe_interval_s=INTERVAL)
        with LoopThread() as lt:
            time.sleep(0.05)
            lt.block(0.2)
            time.sleep(0.3)
            assert runtime.max_loop_lag() >= 0.15
            time.sleep(0.8)  # two windows later only normal lag is left
            assert runtime.max_loop_lag() < 0.05
    finally:
        runtime.uninstrument()
        r.mp.shutdown()


def test_stopped_loop_is_not_reported_as_stalled(rig: Rig) -> None:
    """A stopped loop is not reported as stalled, and when restarted its pause is not lag."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(asyncio.sleep(0.05))
        assert runtime._watched_loops() == []  # dropped when run_forever returned
        time.sleep(0.2)
        assert runtime.max_loop_lag() == 0.0
        # Restarted later: watched again, and the pause does not count as lag.
        loop.run_until_complete(asyncio.sleep(0.1))
    finally:
        loop.close()
    (pt,) = rig.points()[runtime.LOOP_LAG]
    assert pt.max < 0.1


def test_watch_loop_without_patch_and_from_another_thread(rig: Rig) -> None:
    """Without the asyncio patch, watch_loop() from another thread starts probing that loop."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL, patch_asyncio=False)
    assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
    with LoopThread() as lt:
        assert runtime._watched_loops() == []
        assert runtime.watch_loop(lt.loop) is True
        time.sleep(0.2)
        assert runtime._watched_loops() == [lt.loop]
    assert rig.points()[runtime.LOOP_LAG][0].count >= 3


def test_instrument_inside_running_loop_watches_it(rig: Rig) -> None:
    """instrument() called inside a running loop watches that loop."""
    async def main() -> list[asyncio.AbstractEventLoop]:
        runtime.instrument(rig.tel, probe_interval_s=INTERVAL, patch_asyncio=False)
        await asyncio.sleep(0.1)
        return runtime._watched_loops()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == [loop]
    finally:
        loop.close()


def test_uninstrument_stops_probes_metrics_and_patch(rig: Rig) -> None:
    """uninstrument() stops the probes, the metrics and the asyncio patch."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    assert hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
    asyncio.run(asyncio.sleep(0.1))
    before = rig.points()[runtime.LOOP_LAG][0].count
    runtime.uninstrument()
    runtime.uninstrument()  # idempotent
    assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
    assert runtime.watch_loop(asyncio.new_event_loop()) is False
    asyncio.run(asyncio.sleep(0.1))
    pts = rig.points()
    assert pts.get(runtime.LOOP_LAG, [SimpleNamespace(count=before)])[0].count == before
    assert runtime.LOOP_LAG_MAX not in pts
    assert not [n for n in pts if n.startswith(("process.", "cpython."))]


def test_metrics_off_means_nothing_started() -> None:
    """With metrics off, runtime instrumentation starts nothing."""
    r = Rig(metrics=False)
    try:
        with pytest.raises(Skip, match="metrics are off"):
            runtime.instrument(r.tel)
        assert not hasattr(asyncio.base_events.BaseEventLoop.run_forever, "__wrapped__")
        assert r.points() == {}
    finally:
        runtime.uninstrument()
        r.mp.shutdown()


def test_reinstrument_rebinds_to_new_provider(rig: Rig) -> None:
    """Instrumenting again rebinds to the new meter provider without duplicate callbacks."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    other = Rig()
    try:
        runtime.instrument(other.tel, probe_interval_s=INTERVAL)
        asyncio.run(asyncio.sleep(0.1))
        assert runtime.LOOP_LAG in other.points()
        assert "process.memory.usage" in other.points()
        # The first provider's callbacks are gated off, not duplicated.
        assert "process.memory.usage" not in rig.points()
    finally:
        runtime.uninstrument()
        other.mp.shutdown()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_rebinds_and_forgets_dead_loops(rig: Rig) -> None:
    """A forked child forgets loops whose threads died and does not report them as stalled."""
    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    with LoopThread():
        time.sleep(0.1)
        assert len(runtime._watched_loops()) == 1
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: the loop thread does not exist here
            code = 1
            try:
                time.sleep(0.3)
                sysm = runtime._sysm
                # A loop whose thread died must not look like a 0.3 s (and growing) stall.
                res = {
                    "watched": len(runtime._watched_loops()),
                    "max": runtime.max_loop_lag(),
                    "proc_pid": sysm._proc.pid,
                    "pid": os.getpid(),
                }
                # The child's own loops are still probed.
                asyncio.run(asyncio.sleep(0.1))
                pts = rig.points()
                res["child_lag_points"] = [dict(p.attributes) for p in pts.get(runtime.LOOP_LAG, [])]
                os.write(wfd, json.dumps(res).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(wfd)
        raw = b""
        while chunk := os.read(rfd, 65536):
            raw += chunk
        os.close(rfd)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    res = json.loads(raw)
    assert res["watched"] == 0
    assert res["max"] == 0.0
    assert res["proc_pid"] == res["pid"] != os.getpid()
    assert {"loop": "main"} in res["child_lag_points"]
    # The parent still reports its own process.
    assert runtime._sysm._proc.pid == os.getpid()


def test_callback_errors_are_counted_not_raised(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors in metric callbacks are counted, not raised."""
    from agentpress_otel import _selftel

    runtime.instrument(rig.tel, probe_interval_s=INTERVAL)
    sysm = runtime._sysm

    class Broken:
        pid = os.getpid()

        def __getattr__(self, name: str) -> Any:
            raise OSError("psutil exploded")

    monkeypatch.setattr(sysm, "_proc", Broken())
    before = _selftel.errors("runtime.system_metrics")
    pts = rig.points()  # must not raise
    assert "process.memory.usage" not in pts
    assert _selftel.errors("runtime.system_metrics") > before



@pytest.mark.parametrize(("value", "want"), [(None, 0.25), ("2.5", 2.5)])
def test_loop_probe_interval_comes_from_the_options_table(value: str | None, want: float) -> None:
    """AGENTPRESS_OTEL_LOOP_PROBE_INTERVAL_S sets the probe period of a real instrument() in an app process
    (0.25 s by default)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    if value is not None:
        env["AGENTPRESS_OTEL_LOOP_PROBE_INTERVAL_S"] = value
    code = ("import agentpress_otel\n"
            "from agentpress_otel.integrations import runtime\n"
            "tel = agentpress_otel.instrument(service_name='probe', integrations=['runtime'], protocol='http/protobuf',"
            " endpoint='http://127.0.0.1:9', shutdown_timeout_s=1)\n"
            "print(runtime._monitor.interval)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(proc.stdout.split()[-1]) == want
