"""The two documented lines on an AgentPress-shaped backend (classic layout), run as AgentPress runs it.

Real processes: gunicorn --preload with uvicorn workers serving ``api:app`` (which imports the actor module
before it creates the app), the ``dramatiq`` CLI running ``run_agent_background`` on a real redis-server,
LiteLLM streaming from the local OpenAI-compatible stand-in, everything exported over OTLP/gRPC to a real
receiver. The same backend is also run without the two lines: what the processes print must not change.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from _agentpress_backend import write_backend  # type: ignore[import-not-found]

from agentpress_otel._harness._proc import ComponentMissing, free_port, port_open, wait_until
from agentpress_otel._harness.llm_server import LLMServer
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest
from harness import redis as redis_harness
from harness.otlp_sink import OTLPSink, attrs_to_dict

pytestmark = pytest.mark.integration

ID_ATTRS = ("agentpress.thread.id", "agentpress.agent_run.id", "agentpress.project.id", "user.id",
            "agentpress.request.id")


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


# A JWT of the shape Supabase issues (the SSE endpoint takes it in the query string).
JWT = ".".join((_b64({"alg": "HS256", "typ": "JWT"}), _b64({"sub": "user-7f3a", "role": "authenticated"}),
                "Zk9tQ2hhbmdlTWVQbGVhc2VTaWduYXR1cmU"))


@dataclass
class Run:
    api_out: str
    api_err: str
    worker_out: str
    worker_err: str
    start: dict[str, Any]
    start_headers: httpx.Headers
    done_request_id: str


def _spawn(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # The child keeps its own copies of the descriptors; ours are closed when Popen returns.
    with open(log.with_suffix(".out"), "wb") as out, open(log.with_suffix(".err"), "wb") as err:
        return subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                                stdout=out, stderr=err)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    # SIGTERM to the master only, as an orchestrator does (gunicorn and dramatiq stop their own children; a
    # signal to the whole group would race the master into respawning a worker).
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left behind


def _run_backend(root: Path, *, with_otel: bool, redis_url: str, llm: LLMServer, sink: OTLPSink,
                 until: Any = None) -> Run:
    import redis

    backend = write_backend(root, with_otel=with_otel)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env.update({
        "PYTHONPATH": os.pathsep.join(p for p in (str(backend), os.environ.get("PYTHONPATH")) if p),
        "REDIS_URL": redis_url, "LLM_BASE_URL": llm.base_url,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1",
        # Configuration only through the environment: the code has just the two lines.
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100", "AGENTPRESS_OTEL_LOGGER_LEVELS": "structlog=DEBUG",
    })
    port = free_port()
    dramatiq_bin = Path(sys.executable).parent / "dramatiq"
    worker = _spawn([str(dramatiq_bin), "run_agent_background", "--processes", "1", "--threads", "2",
                     "--skip-logging"], backend, env, root / "worker")
    # As AgentPress's Dockerfile runs it: gunicorn --preload (imports api.py in the master, then forks).
    api = _spawn([str(Path(sys.executable).parent / "gunicorn"), "api:app", "--workers", "1", "--worker-class",
                  "uvicorn.workers.UvicornWorker", "--bind", f"127.0.0.1:{port}", "--preload", "--log-level", "info",
                  "--access-logfile", "-", "--error-logfile", "-"], backend, env, root / "api")
    try:
        wait_until(lambda: api.poll() is None and port_open(port), timeout=60, what="uvicorn")
        base = f"http://127.0.0.1:{port}"
        r = httpx.post(f"{base}/api/thread/th-5c1e/agent/start", headers={"Authorization": f"Bearer {JWT}"},
                       timeout=30)
        assert r.status_code == 200, r.text
        start = r.json()
        s = httpx.get(f"{base}/api/agent-run/{start['agent_run_id']}/stream", params={"token": JWT}, timeout=30)
        assert s.status_code == 200 and "completed" in s.text
        client = redis.Redis.from_url(redis_url)
        key = f"done:{start['agent_run_id']}"
        wait_until(lambda: worker.poll() is None and client.exists(key) == 1, timeout=60, what="the agent run")
        done_rid = client.get(key).decode()
        client.close()
        if until is not None:
            wait_until(lambda: until(start), timeout=30, what="the run's telemetry")
    finally:
        _stop(api)
        _stop(worker)

    def read(name: str) -> str:
        return (root / name).read_text(errors="replace")

    return Run(read("api.out"), read("api.err"), read("worker.out"), read("worker.err"), start, r.headers, done_rid)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REDACTED = re.compile(r"\[REDACTED:[a-z_]+:[0-9a-f]+\]")


def _printed(text: str) -> Counter[str]:
    """The lines a process printed, as a multiset, with run-specific values (ids, ports, pids, times) masked
    and the JWT or its redaction marker as one placeholder. Structlog JSON lines are reduced to level + event
    (our processors add keys to them on purpose)."""
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            line = f"json {doc.get('level')} {doc.get('event')}"
        line = _REDACTED.sub("<token>", line.replace(JWT, "<token>"))
        line = re.sub(r"\d+", "N", _UUID.sub("<uuid>", line))
        out[line] += 1
    return out


@pytest.fixture
def components() -> Iterator[tuple[str, LLMServer, OTLPSink]]:
    if not (Path(sys.executable).parent / "dramatiq").exists():
        need(lambda: (_ for _ in ()).throw(ComponentMissing("dramatiq CLI not installed in .venv")))
    srv = need(redis_harness.start_redis)
    try:
        with LLMServer(ttft_s=0.01, chunk_delay_s=0.002) as llm, OTLPSink() as sink:
            yield srv.url, llm, sink
    finally:
        srv.stop()


def _spans(sink: OTLPSink) -> list[tuple[dict[str, Any], Any, dict[str, Any]]]:
    with sink.lock:
        reqs = list(sink.received.traces)
    return [(attrs_to_dict(rs.resource.attributes), s, attrs_to_dict(s.attributes))
            for r in reqs for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _logs(sink: OTLPSink) -> list[tuple[dict[str, Any], Any, dict[str, Any]]]:
    with sink.lock:
        reqs = list(sink.received.logs)
    return [(attrs_to_dict(rl.resource.attributes), lr, attrs_to_dict(lr.attributes))
            for r in reqs for rl in r.resource_logs for sl in rl.scope_logs for lr in sl.log_records]


def test_two_lines_on_agentpress_backend(components: tuple[str, LLMServer, OTLPSink], tmp_path: Path) -> None:
    """The two documented lines on AgentPress give API and worker their names and one trace with all five ids."""
    redis_url, llm, sink = components

    def run_exported(start: dict[str, Any]) -> bool:
        names = Counter(s.name for _, s, a in _spans(sink)
                        if a.get("agentpress.agent_run.id") == start["agent_run_id"])
        logs = [a for _, lr, a in _logs(sink) if "Agent run completed" in lr.body.string_value]
        return names["invoke_agent agentpress"] == 2 and names["execute_tool web_search"] == 2 and bool(logs)

    plain = _run_backend(tmp_path / "plain", with_otel=False, redis_url=redis_url, llm=llm, sink=sink)
    assert not sink.received.traces and not sink.received.logs  # nothing instruments the plain run
    run = _run_backend(tmp_path / "otel", with_otel=True, redis_url=redis_url, llm=llm, sink=sink,
                       until=run_exported)
    spans = _spans(sink)

    # 1. Service identity: the API process (which ran the worker module's line first) and the worker differ.
    server = [(res, s, a) for res, s, a in spans if s.name == "POST /api/thread/{thread_id}/agent/start"]
    assert len(server) == 1 and server[0][0]["service.name"] == "agentpress-api"
    runs = [(res, s, a) for res, s, a in spans if s.name == "invoke_agent agentpress"]
    assert len(runs) == 2 and {res["service.name"] for res, _, _ in runs} == {"agentpress-worker"}
    assert "RuntimeWarning" not in run.api_err and "RuntimeWarning" not in run.worker_err

    # 2. One trace from the request to the last tool; every span of it carries all five ids; one request id.
    trace_id = server[0][1].trace_id
    in_trace = [(res, s, a) for res, s, a in spans if s.trace_id == trace_id]
    assert {res["service.name"] for res, _, _ in in_trace} == {"agentpress-api", "agentpress-worker"}
    names = Counter(s.name for _, s, _ in in_trace)
    # Messaging spans are named "{operation} {queue}" (semconv); the actor is an attribute of ours.
    assert names["send default"] == 1 and names["process default"] == 1, names
    actors = {a.get("agentpress.dramatiq.actor.name") for _, s, a in in_trace if s.name.endswith(" default")}
    assert actors == {"run_agent_background"}, actors
    assert names["invoke_agent agentpress"] == 2 and names["execute_tool web_search"] == 2, names
    assert names["chat gpt-5-mini"] == 2, names
    assert any(n.startswith(("RPUSH", "SET")) for n in names), names  # the actor's Redis calls
    # The processor stopped reading the stream early: no usage chunk, so the tokens are estimated.
    assert all(a.get("agentpress.usage.estimated") is True for _, s, a in in_trace if s.name.startswith("chat "))
    for _, s, a in in_trace:
        missing = [k for k in ID_ATTRS if not a.get(k)]
        assert not missing, (s.name, missing)
    assert {a["agentpress.agent_run.id"] for _, _, a in in_trace} == {run.start["agent_run_id"]}
    assert {a["user.id"] for _, _, a in in_trace} == {"user-7f3a"}
    assert {a["agentpress.project.id"] for _, _, a in in_trace} == {"proj-th-5c1e"}
    rids = {a["agentpress.request.id"] for _, _, a in in_trace}
    assert rids == {run.start_headers["x-request-id"]} == {run.start["request_id"]} == {run.done_request_id}
    tools = [a for _, s, a in in_trace if s.name == "execute_tool web_search"]
    assert all(a["gen_ai.tool.name"] == "web_search" and a["gen_ai.tool.call.id"].startswith("call_th-5")
               for a in tools)

    # 3. AgentPress's DEBUG lines are exported (configured by AGENTPRESS_OTEL_LOGGER_LEVELS), with the ids.
    logs = _logs(sink)
    debug = [(res, lr, a) for res, lr, a in logs if lr.severity_text == "DEBUG"]
    bodies = {lr.body.string_value.split(":")[0] for _, lr, _ in debug}
    assert {"Executing tool", "Starting thread execution for thread th-5c1e"} <= bodies or any(
        "Executing tool" in b for b in bodies), bodies
    worker_debug = [a for res, lr, a in debug if res["service.name"] == "agentpress-worker"]
    assert worker_debug and all(all(a.get(k) for k in ID_ATTRS) for a in worker_debug)

    # 4. What the processes print is what they printed without us (stderr and stdout), the JWT aside.
    assert _printed(run.api_err) == _printed(plain.api_err)
    assert _printed(run.worker_err) == _printed(plain.worker_err)
    assert _printed(run.api_out) == _printed(plain.api_out)
    assert _printed(run.worker_out) == _printed(plain.worker_out)
    assert "web search quota at 80 percent" in run.worker_err  # Python's last resort still prints warnings
    assert '"level": "debug"' not in run.worker_out + run.api_out
    # ...except the SSE JWT, which uvicorn's access log and AgentPress's query_params printed in full.
    assert JWT in plain.api_out
    assert JWT not in run.api_out + run.api_err
