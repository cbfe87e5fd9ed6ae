"""One instrumentation variant around real LiteLLM calls, driven by ``bench_litellm_peers.py``.

Runs in its own interpreter (ours in the project venv, each peer in its own venv), so it imports
nothing from agentpress-otel unless the variant is ours. Protocol on stdin/stdout, one JSON per line:
the driver sends ``{"calls": N, "stream": bool, "on": bool}``; the worker switches its instrumentation on or
off if needed (each tool's own instrument/uninstrument, outside the measured window), makes N
``litellm.acompletion`` calls against the loopback LLM server, flushes the telemetry (export included), and
answers with the process CPU time (all threads) per call. Slices with the instrumentation off are the
baseline: the same process, heap and connections, so what differs between processes (memory layout, ±3 %
of LiteLLM's CPU here) does not read as instrumentation cost.

Under callgrind (``bench_litellm_instructions.py``), ``BENCH_CALLGRIND_LIB`` names a tiny compiled helper
that issues callgrind's client requests: instruction counting starts at the first slice, the counters are zeroed
after each switch and dumped after each slice's flush, so every dump holds exactly one slice's instructions (all
threads; valgrind runs them one at a time).

Usage: python _litellm_worker.py VARIANT LLM_BASE_URL OTLP_ENDPOINT (OTLP/HTTP base URL; gRPC for ours_grpc)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
VARIANT, BASE_URL, OTLP = sys.argv[1], sys.argv[2], sys.argv[3].rstrip("/")
MESSAGES = [
    {"role": "system", "content": "You are a helpful agent that answers briefly. " * 6},
    {"role": "user", "content": "Find the docs for span processors and summarise them in two lines."},
]


def _sdk_provider() -> Any:
    """The peers' setup as their docs show it: an SDK TracerProvider, BatchSpanProcessor, OTLP/HTTP."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tp = TracerProvider(resource=Resource.create({"service.name": f"bench-{VARIANT}"}))
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{OTLP}/v1/traces")))
    trace.set_tracer_provider(tp)
    return tp


class Variant:
    """One instrumentation, with the switch the benchmark flips between slices of calls: ``on()``/``off()`` install
    and undo it in this process (each tool's own uninstrument), ``flush()`` exports what it holds."""

    around: Any = None  # a per-call context manager factory (the bare SDK span), when on

    def flush(self) -> None:
        pass

    def on(self) -> None:
        pass

    def off(self) -> None:
        pass


def setup() -> Variant:
    v = Variant()
    if VARIANT == "uninstrumented":  # on and off are the same program: its delta is the measurement's noise
        return v
    if VARIANT == "sdk_span":
        tp = _sdk_provider()
        tracer = tp.get_tracer("bench")

        def around(model: str) -> Any:
            return tracer.start_as_current_span(
                f"chat {model}", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model})

        v.flush = lambda: tp.force_flush()  # type: ignore[method-assign]
        v.on = lambda: setattr(v, "around", around)  # type: ignore[method-assign]
        v.off = lambda: setattr(v, "around", None)  # type: ignore[method-assign]
        return v
    if VARIANT in ("ours", "ours_grpc", "ours_litellm"):
        import agentpress_otel
        from agentpress_otel.integrations import _registry

        kw: dict[str, Any] = {"integrations": ["litellm"]} if VARIANT == "ours_litellm" else {}
        if VARIANT != "ours_grpc":  # ours_grpc: the default protocol, OTLP/gRPC (OTLP is then the gRPC endpoint)
            kw["protocol"] = "http/protobuf"
        tel = agentpress_otel.instrument(service_name=f"bench-{VARIANT}", endpoint=OTLP, **kw)
        started: list[str] = []

        def off() -> None:
            started[:] = tel.integrations  # those still waiting for their library's import included
            _registry.uninstrument_all(tel)

        def on() -> None:
            for name in started:  # as instrument() starts them: now, or re-armed for a later import
                _registry._start(tel, name)

        v.flush = lambda: tel.force_flush(10)  # type: ignore[method-assign]
        v.on, v.off = on, off  # type: ignore[method-assign]
        return v
    if VARIANT in ("openinference", "traceloop"):
        if VARIANT == "openinference":
            from openinference.instrumentation.litellm import LiteLLMInstrumentor as Instrumentor
        else:  # OpenLLMetry's instrumentation of the OpenAI SDK, which LiteLLM calls for openai/ models
            from opentelemetry.instrumentation.openai import OpenAIInstrumentor as Instrumentor

        tp = _sdk_provider()
        inst = Instrumentor()
        inst.instrument(tracer_provider=tp)
        v.flush = lambda: tp.force_flush()  # type: ignore[method-assign]
        v.on = lambda: inst.instrument(tracer_provider=tp)  # type: ignore[method-assign]
        v.off = lambda: inst.uninstrument()  # type: ignore[method-assign]
        return v
    raise SystemExit(f"unknown variant {VARIANT}")


