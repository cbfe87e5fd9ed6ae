"""FastAPI request overhead through real uvicorn: bare vs ours vs stock OTel instrumentation vs FastAPI native.

Each server runs in its own process (so the load generator does not share its GIL) and exports over
OTLP/gRPC to a real receiver. Latency: sequential keep-alive requests, p50/p99. Throughput: 8 concurrent
clients for a fixed time. Medians over repeats; ratios against the bare server measured in the same run.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report
from agentpress_otel._harness._proc import ManagedProcess, free_port, http_ok
from agentpress_otel._harness.otlp_sink import OTLPSink

HERE = Path(__file__).resolve().parent
MODES = ["bare", "ours", "stock", "native"]
N_LAT, REPEATS, TPUT_S, CONC = 1500, 3, 3.0, 8


def latency(url: str) -> tuple[float, float]:
    with httpx.Client() as c:
        for _ in range(200):
            c.get(url)
        p50s, p99s = [], []
        for _ in range(REPEATS):
            lat = []
            for _ in range(N_LAT):
                t0 = time.perf_counter()
                c.get(url)
                lat.append((time.perf_counter() - t0) * 1e6)
            lat.sort()
            p50s.append(lat[len(lat) // 2])
            p99s.append(lat[int(len(lat) * 0.99)])
    return statistics.median(p50s), statistics.median(p99s)


async def _throughput(url: str) -> float:
    done = 0
    stop = time.perf_counter() + TPUT_S

    async def worker(c: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await c.get(url)
            done += 1

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=CONC)) as c:
        await asyncio.gather(*(worker(c) for _ in range(CONC)))
    return done / TPUT_S


def main() -> None:
    results: dict[str, tuple[float, float, float]] = {}
    with OTLPSink() as sink:
        for mode in MODES:
            port = free_port()
            proc = ManagedProcess(
                f"bench-{mode}",
                [sys.executable, str(HERE / "_http_app.py"), mode, str(port)],
                env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint, "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "5"},
            )
            url = f"http://127.0.0.1:{port}/api/thread/t-1/status"
            with proc:
                proc.start(ready=lambda u=url: http_ok(u), timeout=30)
                p50, p99 = latency(url)
                tput = statistics.median(asyncio.run(_throughput(url)) for _ in range(REPEATS))
            results[mode] = (p50, p99, tput)
            print(f"{mode:7} p50 {p50:8.1f} us  p99 {p99:8.1f} us  {tput:8.0f} req/s", flush=True)
        spans = len(sink.spans())
    base = results["bare"]
    rows = []
    for mode in MODES[1:]:
        p50, p99, tput = results[mode]
        rows.append(
            {
                "name": f"p50 latency, {mode} vs bare",
                "value": p50,
                "unit": "us",
                "baseline": base[0],
                "ratio": p50 / base[0],
                "goal": "<= 1.5x" if mode == "ours" else "",
            }
        )
        rows.append(
            {
                "name": f"throughput, {mode} vs bare",
                "value": tput,
                "unit": "/s",
                "baseline": base[2],
                "ratio": tput / base[2],
                "goal": ">= 0.70" if mode == "ours" else "",
            }
        )
    rows.append(
        {
            "name": "p50 latency, ours vs stock FastAPIInstrumentor",
            "value": results["ours"][0],
            "unit": "us",
            "baseline": results["stock"][0],
            "ratio": results["ours"][0] / results["stock"][0],
        }
    )
    report("http", rows)
    print(f"(spans received by the OTLP sink: {spans})")


if __name__ == "__main__":
    main()
