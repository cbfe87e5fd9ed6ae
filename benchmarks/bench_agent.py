"""One agent run (5 LLM calls + 5 tool calls), all telemetry on, vs the same code with the SDK disabled.

The agent is AgentPress-shaped but offline: each "LLM call" builds a message list and parses a canned
JSON response, each "tool call" does a little dict work, and every step logs one line. What is measured
is what the toolkit adds around that work:

* ``on``:  ``instrument(...)`` with traces + metrics + logs exported over OTLP/HTTP to a real receiver
  (OTLPSink in this process's parent), default options, ``thread_context`` ids,
  ``agent_run``/``llm_call``/``tool_call`` spans, GenAI metrics and one
  log record per step through our log pipeline;
* ``content``: ``on`` plus content capture (prompts/completions/tool args JSON-encoded, redacted, truncated);
* ``off``: the same script with ``OTEL_SDK_DISABLED=true`` (instrument() returns a no-op handle; the
  genai API falls back to the no-op OTel API).

Each variant runs in its own subprocess (global providers cannot be swapped in one process); the two are
alternated ``REPEATS`` times and the medians compared. Reports the ratio and the absolute overhead per
run in microseconds. Run: ``.venv/bin/python benchmarks/bench_agent.py`` (< 60 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = ("off", "on", "content")
RUNS, REPEATS, WARMUP = int(os.environ.get("BENCH_AGENT_RUNS", "200")), int(os.environ.get("BENCH_REPEATS", "3")), 30

_RESPONSE = json.dumps(
    {
        "id": "chatcmpl-1",
        "model": "gpt-5-mini-2025-08-07",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Let me look that up for you. " * 8,
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "web_search", "arguments": "{\"query\": \"otel python\"}"}}]}}],
        "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
    }
)


async def agent_once(i: int, log: logging.Logger) -> int:
    """5 LLM calls and 5 tool calls inside one agent run; returns a checksum so nothing is optimised away."""
    from agentpress_otel._context import thread_context
    from agentpress_otel.genai import agent_run, llm_call, tool_call

    total = 0
    messages: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful agent. " * 20}]
    with thread_context(project_id="p-1", thread_id=f"t-{i % 50}", user_id="u-1"):
        async with agent_run("suna", thread_id=f"t-{i % 50}", agent_run_id=f"r-{i}", model="openai/gpt-5-mini"):
            for step in range(5):
                messages.append({"role": "user", "content": f"step {step}: find the docs for span processors"})
                async with llm_call(model="openai/gpt-5-mini", provider="openai", messages=messages,
                                    temperature=0.2, max_tokens=1024, stream=False) as call:
                    resp = json.loads(_RESPONSE)
                    msg = resp["choices"][0]["message"]
                    call.set_response(model=resp["model"], id=resp["id"], finish_reasons=["tool_calls"])
                    call.set_usage(input_tokens=resp["usage"]["prompt_tokens"],
                                   output_tokens=resp["usage"]["completion_tokens"])
                    call.set_output_messages([msg], finish_reasons=["tool_calls"])
                log.info("llm step done", extra={"step": step, "tokens": resp["usage"]["total_tokens"]})
                tc = msg["tool_calls"][0]
                args = json.loads(tc["function"]["arguments"])
                async with tool_call("web_search", call_id=tc["id"], arguments=args) as t:
                    hits = [{"title": f"doc {k}", "url": f"https://x/{k}"} for k in range(5)]
                    result: dict[str, Any] = {"success": True, "output": hits}
                    t.set_result(result)
                log.info("tool done", extra={"tool": "web_search", "results": len(result["output"])})
                messages.append({"role": "tool", "content": json.dumps(result["output"])})
                total += len(messages)
    return total


def child(variant: str) -> None:
    """Run in a subprocess: set up (or not) the toolkit, time RUNS agent runs, print µs/run as JSON."""
    import agentpress_otel

    tel = agentpress_otel.instrument(
        service_name="bench-agent",
        protocol="http/protobuf",
        endpoint=os.environ.get("BENCH_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
        capture_content=variant == "content",
        integrations=["logging"],
        metric_interval_s=5,
    )
    log = logging.getLogger("bench.agent")
    log.setLevel(logging.INFO)
    log.propagate = variant != "off"  # off: a plain stdlib logger with no handler that writes anything
    if variant == "off":
        log.addHandler(logging.NullHandler())

    async def go() -> float:
        for i in range(WARMUP):
            await agent_once(i, log)
        t0 = time.perf_counter()
        for i in range(RUNS):
            await agent_once(i, log)
        return (time.perf_counter() - t0) / RUNS * 1e6

    us = asyncio.run(go())
    tel.shutdown(timeout_s=3)
    print(json.dumps({"variant": variant, "us_per_run": us, "disabled": bool(getattr(tel, "disabled", False))}))


def run_variant(variant: str, endpoint: str) -> float:
    env = dict(os.environ)
    env["BENCH_OTLP_ENDPOINT"] = endpoint
    env.pop("OTEL_SDK_DISABLED", None)
    if variant == "off":
        env["OTEL_SDK_DISABLED"] = "true"
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", variant],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"bench_agent child {variant} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    data = json.loads(lines[-1])
    if (variant == "off") != data["disabled"]:
        raise RuntimeError(f"variant {variant}: telemetry disabled={data['disabled']}, expected the opposite")
    return float(data["us_per_run"])


def main() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent / "tests"))  # test-only helpers (harness.*)
    from _common import report
    from harness.otlp_sink import OTLPSink

    res: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with OTLPSink() as sink:
        for _ in range(REPEATS):  # alternate so machine noise hits every variant alike
            for v in VARIANTS:
                res[v].append(run_variant(v, sink.http_endpoint))
            print("   ".join(f"{v} {res[v][-1]:9.1f} us/run" for v in VARIANTS), flush=True)
        spans = len(sink.spans())
    m = {v: statistics.median(res[v]) for v in VARIANTS}
    m_off = m["off"]
    rows = []
    for v, label in (("on", "defaults (content capture off)"), ("content", "content capture on")):
        rows.append({"name": f"agent run 5 LLM+5 tools, {label} vs SDK off", "value": m[v], "unit": "us",
                     "baseline": m_off, "ratio": m[v] / m_off, "goal": ""})
        rows.append({"name": f"agent run overhead per run, {label}", "value": m[v] - m_off, "unit": "us",
                     "baseline": None, "ratio": None, "goal": ""})
    report("agent", rows)
    print(f"(spans received by the OTLP sink: {spans}; sent: {2 * REPEATS * (RUNS + WARMUP) * 11})")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
