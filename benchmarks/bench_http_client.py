"""Per outbound httpx request: our client wrapper against the stock ``opentelemetry-instrumentation-httpx``.

Every LLM call through LiteLLM (and every other call the app makes) is one httpx request, so in the default
``instrument()`` this span is part of each LLM call's cost. One process, one ``instrument(integrations=["httpx"])``
(traces and metrics over OTLP/HTTP to a loopback receiver that drops what it reads); the client's connection
pool is replaced by one that answers a canned JSON response, so neither the network nor a server is counted.
Three modes take turns in interleaved rounds (order rotated per round): ``bare`` (nothing wrapped), ``stock``
(the stock instrumentation into the same providers and exporters), ``ours`` (the integration's own wrapper,
:mod:`agentpress_otel.integrations._httpx_client`). Per request: process CPU (all threads; each block ends
with ``force_flush``, so span export and the metric collection are in it), paired against ``bare`` in the same
round; medians and ranges over ``ROUNDS`` rounds.
Run: ``.venv/bin/python benchmarks/bench_http_client.py``.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpcore
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)
from _common import report  # noqa: E402
from harness.otlp_sink import OTLPSink  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_HTTPC_ROUNDS", "7"))
CALLS = int(os.environ.get("BENCH_HTTPC_CALLS", "500"))
BODY = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",' \
       b'"content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1}}'
REQUEST = {"model": "gpt-5-mini", "messages": [{"role": "user", "content": "Summarise span processors."}]}


class _CannedPool:
    """Stands in for httpcore's connection pool: the transport (which both wrappers wrap) runs for real."""

    async def handle_async_request(self, request: Any) -> httpcore.Response:
        return httpcore.Response(200, headers=[(b"content-type", b"application/json"),
                                               (b"content-length", str(len(BODY)).encode())], content=BODY)

    async def aclose(self) -> None:
        pass

    async def __aexit__(self, *exc: object) -> None:
        pass


async def _block(client: httpx.AsyncClient, tel: Any) -> float:
    tel.force_flush(10)
    c0 = time.process_time()
    for _ in range(CALLS):
        r = await client.post("/v1/chat/completions", json=REQUEST, headers={"authorization": "Bearer sk-bench"})
        r.json()
    tel.force_flush(10)
    return (time.process_time() - c0) / CALLS * 1e6


async def main() -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    import agentpress_otel
    from agentpress_otel.integrations import httpx as ours

    sink = OTLPSink().start()
    tel = agentpress_otel.instrument(service_name="bench-http-client", endpoint=sink.http_endpoint.rstrip("/"),
                                     protocol="http/protobuf", integrations=["httpx"])
    ours.uninstrument()
    stock = HTTPXClientInstrumentor()

    def switch(mode: str) -> None:
        ours.uninstrument()
        if stock.is_instrumented_by_opentelemetry:
            stock.uninstrument()
        if mode == "ours":
            ours.instrument(tel)
        elif mode == "stock":
            stock.instrument(tracer_provider=tel.tracer_provider, meter_provider=tel.meter_provider)

    modes = ["bare", "stock", "ours"]
    raw: dict[str, list[float]] = {m: [] for m in modes}
    try:
        async with httpx.AsyncClient(base_url="https://api.llm-provider.example") as client:
            client._transport._pool = _CannedPool()  # type: ignore[attr-defined]
            for m in modes:  # warm-up: every path once, imports and caches
                switch(m)
                for _ in range(200):
                    await client.post("/v1/chat/completions", json=REQUEST)
            for rnd in range(ROUNDS):
                for m in modes[rnd % 3:] + modes[: rnd % 3]:
                    switch(m)
                    raw[m].append(await _block(client, tel))
            switch("bare")
    finally:
        tel.shutdown()
        sink.stop()

    base = statistics.median(raw["bare"])
    print(f"\nhttpx AsyncClient.post, canned response, {CALLS} requests per block, {ROUNDS} interleaved rounds;")
    print("process CPU per request (all threads, span export and metric collection included)")
    print(f"{'mode':8} {'us/request':>11} {'+us vs bare (median)':>22} {'range':>16}")
    print(f"{'bare':8} {base:>11.1f}")
    rows: list[dict[str, Any]] = []
    deltas = {m: [raw[m][i] - raw["bare"][i] for i in range(ROUNDS)] for m in ("stock", "ours")}
    for m, d in deltas.items():
        print(f"{m:8} {statistics.median(raw[m]):>11.1f} {statistics.median(d):>+22.1f}"
              f" {f'{min(d):+.0f}..{max(d):+.0f}':>16}")
    med = {m: statistics.median(d) for m, d in deltas.items()}
    print(f"ours / stock (added CPU): {med['ours'] / med['stock']:.2f}x")
    rows.append({"name": "httpx client span + metric, ours: +us per request vs stock instrumentation",
                 "value": med["ours"], "unit": "us", "baseline": med["stock"],
                 "ratio": med["ours"] / med["stock"], "goal": "<= 0.8x", "range": [min(deltas["ours"]),
                                                                                 max(deltas["ours"])]})
    rows.append({"name": "httpx request, ours: process CPU vs uninstrumented", "value": statistics.median(raw["ours"]),
                 "unit": "us", "baseline": base, "ratio": statistics.median(raw["ours"]) / base, "goal": ""})
    report("http_client", rows, details={"rounds": ROUNDS, "calls": CALLS, "raw_us": raw})


if __name__ == "__main__":
    t0 = time.monotonic()
    asyncio.run(main())
    print(f"({time.monotonic() - t0:.0f} s)")