async def one_call(litellm: Any, around: Any, stream: bool) -> None:
    kw = {"model": "openai/gpt-5-mini", "api_base": BASE_URL, "api_key": "sk-bench", "messages": MESSAGES}
    cm = around("gpt-5-mini") if around is not None else None
    if cm is not None:
        cm.__enter__()
    try:
        if stream:
            resp = await litellm.acompletion(stream=True, stream_options={"include_usage": True}, **kw)
            async for _ in resp:
                pass
        else:
            await litellm.acompletion(**kw)
    finally:
        if cm is not None:
            cm.__exit__(None, None, None)


_TRACER: list[Any] = []


def _calibration_tracer() -> Any:
    if not _TRACER:  # made once, outside every timed or counted run
        from opentelemetry.sdk.trace import TracerProvider

        _TRACER.append(TracerProvider().get_tracer("calibration"))
    return _TRACER[0]


def _calibration(n: int) -> None:
    """``n`` SDK spans with GenAI-shaped attributes, started and ended with no processor: Python work of the kind
    instrumentation does (dicts, small calls, attribute checks) with no system call, for the instructions-to-CPU
    rate of ``bench_litellm_instructions.py``."""
    tracer = _calibration_tracer()
    for i in range(n):
        span = tracer.start_span("chat gpt-5-mini", attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-5-mini", "gen_ai.provider.name": "openai",
            "server.address": "127.0.0.1", "server.port": 8000 + i % 7})
        span.set_attribute("gen_ai.usage.input_tokens", 40 + i % 13)
        span.set_attribute("gen_ai.usage.output_tokens", 12)
        span.set_attribute("gen_ai.response.finish_reasons", ("stop",))
        span.end()


async def main() -> None:
    v = setup()
    v.on()
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # as AgentPress does
    for stream in (False, True):  # warm-up: imports, connection pools, caches, tokenizer-free paths
        for _ in range(20):
            await one_call(litellm, v.around, stream)
    v.off()  # and once each way after a switch, so the first measured slice is not the first after one
    await one_call(litellm, v.around, False)
    v.on()
    await one_call(litellm, v.around, True)
    v.flush()
    # Every variant freezes what start-up allocated, as preloading servers (gunicorn --preload) do: a full
    # collection of LiteLLM's heap costs 200-300 ms of CPU (bench_litellm_wrapper.py prints it) and lands in
    # whichever slice crosses the threshold, swinging it by more than the differences measured here.
    gc.collect()
    gc.freeze()
    print("@@" + json.dumps({"ready": VARIANT}), flush=True)
    cg = None
    if os.environ.get("BENCH_CALLGRIND_LIB"):
        import ctypes

        cg = ctypes.CDLL(os.environ["BENCH_CALLGRIND_LIB"])
        cg.cg_start()
    loop = asyncio.get_running_loop()
    state = True
    slices = 0

    async def measured(n: int, work: Any) -> None:
        """Run ``work()`` (awaited if it returns an awaitable), answer its process CPU per unit of ``n``; under
        callgrind the window is also one zeroed-then-dumped count."""
        nonlocal slices
        if cg is not None:
            cg.cg_zero()
        c0 = time.process_time()
        r = work()
        if r is not None:
            await r
        cpu = time.process_time() - c0
        if cg is not None:
            slices += 1
            cg.cg_dump(f"slice {slices}".encode())
        print("@@" + json.dumps({"cpu_us": cpu / n * 1e6}), flush=True)

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        cmd = json.loads(line)
        if "calibrate" in cmd:  # pure-Python work, no I/O: how fast this machine runs instrumentation-like code
            n = int(cmd["calibrate"])
            await measured(n, lambda n=n: _calibration(n))
            continue
        n, stream, want = int(cmd["calls"]), bool(cmd["stream"]), bool(cmd["on"])
        if want != state:  # outside the measured window
            (v.on if want else v.off)()
            state = want

        async def calls(n: int = n, stream: bool = stream) -> None:
            for _ in range(n):
                await one_call(litellm, v.around, stream)
            v.flush()  # export included: the batch processors' work for these calls happens before the clock is read

        await measured(n, calls)


if __name__ == "__main__":
    asyncio.run(main())
