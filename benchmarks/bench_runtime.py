"""Cost of the runtime integration (process metrics + event-loop lag probe).

Measures, against a same-run baseline (the same idle asyncio loop without the integration):

* per-probe CPU cost (many probes at a 1 ms period, CPU time / probe count);
* per-collection CPU cost of the process metrics (psutil reads + GC stats + our gauge);
* the CPU share at the defaults: probe every 0.25 s, metrics collected every
  ``Config.metric_interval_s`` (30 s), computed from the two numbers above;
* a direct check: an idle loop for a few seconds with probes at 0.25 s and a periodic reader at
  1 s (30x the default collection rate), CPU time with minus without, as a share of wall time.

Prints a table and writes benchmarks/results/runtime.json. Runs in < 60 s.
Run: ``.venv/bin/python benchmarks/bench_runtime.py``
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

from _common import report
from agentpress_otel._config import load_config
from agentpress_otel.integrations import runtime

REPEATS = 5
IDLE_S = 2.0
DEFAULT_PROBE_S = load_config({}, env={}).loop_probe_interval_s
DEFAULT_EXPORT_S = load_config({}, env={}).metric_interval_s


class NullExporter(MetricExporter):
    def __init__(self) -> None:
        super().__init__()

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **_: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **_: Any) -> None:
        return None


def _tel(mp: MeterProvider) -> Any:
    return SimpleNamespace(config=load_config({}, env={}), meter_provider=mp)


def _idle_loop_cpu(seconds: float) -> float:
    t0 = time.process_time()
    asyncio.run(asyncio.sleep(seconds))
    return time.process_time() - t0


def _bare_timer_chain_us(period: float, seconds: float) -> float:
    """Baseline: CPU µs per wakeup of a do-nothing timer chain at the same period (asyncio's own cost)."""
    count = 0

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            nonlocal count
            count += 1
            loop.call_at(loop.time() + period, tick)

        loop.call_at(loop.time() + period, tick)
        await asyncio.sleep(seconds)

    t0 = time.process_time()
    asyncio.run(main())
    return (time.process_time() - t0) / max(count, 1) * 1e6


def per_probe_cost_us() -> tuple[float, float]:
    """(CPU µs per probe including the loop wakeup, CPU µs per bare timer wakeup) at a 1 ms period."""
    period, seconds = 0.001, 1.0
    reader = InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[reader])
    try:
        bare = statistics.median(_bare_timer_chain_us(period, seconds) for _ in range(3))
        runtime.instrument(_tel(mp), probe_interval_s=period, system_metrics=False)
        costs = []
        last = 0
        for _ in range(3):
            t0 = time.process_time()
            asyncio.run(asyncio.sleep(seconds))
            cpu = time.process_time() - t0
            data = reader.get_metrics_data()
            pts: list[Any] = (
                []
                if data is None
                else [
                    p
                    for rm in data.resource_metrics
                    for sm in rm.scope_metrics
                    for m in sm.metrics
                    if m.name == runtime.LOOP_LAG
                    for p in m.data.data_points
                ]
            )
            total = int(sum(p.count for p in pts))
            costs.append(cpu / max(total - last, 1) * 1e6)
            last = total
        return statistics.median(costs), bare
    finally:
        runtime.uninstrument()
        mp.shutdown()


def per_collect_cost_ms() -> tuple[float, float]:
    """(ms per collection with the runtime metrics, ms per collection of an empty provider)."""

    def measure(with_runtime: bool) -> float:
        reader = InMemoryMetricReader()
        mp = MeterProvider(metric_readers=[reader])
        try:
            if with_runtime:
                runtime.instrument(_tel(mp), patch_asyncio=False)
            reader.get_metrics_data()  # warm-up (first cpu_percent call, instrument creation)
            samples = []
            for _ in range(40):
                t0 = time.process_time()
                reader.get_metrics_data()
                samples.append(time.process_time() - t0)
            return statistics.median(samples) * 1e3
        finally:
            runtime.uninstrument()
            mp.shutdown()

    return measure(True), measure(False)


def watch_loop_fast_path() -> tuple[float, float]:
    """(µs per ``watch_loop()`` on an already-watched loop, µs per plain function call baseline)."""
    mp = MeterProvider(metric_readers=[InMemoryMetricReader()])
    n = 50_000

    def noop() -> bool:
        return True

    async def main() -> tuple[float, float]:
        runtime.watch_loop()
        t0 = time.perf_counter()
        for _ in range(n):
            runtime.watch_loop()
        t1 = time.perf_counter()
        for _ in range(n):
            noop()
        t2 = time.perf_counter()
        return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6

    try:
        runtime.instrument(_tel(mp), patch_asyncio=False, system_metrics=False)
        runs = [asyncio.run(main()) for _ in range(REPEATS)]
        return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    finally:
        runtime.uninstrument()
        mp.shutdown()


