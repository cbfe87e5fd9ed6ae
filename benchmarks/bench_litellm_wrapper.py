"""What our LiteLLM wrapper itself costs per call, without LiteLLM's own work or the network around it.

``bench_litellm_peers.py`` measures whole ``litellm.acompletion`` calls; on a shared 2-core machine their
CPU moves by ±1 ms between blocks, more than the 100-300 µs this integration adds. This benchmark isolates
that share: real LiteLLM responses (one non-streamed ``ModelResponse``, one stream of
``ModelResponseStream`` chunks with a usage chunk) are captured once from the loopback LLM server, then
replayed through the integration's real wrapper (span, context, usage, cost, metrics) in place of the
provider call. The baseline is the same replay without the wrapper.

Per call: process CPU (all threads; each block ends with ``force_flush``, so span export over OTLP/HTTP and the
metric drain are included; the loopback receiver only reads and drops the requests, so it costs next to
nothing), paired per round against the bare replay, medians and ranges over ``ROUNDS`` interleaved rounds.
Then the default mode's share of the same call: the wrapper plus the call's HTTP request as the httpx integration
records it (every LLM call is one request, made inside the replayed provider call; both sides make it through a
real httpx transport with a canned pool, the httpx integration off on the bare side), against the default goals
(+250 / +300 µs).
Run: ``.venv/bin/python benchmarks/bench_litellm_wrapper.py``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)
from _common import report  # noqa: E402
from agentpress_otel._harness.llm_server import LLMServer  # noqa: E402
from harness.null_http import NullHTTP  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_WRAPPER_ROUNDS", "7"))
CALLS = int(os.environ.get("BENCH_WRAPPER_CALLS", "400"))
SPLIT_ROUNDS = int(os.environ.get("BENCH_WRAPPER_SPLIT_ROUNDS", "5"))
MESSAGES = [
    {"role": "system", "content": "You are a helpful agent that answers briefly. " * 6},
    {"role": "user", "content": "Find the docs for span processors and summarise them in two lines. [[words:12]]"},
]

Call = Callable[[], Coroutine[Any, Any, None]]


async def _capture(litellm: Any, base_url: str) -> tuple[Any, list[Any]]:
    """One real non-streamed response and one real stream's chunks, from LiteLLM against the loopback server."""
    kw = {"model": "openai/gpt-5-mini", "api_base": base_url, "api_key": "sk-bench", "messages": MESSAGES}
    resp = await litellm.acompletion(**kw)
    stream = await litellm.acompletion(stream=True, stream_options={"include_usage": True}, **kw)
    chunks = [c async for c in stream]
    return resp, chunks


def _calls(resp: Any, chunks: list[Any], base_url: str,
           request: Callable[[], Coroutine[Any, Any, Any]] | None = None) -> dict[tuple[str, bool], Call]:
    """(variant, streaming) -> one call: the bare replay, or the replay through our wrapper. ``request``, when
    given, is awaited where the provider call would send its HTTP request: inside the call, as LiteLLM does."""
    from agentpress_otel.integrations import litellm as ap_litellm

    kw = {"model": "openai/gpt-5-mini", "api_base": base_url, "api_key": "sk-bench", "messages": MESSAGES}
    skw = {**kw, "stream": True, "stream_options": {"include_usage": True}}

    async def plain(**_: Any) -> Any:
        if request is not None:
            await request()
        return resp

    async def agen() -> AsyncIterator[Any]:
        for c in chunks:
            yield c

    async def streamed(**_: Any) -> Any:
        if request is not None:
            await request()
        return agen()

    async def bare_plain() -> None:
        await plain(**kw)

    async def bare_stream() -> None:
        async for _ in await streamed(**skw):
            pass

    async def ours_plain() -> None:
        await ap_litellm._async_wrapper(plain, None, (), kw)

    async def ours_stream() -> None:
        async for _ in await ap_litellm._async_wrapper(streamed, None, (), skw):
            pass

    return {("bare", False): bare_plain, ("bare", True): bare_stream,
            ("ours", False): ours_plain, ("ours", True): ours_stream}


async def _block(fn: Call, flush: Callable[[], Any]) -> float:
    flush()
    c0 = time.process_time()
    for _ in range(CALLS):
        await fn()
    flush()
    return (time.process_time() - c0) / CALLS * 1e6


