"""What ``instrument()`` costs at start-up, and whether the first LiteLLM call pays for it.

Each measurement runs in a fresh interpreter (import-time work is the point), alternated ``REPEATS``
times; medians:

* ``instrument()`` CPU on the calling thread (``time.thread_time``), defaults and ``integrations=["litellm"]``,
  against a bare SDK set-up (TracerProvider + BatchSpanProcessor + OTLP/HTTP exporter) in the same run;
* the wall time of the first ``litellm.acompletion`` against the loopback LLM server after
  ``instrument(integrations=["litellm"])``, against the same first call without instrumentation
  (a background warm-up competing for the GIL showed up here as 720 ms instead of 130 ms).

Run: ``.venv/bin/python benchmarks/bench_startup.py`` (writes benchmarks/results/startup.json).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

from _common import report
from agentpress_otel._harness.llm_server import LLMServer

REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))

_SETUP = {
    "sdk": (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
        "tp = TracerProvider(); tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))\n"
        "trace.set_tracer_provider(tp)\n"
    ),
    "ours": "import agentpress_otel\nagentpress_otel.instrument(service_name='startup')\n",
    "ours_litellm": (
        "import agentpress_otel\n"
        "agentpress_otel.instrument(service_name='startup', integrations=['litellm'])\n"
    ),
}

_CHILD = """
import asyncio, json, os, sys, time
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
setup, base_url, first_call = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
c0 = time.thread_time()
exec(setup)
setup_cpu = time.thread_time() - c0
out = {"setup_cpu_s": setup_cpu}
if first_call:
    import litellm
    litellm.suppress_debug_info = True
    async def main():
        w0 = time.perf_counter()
        await litellm.acompletion(model="openai/gpt-5-mini", api_base=base_url, api_key="sk-x",
                                  messages=[{"role": "user", "content": "hi"}])
        return time.perf_counter() - w0
    out["first_call_s"] = asyncio.run(main())
print("@@" + json.dumps(out))
"""


def child(setup: str, base_url: str, first_call: bool) -> dict[str, float]:
    res = subprocess.run([sys.executable, "-c", _CHILD, setup, base_url, "1" if first_call else "0"],
                         capture_output=True, text=True, timeout=300)
    for line in res.stdout.splitlines():
        if line.startswith("@@"):
            return dict(json.loads(line[2:]))
    raise RuntimeError(res.stderr[-2000:])


def main() -> None:
    cpu: dict[str, list[float]] = {k: [] for k in _SETUP}
    first: dict[str, list[float]] = {"none": [], "ours_litellm": []}
    with LLMServer() as llm:
        for _ in range(REPEATS):
            for name, code in _SETUP.items():
                cpu[name].append(child(code, llm.base_url, False)["setup_cpu_s"])
            # LiteLLM is imported after instrument() in both, as an app importing it later would
            first["none"].append(child("", llm.base_url, True)["first_call_s"])
            first["ours_litellm"].append(child(_SETUP["ours_litellm"], llm.base_url, True)["first_call_s"])
    med = {k: statistics.median(v) for k, v in cpu.items()}
    fmed = {k: statistics.median(v) for k, v in first.items()}
    for k, v in med.items():
        runs = [round(x * 1000) for x in cpu[k]]
        print(f"setup CPU on the caller's thread, {k:13}: {v * 1000:7.1f} ms  (runs: {runs})")
    for k, v in fmed.items():
        runs = [round(x * 1000) for x in first[k]]
        print(f"first LiteLLM call wall time, {k:13}: {v * 1000:7.1f} ms  (runs: {runs})")
    rows: list[dict[str, Any]] = [
        {"name": "instrument() CPU on the caller's thread, defaults vs bare SDK setup", "value": med["ours"],
         "unit": "s", "baseline": med["sdk"], "ratio": med["ours"] / med["sdk"], "goal": "<= 0.2 s"},
        {"name": "instrument(integrations=[litellm]) CPU on the caller's thread vs bare SDK",
         "value": med["ours_litellm"], "unit": "s", "baseline": med["sdk"], "ratio": med["ours_litellm"] / med["sdk"],
         "goal": "<= 0.2 s"},
        {"name": "first LiteLLM call wall time, LiteLLM-only vs uninstrumented",
         "value": fmed["ours_litellm"] * 1000, "unit": "ms", "baseline": fmed["none"] * 1000,
         "ratio": fmed["ours_litellm"] / fmed["none"], "goal": "<= 1.5x"},
    ]
    report("startup", rows, details={"setup_cpu_s": cpu, "first_call_s": first})


if __name__ == "__main__":
    main()
