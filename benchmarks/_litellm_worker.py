"""One instrumentation variant around real LiteLLM calls, driven by ``bench_litellm_peers.py``.

Runs in its own interpreter (ours in the project venv, each peer in its own venv), so it imports
nothing from agentpress-otel unless the variant is ours. Protocol on stdin/stdout, one JSON per line:
the driver sends ``{"calls": N, "stream": bool}``, the worker makes N ``litellm.acompletion`` calls
against the loopback LLM server, flushes the telemetry (export included), and answers with the process
CPU time (all threads) those calls took, less the fixed cost of one flush with nothing new to export
(the periodic metric export, reported as ``flush_us``).

Usage: python _litellm_worker.py VARIANT LLM_BASE_URL OTLP_HTTP_ENDPOINT
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Callable
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


def setup() -> tuple[Callable[[], None], Any]:
    """(flush, per-call wrapper factory or None) for VARIANT."""
    if VARIANT == "uninstrumented":
        return (lambda: None), None
    if VARIANT == "sdk_span":
        tp = _sdk_provider()
        tracer = tp.get_tracer("bench")

        def around(model: str) -> Any:
            span = tracer.start_as_current_span(
                f"chat {model}", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": model})
            return span

        return (lambda: tp.force_flush()), around
    if VARIANT in ("ours", "ours_litellm"):
        import agentpress_otel

        kw: dict[str, Any] = {"integrations": ["litellm"]} if VARIANT == "ours_litellm" else {}
        tel = agentpress_otel.instrument(service_name=f"bench-{VARIANT}", endpoint=OTLP, protocol="http/protobuf",
                                         **kw)
        return (lambda: tel.force_flush(10)), None
    if VARIANT == "openinference":
        from openinference.instrumentation.litellm import LiteLLMInstrumentor

        tp = _sdk_provider()
        LiteLLMInstrumentor().instrument(tracer_provider=tp)
        return (lambda: tp.force_flush()), None
    if VARIANT == "traceloop":
        # OpenLLMetry's instrumentation of the OpenAI SDK, which LiteLLM calls for openai/ models.
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        tp = _sdk_provider()
        OpenAIInstrumentor().instrument(tracer_provider=tp)
        return (lambda: tp.force_flush()), None
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


async def main() -> None:
    flush, around = setup()
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # as AgentPress does
    for stream in (False, True):  # warm-up: imports, connection pools, caches, tokenizer-free paths
        for _ in range(20):
            await one_call(litellm, around, stream)
    flush()
    # Every variant freezes what start-up allocated, as preloading servers (gunicorn --preload) do: a full
    # collection of LiteLLM's heap costs 200-300 ms of CPU (bench_litellm_wrapper.py prints it) and lands in
    # whichever block crosses the threshold, swinging that block by ~2-3 ms per call, more than the differences
    # measured here.
    gc.collect()
    gc.freeze()
    print("@@" + json.dumps({"ready": VARIANT}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line.strip():
            break
        cmd = json.loads(line)
        n, stream = int(cmd["calls"]), bool(cmd["stream"])
        flush()
        # The fixed cost of a flush with nothing new to export: ours collects and exports every metric series
        # (about 4 ms of CPU), which in production happens once per export interval (60 s), not per block of
        # calls. It is measured here and taken out of the block, so blocks of N calls are not charged N-fold.
        f0 = time.process_time()
        flush()
        fixed = time.process_time() - f0
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(n):
            await one_call(litellm, around, stream)
        flush()  # export included: the batch processors' work for these calls happens before we read the clock
        cpu, wall = time.process_time() - c0 - fixed, time.perf_counter() - w0
        print("@@" + json.dumps({"cpu_us": cpu / n * 1e6, "wall_us": wall / n * 1e6, "flush_us": fixed * 1e6}),
              flush=True)


if __name__ == "__main__":
    asyncio.run(main())
