"""AgentPress shape end to end: HTTP request (real uvicorn + FastAPI) -> Dramatiq actor.send -> worker
agent run -> LLM calls through real LiteLLM against our loopback server + tool calls.

One trace from the HTTP request to the last LLM call; thread/run/project/request ids on every span
(worker side) and on every log record.
"""

from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import gc
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI  # module level: FastAPI resolves string annotations here

from agentpress_otel._harness._proc import free_port, wait_until
from agentpress_otel._harness.llm_server import LLMServer

pytestmark = pytest.mark.integration


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    with LLMServer(ttft_s=0.02, chunk_delay_s=0.002) as srv:
        yield srv
    # LiteLLM leaves a logging-worker coroutine on each event loop it ran on; once that loop is closed,
    # collecting the coroutine raises "Event loop is closed" into the unraisable hook. Collect it here, at
    # a safe point: on CPython 3.11 a collection that happens inside a later ast.parse (pytest importing a
    # plugin) formats that traceback with a nested ast.parse and aborts with "AST constructor recursion
    # depth mismatch".
    gc.collect()


def test_http_to_worker_agent_run_is_one_trace(llm_server: LLMServer) -> None:
    """An HTTP request that enqueues an agent run to a Dramatiq worker calling LiteLLM is one trace."""
    import dramatiq
    import litellm
    import uvicorn
    from dramatiq import Worker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.middleware import AsyncIO

    from agentpress_otel._context import thread_context
    from agentpress_otel.genai import agent_run, tool_call
    from agentpress_otel.testing import capture

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    app = FastAPI()
    log = logging.getLogger("agentpress.e2e")
    log.setLevel(logging.INFO)
    with capture(app=app, service_name="agentpress-e2e") as cap:
        assert "dramatiq" in cap.telemetry.integrations and "litellm" in cap.telemetry.integrations
        broker = StubBroker(middleware=[AsyncIO()])  # created after instrument(): middleware added by the hook
        broker.emit_after("process_boot")
        dramatiq.set_broker(broker)
        done = threading.Event()

        @dramatiq.actor(broker=broker)
        async def run_agent_background(agent_run_id: str, thread_id: str, project_id: str,
                                       model_name: str, request_id: str | None = None) -> None:
            async with agent_run("agentpress", thread_id=thread_id, agent_run_id=agent_run_id, project_id=project_id):
                log.info("agent run started")
                for i in range(2):  # two iterations: streamed LLM call, then a tool
                    stream = await litellm.acompletion(
                        model=model_name, api_base=llm_server.base_url, api_key="sk-test", stream=True,
                        stream_options={"include_usage": True},
                        messages=[{"role": "user", "content": f"step {i} [[words:4]]"}])
                    async for _ in stream:
                        pass
                    async with tool_call("web_search", call_id=f"call_{i}") as t:
                        t.set_result({"success": True, "output": "found"})
                resp = await litellm.acompletion(model=model_name, api_base=llm_server.base_url, api_key="sk-test",
                                                 messages=[{"role": "user", "content": "final"}])
                assert resp.usage.completion_tokens == 8
                log.info("agent run finished")
            done.set()

        @app.post("/api/thread/{thread_id}/agent/start")
        async def start_agent(thread_id: str) -> dict[str, Any]:
            agent_run_id = str(uuid.uuid4())
            with thread_context(project_id="proj-1", agent_run_id=agent_run_id):
                log.info("enqueueing agent run")
                run_agent_background.send(agent_run_id=agent_run_id, thread_id=thread_id, project_id="proj-1",
                                          model_name="openai/gpt-5-mini")
            return {"agent_run_id": agent_run_id, "status": "running"}

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        worker = Worker(broker, worker_threads=1, worker_timeout=100)
        try:
            wait_until(lambda: server.started, timeout=20, what="uvicorn started")
            r = httpx.post(f"http://127.0.0.1:{port}/api/thread/thread-42/agent/start",
                           headers={"X-Request-ID": "req-e2e-1"}, timeout=10)
            assert r.status_code == 200, r.text
            agent_run_id = r.json()["agent_run_id"]
            worker.start()
            broker.join(run_agent_background.queue_name, fail_fast=True, timeout=30_000)
            worker.join()
            assert done.wait(10)
        finally:
            worker.stop()
            server.should_exit = True
            th.join(timeout=10)
            broker.close()

        spans = cap.spans()
        logs = cap.logs()
        by_name: dict[str, list[Any]] = {}
        for s in spans:
            by_name.setdefault(s.name, []).append(s)
        assert len(by_name["send default"]) == 1
        assert len(by_name["process default"]) == 1
        assert len(by_name["invoke_agent agentpress"]) == 1
        assert len(by_name["chat gpt-5-mini"]) == 3
        assert len(by_name["execute_tool web_search"]) == 2
        trace_ids = {s.context.trace_id for s in spans}
        assert len(trace_ids) == 1, sorted(by_name)

        server_spans = [s for s in spans if s.kind.name == "SERVER"]
        assert server_spans
        worker_side = [s for s in spans if s.start_time >= by_name["process default"][0].start_time]
        # The test's own httpx.post is the root CLIENT span (the "browser"): no ids there by design.
        service_side = [s for s in spans if not (s.parent is None and s.kind.name == "CLIENT")]
        assert len(service_side) == len(spans) - 1
        for s in service_side:
            a = s.attributes or {}
            assert a.get("agentpress.thread.id") == "thread-42", s.name
            assert a.get("agentpress.request.id") == "req-e2e-1", s.name
        for s in worker_side:
            a = s.attributes or {}
            assert a.get("agentpress.agent_run.id") == agent_run_id, s.name
            assert a.get("agentpress.project.id") == "proj-1", s.name
        # Consumer span is a child of the producer span.
        send, proc = by_name["send default"][0], by_name["process default"][0]
        assert proc.parent is not None and proc.parent.span_id == send.context.span_id

        ours = [lr for lr in logs if lr.log_record.body in ("enqueueing agent run", "agent run started",
                                                            "agent run finished")]
        assert len(ours) == 3, [lr.log_record.body for lr in logs]
        for lr in ours:
            a = dict(lr.log_record.attributes or {})
            assert lr.log_record.trace_id in trace_ids
            assert a.get("agentpress.thread.id") == "thread-42"
            assert a.get("agentpress.agent_run.id") == agent_run_id
            assert a.get("agentpress.request.id") == "req-e2e-1"

        served = [r for r in llm_server.requests if r.status == 200]
        assert cap.metric_sum("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == sum(
            r.completion_tokens for r in served)
        assert cap.metric_sum("agentpress.queue.messages.enqueued", actor="run_agent_background") == 1
        assert cap.metric_sum("agentpress.queue.messages.processed", actor="run_agent_background", status="ok") == 1
        assert any(p for p in cap.metrics().get("agentpress.queue.wait.duration", []))


