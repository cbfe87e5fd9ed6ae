"""FastAPI request overhead through real uvicorn: bare vs our one-line default vs our FastAPI middleware alone
vs stock OTel instrumentation vs FastAPI native.

Each server runs in its own process (so the load generator does not share its GIL) and exports over
OTLP/gRPC to a real receiver on loopback. All servers run for the whole benchmark and are measured in
interleaved rounds (the order rotates every round), so a load shift on the machine hits every mode alike.
Per round and mode: latency from sequential keep-alive requests (p50/p99), then throughput from 8
concurrent clients for a fixed time. Reported: the median over rounds, and ratios against the bare server.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # test-only helpers (harness.*)
from _common import report
from agentpress_otel._harness._proc import ManagedProcess, free_port, http_ok
from harness.otlp_sink import OTLPSink

HERE = Path(__file__).resolve().parent
MODES = ["bare", "default", "ours", "stock", "native"]
ROUNDS, N_LAT, TPUT_S, CONC = 7, 800, 2.0, 8
GOAL_MODES = {"default", "ours"}  # the goal: at most 1.5x the bare p50


def latency(client: httpx.Client, url: str) -> tuple[float, float]:
    lat = []
    for _ in range(N_LAT):
        t0 = time.perf_counter()
        client.get(url)
        lat.append((time.perf_counter() - t0) * 1e6)
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.99)]


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
    samples: dict[str, dict[str, list[float]]] = {m: {"p50": [], "p99": [], "tput": []} for m in MODES}
    with OTLPSink() as sink, contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for mode in MODES:
            port = free_port()
            proc = ManagedProcess(
                f"bench-{mode}",
                [sys.executable, str(HERE / "_http_app.py"), mode, str(port)],
                env={"OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint, "AGENTPRESS_OTEL_METRIC_INTERVAL_S": "5",
                     "OTEL_SERVICE_NAME": f"bench-{mode}"},
            )  # fmt: skip
            stack.enter_context(proc)
            url = f"http://127.0.0.1:{port}/api/thread/t-1/status"
            proc.start(ready=lambda u=url: http_ok(u), timeout=30)
            urls[mode] = url
        clients = {m: stack.enter_context(httpx.Client()) for m in MODES}
        for m in MODES:  # warm up every server and connection
            for _ in range(300):
                clients[m].get(urls[m])
        for rnd in range(ROUNDS):
            order = MODES[rnd % len(MODES):] + MODES[: rnd % len(MODES)]
            for mode in order:
                p50, p99 = latency(clients[mode], urls[mode])
                tput = asyncio.run(_throughput(urls[mode]))
                for k, v in (("p50", p50), ("p99", p99), ("tput", tput)):
                    samples[mode][k].append(v)
            print(f"round {rnd + 1}/{ROUNDS}: " + "  ".join(f"{m} {samples[m]['p50'][-1]:.0f}us" for m in MODES),
                  flush=True)  # fmt: skip
        spans = len(sink.spans())
    med = {m: {k: statistics.median(v) for k, v in samples[m].items()} for m in MODES}
    for m in MODES:
        print(f"{m:8} p50 {med[m]['p50']:8.1f} us  p99 {med[m]['p99']:8.1f} us  {med[m]['tput']:8.0f} req/s")
    base = med["bare"]
    rows = []
    for mode in MODES[1:]:
        rows.append({"name": f"p50 latency, {mode} vs bare", "value": med[mode]["p50"], "unit": "us",
                     "baseline": base["p50"], "ratio": med[mode]["p50"] / base["p50"],
                     "goal": "<= 1.5x" if mode in GOAL_MODES else ""})  # fmt: skip
        rows.append({"name": f"p99 latency, {mode} vs bare", "value": med[mode]["p99"], "unit": "us",
                     "baseline": base["p99"], "ratio": med[mode]["p99"] / base["p99"], "goal": ""})  # fmt: skip
        rows.append({"name": f"throughput, {mode} vs bare", "value": med[mode]["tput"], "unit": "/s",
                     "baseline": base["tput"], "ratio": med[mode]["tput"] / base["tput"],
                     "goal": ">= 0.70" if mode in GOAL_MODES else ""})  # fmt: skip
    for mode in ("default", "ours"):
        stock = med["stock"]["p50"]
        rows.append({"name": f"p50 latency, {mode} vs stock FastAPIInstrumentor", "value": med[mode]["p50"],
                     "unit": "us", "baseline": stock, "ratio": med[mode]["p50"] / stock})  # fmt: skip
    report("http", rows, details={"rounds": ROUNDS, "requests_per_round": N_LAT, "samples": samples})
    print(f"(spans received by the OTLP sink: {spans})")


if __name__ == "__main__":
    main()