def direct_share(export_s: float) -> tuple[float, float]:
    """CPU share (%) of an idle loop over IDLE_S with and without runtime, reader every ``export_s``."""

    def run(with_runtime: bool) -> float:
        reader = PeriodicExportingMetricReader(NullExporter(), export_interval_millis=export_s * 1000)
        mp = MeterProvider(metric_readers=[reader])
        try:
            if with_runtime:
                runtime.instrument(_tel(mp))
            wall0 = time.perf_counter()
            cpu = _idle_loop_cpu(IDLE_S)
            wall = time.perf_counter() - wall0
            return cpu / wall * 100
        finally:
            runtime.uninstrument()
            mp.shutdown()

    withs, withouts = [], []
    for _ in range(REPEATS):
        withouts.append(run(False))
        withs.append(run(True))
    return statistics.median(withs), statistics.median(withouts)


def main(argv: Sequence[str] = ()) -> dict[str, Any]:
    started = time.perf_counter()
    probe_us, base_probe_us = per_probe_cost_us()
    collect_ms, empty_collect_ms = per_collect_cost_ms()
    extra_collect_ms = max(collect_ms - empty_collect_ms, 0.0)
    share_probe = probe_us * 1e-6 / DEFAULT_PROBE_S * 100
    share_collect = extra_collect_ms * 1e-3 / DEFAULT_EXPORT_S * 100
    share_default = share_probe + share_collect
    watch_us, call_us = watch_loop_fast_path()
    direct_with, direct_without = direct_share(1.0)
    result = {
        "cores": os.cpu_count(),
        "probe_interval_s": DEFAULT_PROBE_S,
        "metric_interval_s": DEFAULT_EXPORT_S,
        "probe_cpu_us": round(probe_us, 2),
        "bare_timer_wakeup_cpu_us_baseline": round(base_probe_us, 2),
        "probe_vs_bare_timer_ratio": round(probe_us / base_probe_us, 2) if base_probe_us else None,
        "collect_cpu_ms": round(collect_ms, 3),
        "collect_cpu_ms_empty_provider": round(empty_collect_ms, 3),
        "cpu_share_pct_default_probe": round(share_probe, 5),
        "cpu_share_pct_default_collect": round(share_collect, 5),
        "cpu_share_pct_default_total": round(share_default, 5),
        "direct_idle_cpu_pct_with_runtime_export_1s": round(direct_with, 4),
        "direct_idle_cpu_pct_baseline_export_1s": round(direct_without, 4),
        "direct_overhead_pct_points_export_1s": round(direct_with - direct_without, 4),
        "watch_loop_fast_path_us": round(watch_us, 3),
        "plain_call_us_baseline": round(call_us, 3),
        "watch_loop_vs_call_ratio": round(watch_us / call_us, 1) if call_us else None,
        "repeats": REPEATS,
        "runtime_s": 0.0,
    }
    result["runtime_s"] = round(time.perf_counter() - started, 1)
    print("runtime integration cost (medians; same-run baselines)")
    print(f"  per probe:                   {probe_us:8.2f} µs CPU  (bare asyncio timer wakeup {base_probe_us:.2f} µs, "
          f"ratio {probe_us / base_probe_us:.2f}x)")
    print(f"  per collection (process.*):  {collect_ms:8.3f} ms CPU  (empty provider {empty_collect_ms:.3f} ms)")
    print(f"  CPU share at defaults (probe {DEFAULT_PROBE_S}s, collect {DEFAULT_EXPORT_S:.0f}s): "
          f"{share_default:.5f} % of one core  (probe {share_probe:.5f} %, collect {share_collect:.5f} %)")
    print(f"  watch_loop() when already watched: {watch_us:.3f} µs ({watch_us / call_us:.1f}x a plain call)")
    print(f"  direct, idle loop {IDLE_S}s, reader every 1 s (30x default): "
          f"{direct_with:.4f} % vs {direct_without:.4f} % baseline "
          f"(+{direct_with - direct_without:.4f} points)")
    rows = [
        {"name": "runtime metrics + loop probe, CPU share at defaults", "value": share_default, "unit": "%",
         "baseline": 0.0, "ratio": None, "goal": ""},
        {"name": "loop-lag probe CPU vs a bare timer wake-up", "value": probe_us, "unit": "us",
         "baseline": base_probe_us, "ratio": result["probe_vs_bare_timer_ratio"], "goal": ""},
    ]
    report("runtime", rows, details=result)
    return result


if __name__ == "__main__":
    main()