async def _split(fn: Call, tel: Any) -> tuple[float, float, float]:
    """(caller's thread, span flush, metric flush) CPU per call over one block: where the wrapper's cost goes."""
    tel.force_flush(10)
    t0 = time.thread_time()
    for _ in range(CALLS):
        await fn()
    t1 = time.thread_time()
    tel.tracer_provider.force_flush(10_000)  # the SDK batch processor exports on the flushing thread
    t2 = time.thread_time()
    tel.meter_provider.force_flush(10_000)  # collection runs the GenAI drain, then the export
    t3 = time.thread_time()
    return (t1 - t0) / CALLS * 1e6, (t2 - t1) / CALLS * 1e6, (t3 - t2) / CALLS * 1e6


async def _stream_parts(chunks: list[Any]) -> tuple[float, float]:
    """(proxy, chunk reading) caller-thread CPU per stream of ``chunks``, over the bare replay: the proxy's share
    (iteration through ``_Stream`` with a no-op observe, the span left out) and the per-chunk reading (``observe``
    of every chunk on a fresh state, no proxy)."""
    from agentpress_otel.genai import LLMCall
    from agentpress_otel.integrations._litellm_stream import _Stream, _StreamState

    class Unread(_StreamState):
        __slots__ = ()

        def observe(self, chunk: Any) -> None:
            return None

    async def agen() -> AsyncIterator[Any]:
        for c in chunks:
            yield c

    call = LLMCall(model="gpt-5-mini", provider="openai")  # never started: no span, no metrics

    async def bare() -> None:
        async for _ in agen():
            pass

    async def proxied() -> None:
        state = Unread(call, "gpt-5-mini", None)
        state.done = True  # its end is a no-op: only the proxy is measured
        async for _ in _Stream(agen(), state, is_async=True):
            pass

    def read() -> None:
        observe = _StreamState(LLMCall(model="gpt-5-mini", provider="openai"), "gpt-5-mini", None).observe
        for c in chunks:
            observe(c)

    async def per_call(fn: Callable[[], Any]) -> float:
        t0 = time.thread_time()
        for _ in range(CALLS):
            r = fn()
            if r is not None:
                await r
        return (time.thread_time() - t0) / CALLS * 1e6

    base = await per_call(bare)
    proxy = await per_call(proxied) - base
    def fresh() -> None:  # what read() pays besides reading: a call and a state
        _StreamState(LLMCall(model="gpt-5-mini", provider="openai"), "gpt-5-mini", None)

    return proxy, await per_call(read) - await per_call(fresh)


class _CannedPool:
    """Stands in for httpcore's pool under an httpx client: the transport (which our HTTP span wraps) runs."""

    async def handle_async_request(self, request: Any) -> Any:
        import httpcore

        return httpcore.Response(200, headers=[(b"content-type", b"application/json")], content=b"{}")

    async def aclose(self) -> None:
        pass

    async def __aexit__(self, *exc: object) -> None:
        pass


async def _default_mode(resp: Any, chunks: list[Any], base_url: str, tel: Any, flush: Callable[[], None]
                        ) -> dict[bool, list[float]]:
    """Per call, what the default instrument() adds: the wrapper plus the call's HTTP request as the httpx
    integration records it (every LLM call is one request; LiteLLM's async calls go through its own transport,
    which the httpx integration wraps the same way): by default a duration point and the chat span's traceparent,
    no span of its own (``llm_http_spans``). Both sides make the request inside the replayed provider call,
    through a real httpx transport with a canned connection pool; the bare side with the httpx integration off,
    ours with it on."""
    import httpx

    from agentpress_otel.integrations import _registry
    from agentpress_otel.integrations import httpx as http_integration

    # The request goes where the call's api_base points, as LiteLLM's does (the canned pool answers it): a request
    # to another host than the call names is not the call's own, and keeps its span.
    client = httpx.AsyncClient(base_url=base_url)
    client._transport._pool = _CannedPool()  # type: ignore[attr-defined]
    calls = _calls(resp, chunks, base_url,
                   request=lambda: client.post("/chat/completions", json={"model": "gpt-5-mini"}))

    _registry._start(tel, "httpx")
    deltas: dict[bool, list[float]] = {False: [], True: []}
    for rnd in range(ROUNDS):
        for stream in (False, True):
            got = {}
            for v in (["bare", "ours"] if rnd % 2 == 0 else ["ours", "bare"]):
                if v == "ours":
                    http_integration.instrument(tel)
                else:
                    http_integration.uninstrument()
                got[v] = await _block(calls[(v, stream)], flush)
            deltas[stream].append(got["ours"] - got["bare"])
    await client.aclose()
    return deltas


def _spread(values: tuple[float, ...]) -> str:
    return f"{statistics.median(values):.0f} [{min(values):.0f}..{max(values):.0f}]"


