"""docs/telemetry.md is the contract: a workload touching every integration emits exactly the documented names."""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import gc
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from agentpress_otel._harness._proc import wait_until
from agentpress_otel._harness.asgi_server import UvicornThread
from agentpress_otel._harness.llm_server import LLMServer
from harness import REPO_ROOT

DOCS = Path(REPO_ROOT) / "docs"

# Documented metrics this workload does not produce, and why.
NOT_IN_WORKLOAD = {
    "agentpress.genai.pending_measurements": "reported only while measurements wait for a collection",
    "agentpress.queue.messages.failed": "needs a failing actor (tests/integration/test_runtime_redis.py)",
    "agentpress.queue.messages.retried": "needs a retried actor (tests/integration/test_runtime_redis.py)",
    "agentpress_otel.exporter.dropped": "reported once something was lost (tests/unit/test_foundation_selftel.py)",
    "agentpress_otel.internal.errors": "reported once an error was swallowed (tests/unit/test_foundation_selftel.py)",
}


def documented_metrics() -> set[str]:
    text = (DOCS / "telemetry.md").read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_.]+)` \|", section, flags=re.M))


def documented_names() -> set[str]:
    names: set[str] = set()
    for doc in ("telemetry.md", "genai.md", "logging.md"):
        names |= set(re.findall(r"`([a-z_][a-z0-9_.{}]*)`", (DOCS / doc).read_text()))
    return names


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    with LLMServer(ttft_s=0.01) as srv:
        yield srv
    gc.collect()  # see test_genai_agentpress_e2e: LiteLLM's loop-bound coroutines must not be collected later


def test_workload_emits_exactly_the_documented_names(llm: LLMServer) -> None:
    """A full workload emits exactly the metric and attribute names docs/telemetry.md documents."""
    import dramatiq
    import litellm
    from dramatiq.brokers.stub import StubBroker

    import agentpress_otel as ap
    from agentpress_otel.testing import capture

    litellm.suppress_debug_info = True
    # The downstream service is "someone else's": keep FastAPI's own native telemetry out of our contract.
    down = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})  # type: ignore[call-arg]

    @down.get("/billing")
    async def billing() -> dict[str, bool]:
        return {"ok": True}

    app = FastAPI()
    with capture(app=app, service_name="contract") as cap, UvicornThread(down) as down_srv:
        broker = StubBroker()
        broker.emit_after("process_boot")
        dramatiq.set_broker(broker)
        done = threading.Event()

        @dramatiq.actor(broker=broker, actor_name="contract_actor")
        def contract_actor(agent_run_id: str, thread_id: str) -> None:
            done.set()

        @app.post("/api/thread/{thread_id}/agent/start")
        async def start(thread_id: str) -> dict[str, str]:
            async with ap.agent_run("agentpress", thread_id=thread_id, agent_run_id="run-1", project_id="p-1"):
                stream = await litellm.acompletion(
                    model="openai/gpt-5-mini", api_base=llm.base_url, api_key="sk-test", stream=True,
                    stream_options={"include_usage": True}, messages=[{"role": "user", "content": "hi [[words:5]]"}],
                )
                async for _ in stream:
                    pass
                resp = await litellm.acompletion(
                    model="openai/my-private-finetune", api_base=llm.base_url, api_key="sk-test",
                    messages=[{"role": "user", "content": "unpriced"}],
                )
                async with ap.tool_call("web_search", call_id="call_1") as tool:
                    async with httpx.AsyncClient() as client:
                        await client.get(f"{down_srv.url}/billing")
                    tool.set_result({"success": True})
                ap.record_score("user_feedback", 1.0, label="thumbs_up", response_id=resp.id)
                contract_actor.send(agent_run_id="run-1", thread_id=thread_id)
            return {"ok": "yes"}

        worker = dramatiq.Worker(broker, worker_timeout=100)
        worker.start()
        try:
            with UvicornThread(app) as api:
                assert httpx.post(f"{api.url}/api/thread/th-1/agent/start", timeout=30).status_code == 200
                wait_until(done.is_set, timeout=10, what="actor ran")
                broker.join(contract_actor.queue_name)
                worker.join()
        finally:
            worker.stop()
        wait_until(lambda: "agentpress.asyncio.loop_lag" in cap.metrics(), timeout=5, what="loop lag probe")
        emitted_metrics = set(cap.metrics())
        spans = cap.spans()

    documented = documented_metrics()
    assert emitted_metrics - documented == set(), "emitted but not in docs/telemetry.md"
    assert documented - emitted_metrics - set(NOT_IN_WORKLOAD) == set(), "documented but not emitted"
    # Our own attributes (agentpress.*, gen_ai.*) are all documented somewhere.
    ours = {k for s in spans for k in (s.attributes or {}) if k.startswith(("agentpress.", "gen_ai."))}
    assert ours - documented_names() == set(), "span attributes missing from the docs"
    # Ids never become metric labels.
    for points in cap.metrics().values():
        for p in points:
            labels = set(dict(p.attributes or {}))
            assert not labels & {"agentpress.thread.id", "agentpress.agent_run.id", "user.id", "agentpress.request.id",
                                 "agentpress.project.id", "thread_id", "agent_run_id"}