def test_fastapi_background_task_keeps_trace_and_ids(llm_server: LLMServer) -> None:
    """A FastAPI background task's LLM call keeps the request's trace and ids."""
    import litellm
    import uvicorn

    from agentpress_otel.testing import capture

    litellm.suppress_debug_info = True
    app = FastAPI()
    done = threading.Event()

    async def name_project(thread_id: str) -> None:  # AgentPress generates project names like this
        await litellm.acompletion(model="openai/gpt-5-mini", api_base=llm_server.base_url, api_key="sk-test",
                                  messages=[{"role": "user", "content": f"name {thread_id}"}])
        done.set()

    @app.post("/api/thread/{thread_id}/name")
    async def name(thread_id: str, background: BackgroundTasks) -> dict[str, str]:
        background.add_task(name_project, thread_id)
        return {"status": "queued"}

    with capture(app=app, service_name="bg") as cap:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
        th = threading.Thread(target=server.run, daemon=True)
        th.start()
        try:
            wait_until(lambda: server.started, timeout=20, what="uvicorn started")
            r = httpx.post(f"http://127.0.0.1:{port}/api/thread/th-9/name", headers={"X-Request-ID": "req-bg"})
            assert r.status_code == 200
            assert done.wait(15)
        finally:
            server.should_exit = True
            th.join(timeout=10)
        spans = cap.spans()
        chat = [s for s in spans if s.name == "chat gpt-5-mini"]
        assert len(chat) == 1
        server_span = next(s for s in spans if s.kind.name == "SERVER")
        assert chat[0].context.trace_id == server_span.context.trace_id
        a = chat[0].attributes or {}
        assert a.get("agentpress.request.id") == "req-bg" and a.get("agentpress.thread.id") == "th-9"
