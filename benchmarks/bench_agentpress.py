"""Memory and CPU the two documented lines add to an AgentPress-shaped process, all integrations on.

The backend is the one the integration test runs (tests/integration/_agentpress_backend.py: classic layout,
``api.py`` importing the Dramatiq actor module, structlog, LiteLLM streaming from a loopback stand-in). Each
variant runs in a fresh interpreter that imports ``api`` (so both lines run, every default integration is on)
and then drives agent runs in-process the way the actor does (``ThreadManager.run_thread`` twice per run,
one streamed LLM call read partly and one tool each time):

* ``plain``: the same files without the two lines;
* ``otel``: with them, exporting over OTLP/gRPC to a real receiver in the parent.

Reported: resident memory after import and one warm-up run (VmRSS, median over repeats) and the CPU time of
the whole process (all threads: exporters included) per agent run. Run:
``.venv/bin/python benchmarks/bench_agentpress.py`` (< 2 min).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUNS, REPEATS = int(os.environ.get("BENCH_AP_RUNS", "30")), int(os.environ.get("BENCH_REPEATS", "3"))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(backend: str) -> None:
    """In a fresh interpreter: import the backend's api (the two lines run, or not), run agents, print JSON."""
    sys.path.insert(0, backend)
    import api  # noqa: F401  # the app process: imports the worker module first, as AgentPress does
    from agent_tools import WebSearchTool  # type: ignore[import-not-found]
    from agentpress.thread_manager import ThreadManager  # type: ignore[import-not-found]

    async def agent_run(i: int) -> int:
        import structlog

        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent_run_id=f"r-{i}", thread_id=f"t-{i}", request_id=f"q-{i}")
        tm = ThreadManager()
        tm.add_tool(WebSearchTool)
        n = 0
        for _ in range(2):
            gen = await tm.run_thread(thread_id=f"t-{i}", system_prompt={"role": "system", "content": "be brief"})
            async for _chunk in gen:
                n += 1
        return n

    async def go() -> dict[str, Any]:
        await agent_run(-1)  # warm-up: imports and first-use caches on both sides
        rss = _rss_mb()
        c0 = time.process_time()
        for i in range(RUNS):
            await agent_run(i)
        return {"rss_mb": rss, "cpu_ms_per_run": (time.process_time() - c0) / RUNS * 1000}

    out = asyncio.run(go())
    import agentpress_otel

    tel = agentpress_otel.current()
    out["instrumented"] = tel is not None and not tel.disabled
    out["integrations"] = [] if tel is None else list(tel.integrations)
    if tel is not None:
        tel.shutdown(timeout_s=3)
    print(json.dumps(out))


def run_variant(backend: Path, env: dict[str, str]) -> dict[str, Any]:
    # The log lines the backend prints go to a file: a terminal would measure the terminal.
    with tempfile.TemporaryFile() as sink_out:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(backend)], env=env,
                              stdout=subprocess.PIPE, stderr=sink_out, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            sink_out.seek(0)
            raise RuntimeError(f"child failed ({proc.returncode}):\n{sink_out.read().decode()[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith('{"rss_mb"')]
    return dict(json.loads(lines[-1]))


def main() -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    sys.path.insert(0, str(ROOT / "tests"))  # test-only helpers (harness.*)
    from _agentpress_backend import write_backend  # type: ignore[import-not-found]

    from _common import report
    from agentpress_otel._harness.llm_server import LLMServer
    from harness.otlp_sink import OTLPSink

    res: dict[str, list[dict[str, Any]]] = {"plain": [], "otel": []}
    with tempfile.TemporaryDirectory() as tmp, LLMServer(ttft_s=0.0, chunk_delay_s=0.0) as llm, OTLPSink() as sink:
        backends = {v: write_backend(Path(tmp) / v, with_otel=v == "otel") for v in res}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
        env.update({"REDIS_URL": "redis://127.0.0.1:1/0", "LLM_BASE_URL": llm.base_url,
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint})
        for _ in range(REPEATS):  # alternate so machine noise hits both alike
            for v in res:
                res[v].append(run_variant(backends[v], env))
    if any(r["instrumented"] for r in res["plain"]) or not all(r["instrumented"] for r in res["otel"]):
        raise RuntimeError(f"variants not as expected: {res}")

    def med(v: str, key: str) -> float:
        return statistics.median(r[key] for r in res[v])

    rss_plain, rss_otel = med("plain", "rss_mb"), med("otel", "rss_mb")
    cpu_plain, cpu_otel = med("plain", "cpu_ms_per_run"), med("otel", "cpu_ms_per_run")
    integrations = res["otel"][0]["integrations"]
    report("agentpress", [
        {"name": "RSS added per process, all integrations on", "value": rss_otel - rss_plain, "unit": "MB",
         "baseline": rss_plain, "ratio": rss_otel / rss_plain, "goal": "< 25 MB"},
        {"name": "CPU per agent run (2 LLM streams + 2 tools), all threads", "value": cpu_otel, "unit": "ms",
         "baseline": cpu_plain, "ratio": cpu_otel / cpu_plain, "goal": "reported"},
        {"name": "CPU added per agent run", "value": cpu_otel - cpu_plain, "unit": "ms", "goal": "reported"},
    ], details={"runs": RUNS, "repeats": res, "integrations": integrations})
    print(f"integrations on: {', '.join(integrations)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