async def main() -> None:
    import agentpress_otel

    with LLMServer() as llm:
        sink = ThreadingHTTPServer(("127.0.0.1", 0), NullHTTP)
        threading.Thread(target=sink.serve_forever, daemon=True).start()
        try:
            tel = agentpress_otel.instrument(service_name="bench-litellm-wrapper",
                                             endpoint=f"http://127.0.0.1:{sink.server_address[1]}",
                                             protocol="http/protobuf", integrations=["litellm"])
            import litellm

            litellm.suppress_debug_info = True
            resp, chunks = await _capture(litellm, llm.base_url)
            calls = _calls(resp, chunks, llm.base_url)

            def flush() -> None:
                tel.force_flush(10)

            for fn in calls.values():  # warm-up: caches, metric streams, exporter connection
                for _ in range(50):
                    await fn()
            # As the peer benchmark's workers do: a full collection of LiteLLM's heap would land in one random
            # block (its cost is printed here); young collections, which our allocations do trigger, still count.
            gc.collect()
            t0 = time.thread_time()
            gc.collect()
            full_gc_ms, tracked = (time.thread_time() - t0) * 1e3, len(gc.get_objects())
            print(f"one full collection of this process's heap: {full_gc_ms:.0f} ms of CPU ({tracked} tracked objects)")
            gc.freeze()
            deltas: dict[bool, list[float]] = {False: [], True: []}
            bases: dict[bool, list[float]] = {False: [], True: []}
            for rnd in range(ROUNDS):
                for stream in (False, True):
                    order = ["bare", "ours"] if rnd % 2 == 0 else ["ours", "bare"]
                    got = {v: await _block(calls[(v, stream)], flush) for v in order}
                    bases[stream].append(got["bare"])
                    deltas[stream].append(got["ours"] - got["bare"])
            split: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
            parts: list[tuple[float, float]] = []
            for _ in range(SPLIT_ROUNDS):
                for stream in (False, True):
                    split[stream].append(await _split(calls[("ours", stream)], tel))
                parts.append(await _stream_parts(chunks))
            default = await _default_mode(resp, chunks, llm.base_url, tel, flush)
            tel.shutdown()
        finally:
            sink.shutdown()
    rows = []
    for stream, goal in ((False, "<= 150 us"), (True, "<= 150 us")):
        d, b = deltas[stream], statistics.median(bases[stream])
        med = statistics.median(d)
        label = f"streaming ({len(chunks)} chunks)" if stream else "non-streaming"
        rows.append({"name": f"LiteLLM wrapper CPU, {label}: +us vs bare replay", "value": med, "unit": "us",
                     "baseline": b, "ratio": (b + med) / b, "goal": goal, "range": [min(d), max(d)]})
        print(f"{label:28} +{med:.0f} us per call (range {min(d):+.0f}..{max(d):+.0f}; bare replay {b:.0f} us)")
    for stream, goal in ((False, "<= 250 us"), (True, "<= 300 us")):
        d = default[stream]
        med = statistics.median(d)
        label = f"streaming ({len(chunks)} chunks)" if stream else "non-streaming"
        b = statistics.median(bases[stream])
        rows.append({"name": f"default instrument(): wrapper + HTTP request, {label}: +us", "value": med, "unit": "us",
                     "baseline": b, "ratio": (b + med) / b, "goal": goal, "range": [min(d), max(d)]})
        print(f"default mode, {label:14} +{med:.0f} us per call (range {min(d):+.0f}..{max(d):+.0f}): the wrapper and "
              "the call's HTTP request as the httpx integration records it")
    for stream, blocks in split.items():
        label = "streaming" if stream else "non-streaming"
        main_us, spans_us, metrics_us = (_spread(col) for col in zip(*blocks, strict=True))
        print(f"where it goes, {label:13}: caller's thread {main_us} us, span export {spans_us} us, "
              f"metric drain and export {metrics_us} us per call (median [range] of {len(blocks)} blocks, "
              f"flushed signal by signal)")
    proxy_us, read_us = (_spread(col) for col in zip(*parts, strict=True))
    print(f"per {len(chunks)}-chunk stream, caller's thread: the proxy {proxy_us} us, reading the chunks {read_us} us "
          f"(median [range] of {len(parts)} blocks)")
    report("litellm_wrapper", rows, details={"rounds": ROUNDS, "calls_per_block": CALLS, "deltas_us": deltas,
                                             "bare_us": bases, "chunks": len(chunks), "split_us": split,
                                             "stream_parts_us": parts, "full_gc_ms": full_gc_ms,
                                             "tracked_objects": tracked, "default_deltas_us": default})


if __name__ == "__main__":
    asyncio.run(main())
