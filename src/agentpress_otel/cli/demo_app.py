"""An AgentPress-shaped backend for the demo: FastAPI API, a background agent worker, tools, LiteLLM.

It mirrors the call shapes of AgentPress (Era A, see docs/agentpress.md): ``POST
/api/thread/{thread_id}/agent/start`` enqueues ``run_agent_background``; the worker runs the agent
loop (``ThreadManager.run_thread`` -> ``make_llm_api_call`` -> LiteLLM streaming -> tool execution);
logs go through structlog as JSON, with the same contextvars AgentPress binds. The only
observability code is the one line in :func:`create_app`: ``agentpress_otel.instrument(app, ...)``;
the spans around the agent run and the tools are what an AgentPress patch (or our integrations)
would add, written here with the public ``agentpress_otel.genai`` helpers.

The LLM is the local OpenAI-compatible server (``agentpress_otel._harness.llm_server``); its behaviour
per call (tool call, 429, 500, slow answer) is chosen by magic tokens in a per-iteration system
message, so every run is deterministic.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

# LiteLLM fetches its price map from GitHub at import unless told otherwise; the demo never uses the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import structlog
from fastapi import FastAPI, Request
from pydantic import BaseModel

from agentpress_otel import current_ids, extract, inject
from agentpress_otel.genai import agent_run, record_score, tool_call
from agentpress_otel.testing import agentpress_structlog_processors

__all__ = ["AgentStartRequest", "DemoBackend", "Scenario", "ToolResult", "create_app"]


# ----------------------------------------------------------------------------------------- logging

def configure_logging(sink: io.StringIO) -> None:
    """AgentPress's ``utils/logger.py``: structlog JSON lines (here to ``sink``, not the terminal)."""
    structlog.configure(
        processors=agentpress_structlog_processors(),
        logger_factory=structlog.PrintLoggerFactory(file=sink),
        wrapper_class=structlog.make_filtering_bound_logger(20),
        cache_logger_on_first_use=False,
    )


logger = structlog.get_logger()


# ------------------------------------------------------------------------------------------- model

class AgentStartRequest(BaseModel):
    """AgentPress's ``AgentStartRequest`` plus the demo's prompt and scenario name."""

    model_name: str | None = None
    enable_thinking: bool | None = False
    reasoning_effort: str | None = "low"
    stream: bool | None = True
    enable_context_manager: bool | None = False
    agent_id: str | None = None
    prompt: str = ""
    scenario: str = "ok"
    project_id: str | None = None


class FeedbackRequest(BaseModel):
    agent_run_id: str
    score: float
    label: str | None = None


@dataclass
class ToolResult:
    """AgentPress ``ToolResult``: ``success`` plus ``output``."""

    success: bool
    output: str


@dataclass
class Scenario:
    """What the LLM server should do on each iteration (magic tokens; see ``llm_server``)."""

    name: str
    steps: list[str]
    score: tuple[float, str] | None = None
    slow_s: float | None = None  # the deliberately slow LLM call's delay, when there is one


def scenarios(seed: int) -> dict[str, Scenario]:
    """The demo's workload cases; ``seed`` varies answer lengths and the slow call's delay."""
    import random

    rnd = random.Random(seed)
    words = [rnd.randint(12, 40) for _ in range(3)]
    slow = round(rnd.uniform(0.6, 1.0), 2)
    return {
        # 429 retried, a working tool, a failing tool, a slow final answer, a thumbs-up.
        "full": Scenario("full", ["[[flaky:429:1]] [[tool:web_search]]", "[[tool:sb_shell]]",
                                  f"[[slow:{slow}]] [[words:{words[0]}]]"], (1.0, "thumbs_up"), slow),
        # The happy path: one tool, one answer, a thumbs-down.
        "ok": Scenario("ok", ["[[tool:web_search]]", f"[[words:{words[1]}]]"], (0.0, "thumbs_down")),
        # The provider keeps failing: retries exhausted, the run fails, Slack is told.
        "fail": Scenario("fail", [f"[[words:{words[2]}]] [[tool:web_search]]", "[[error:500]]"]),
        # Every case in one run (for --threads 1 or 2): "full", then the provider fails for good, the run
        # fails and Slack is told; the user still scores the (failed) answer.
        "all": Scenario("all", ["[[flaky:429:1]] [[tool:web_search]]", "[[tool:sb_shell]]",
                                f"[[slow:{slow}]] [[tool:web_search]]", "[[error:500]]"], (0.0, "thumbs_down"),
                        slow),
    }


@dataclass
class RunState:
    agent_run_id: str
    thread_id: str
    project_id: str
    status: str = "queued"
    error: str | None = None
    response_ids: list[str] = field(default_factory=list)
    trace_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None


class LLMRetryError(Exception):
    """AgentPress Era A: raised by ``make_llm_api_call`` after its retries are exhausted."""


# ------------------------------------------------------------------------------------------- tools

async def web_search(query: str = "", **_: Any) -> ToolResult:
    await asyncio.sleep(0.05)
    return ToolResult(True, json.dumps([{"title": "Deploy checklist", "url": "https://example.com/deploy"}]))


async def sb_shell(command: str = "", **_: Any) -> ToolResult:
    await asyncio.sleep(0.02)
    # A tool that fails the AgentPress way: no exception, a ToolResult with success=False.
    return ToolResult(False, "command exited with status 127: kubectl: command not found")


TOOLS: dict[str, Callable[..., Any]] = {"web_search": web_search, "sb_shell": sb_shell}


# ----------------------------------------------------------------------------------------- backend

class DemoBackend:
    """The API process and its worker (asyncio task, or Dramatiq when available), sharing run state."""

    def __init__(self, *, llm_base_url: str, seed: int = 7, model: str = "openai/gpt-5-mini",
                 worker: str = "auto") -> None:
        self.llm_base_url = llm_base_url
        self.model = model
        self.scenarios = scenarios(seed)
        self.runs: dict[str, RunState] = {}
        self.queue: asyncio.Queue[tuple[dict[str, Any], dict[str, str]]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.worker_wanted = worker
        self.worker_kind = "asyncio"
        self._actor: Any = None
        self._dramatiq_worker: Any = None
        self._broker: Any = None

    # ---- services/llm.py: make_llm_api_call with the Era-A retry loop
    async def make_llm_api_call(self, messages: list[dict[str, Any]], model_name: str) -> Any:
        import litellm

        lit: Any = litellm  # its exception classes are not in its typed exports
        last: Exception | None = None
        for attempt in range(3):
            try:
                return await litellm.acompletion(
                    model=model_name, messages=messages, stream=True,
                    stream_options={"include_usage": True}, api_base=self.llm_base_url, api_key="sk-local-demo",
                    max_retries=0, tools=[{"type": "function", "function": {"name": n, "parameters": {}}}
                                          for n in TOOLS],
                )
            except lit.RateLimitError as exc:
                last = exc
                logger.warning("rate limited by provider, retrying", attempt=attempt + 1, model=model_name)
                await asyncio.sleep(0.2)
            except (lit.InternalServerError, lit.APIError, lit.ServiceUnavailableError) as exc:
                last = exc
                logger.warning("provider error, retrying", attempt=attempt + 1, model=model_name,
                               error=type(exc).__name__)
                await asyncio.sleep(0.05)
        raise LLMRetryError(f"LLM call to {model_name} failed after 3 attempts: {type(last).__name__}")

    # ---- agentpress/thread_manager.py + response_processor.py: one iteration
    async def run_thread(self, run: RunState, history: list[dict[str, Any]], step: str, model: str) -> bool:
        """One LLM call plus its tool calls; returns True when the assistant asked for a tool."""
        # The thread id keeps the server's per-prompt behaviour (e.g. "fail once with 429") per thread.
        messages = [*history, {"role": "system", "content": f"iteration instructions for {run.thread_id} {step}"}]
        stream = await self.make_llm_api_call(messages, model)
        content: list[str] = []
        calls: list[dict[str, Any]] = []
        async for chunk in stream:
            rid = getattr(chunk, "id", None)
            if rid and str(rid) not in run.response_ids:
                run.response_ids.append(str(rid))
            for choice in getattr(chunk, "choices", None) or []:
                delta = choice.delta
                if getattr(delta, "content", None):
                    content.append(delta.content)
                for tc in getattr(delta, "tool_calls", None) or []:
                    if tc.function and tc.function.name:
                        calls.append({"id": tc.id, "name": tc.function.name,
                                      "arguments": tc.function.arguments or "{}"})
        history.append({"role": "assistant", "content": "".join(content) or None})
        if not calls:
            logger.info("assistant response complete", chars=len("".join(content)))
            return False
        results = await asyncio.gather(*(self.execute_tool(c) for c in calls))
        for c, res in zip(calls, results, strict=True):
            history.append({"role": "user", "content": f"tool {c['name']} result: {res.output}"})
        return True

    async def execute_tool(self, call: dict[str, Any]) -> ToolResult:
        """``ResponseProcessor._execute_tool``."""
        try:
            args = json.loads(call["arguments"] or "{}")
        except ValueError:
            args = {}
        with tool_call(call["name"], call_id=call["id"], arguments=args) as t:
            result: ToolResult = await TOOLS[call["name"]](**args)
            t.set_result(result)
        if not result.success:
            logger.warning("tool failed", tool=call["name"], output=result.output)
        return result

    # ---- run_agent_background.py: the Dramatiq actor's body
    async def run_agent_background(self, *, agent_run_id: str, thread_id: str, project_id: str,
                                   model_name: str, request_id: str, prompt: str, scenario: str) -> None:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(agent_run_id=agent_run_id, thread_id=thread_id,
                                               request_id=request_id)
        run = self.runs[agent_run_id]
        run.status = "running"
        sc = self.scenarios.get(scenario, self.scenarios["ok"])
        history: list[dict[str, Any]] = [
            {"role": "system", "content": "You are Suna, an autonomous agent. Use tools when useful."},
            {"role": "user", "content": prompt},
        ]
        logger.info("starting agent run", model=model_name, prompt=prompt)
        try:
            async with agent_run("suna", thread_id=thread_id, agent_run_id=agent_run_id, project_id=project_id,
                                 model=model_name) as ar:
                ctx = ar.span.get_span_context()
                run.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
                try:
                    for step in sc.steps:
                        if not await self.run_thread(run, history, step, model_name):
                            break
                except Exception as exc:
                    # AgentPress logs the failure with the traceback and marks the run failed: the Slack
                    # trigger. Logged inside the run's span so the alert and log carry its trace and ids.
                    logger.error("agent run failed", error=str(exc), exc_info=True)
                    raise
            run.status = "completed"
            logger.info("agent run completed", iterations=len(sc.steps))
        except Exception as exc:  # noqa: BLE001 - the app marks any failed run "failed", as AgentPress does
            run.status = "failed"
            run.error = str(exc)
        finally:
            run.finished = time.monotonic()

    # ---- worker plumbing
    async def _worker(self) -> None:
        assert self.queue is not None
        while True:
            kwargs, carrier = await self.queue.get()

            async def one(kw: dict[str, Any] = kwargs, car: dict[str, str] = carrier) -> None:
                # A queue hop: the trace context and ids travel in the message, as with Dramatiq.
                with extract(car):
                    await self.run_agent_background(**kw)

            task = asyncio.get_running_loop().create_task(one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def enqueue(self, kwargs: dict[str, Any]) -> None:
        """``run_agent_background.send(...)``: to Dramatiq when it runs, else to the asyncio queue."""
        if self._actor is not None:
            self._actor.send(**kwargs)
            return
        assert self.queue is not None
        self.queue.put_nowait((kwargs, inject({})))

    def _start_dramatiq(self) -> bool:
        """A Dramatiq worker on a StubBroker with the AsyncIO middleware (AgentPress uses Redis/RabbitMQ).

        Started after ``instrument()`` so our Dramatiq middleware joins the broker; without the Dramatiq
        integration the asyncio worker (with explicit context propagation) is used instead.
        """
        if self.worker_wanted == "asyncio":
            return False
        try:
            import dramatiq
            from dramatiq.brokers.stub import StubBroker
            from dramatiq.middleware import AsyncIO

            from agentpress_otel.integrations import dramatiq as _integration  # noqa: F401
        except ImportError:
            if self.worker_wanted == "dramatiq":
                raise
            return False
        broker = StubBroker()
        broker.add_middleware(AsyncIO())
        dramatiq.set_broker(broker)
        backend = self

        async def run_agent_background(**kwargs: Any) -> None:
            await backend.run_agent_background(**kwargs)

        self._actor = dramatiq.actor(actor_name="run_agent_background", broker=broker, max_retries=0)(
            run_agent_background)
        worker = dramatiq.Worker(broker, worker_threads=4, worker_timeout=100)
        worker.start()
        self._broker, self._dramatiq_worker = broker, worker
        self.worker_kind = "dramatiq (StubBroker + AsyncIO)"
        return True

    def _stop_dramatiq(self) -> None:
        if self._dramatiq_worker is not None:
            self._dramatiq_worker.stop(timeout=5000)
            self._dramatiq_worker = None
        if self._broker is not None:
            self._broker.close()
            self._broker = None
        self._actor = None

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self.queue = asyncio.Queue()
        worker = None
        if not await asyncio.to_thread(self._start_dramatiq):
            worker = asyncio.get_running_loop().create_task(self._worker())
        try:
            yield
        finally:
            if worker is not None:
                worker.cancel()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.to_thread(self._stop_dramatiq)


def create_app(backend: DemoBackend, **telemetry_options: Any) -> FastAPI:
    """``api.py``: the FastAPI app with AgentPress's routes and middleware, instrumented in one line."""
    import agentpress_otel

    app = FastAPI(lifespan=backend.lifespan)

    @app.middleware("http")
    async def log_requests_middleware(request: Request, call_next: Any) -> Any:
        structlog.contextvars.clear_contextvars()
        # Reuse the request id agentpress-otel assigned (and echoes as X-Request-ID), so logs, spans and
        # the response header agree; AgentPress's own line was ``request_id = str(uuid.uuid4())``.
        request_id = current_ids().get("request_id") or str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(request_id=request_id, method=request.method,
                                               path=request.url.path, client_ip=request.client.host
                                               if request.client else None)
        request.state.request_id = request_id
        logger.info("request started")
        return await call_next(request)

    @app.post("/api/thread/{thread_id}/agent/start")
    async def start_agent(thread_id: str, body: AgentStartRequest, request: Request) -> dict[str, str]:
        agent_run_id = str(uuid.uuid4())
        project_id = body.project_id or str(uuid.uuid5(uuid.NAMESPACE_URL, thread_id))
        model = body.model_name or backend.model
        structlog.contextvars.bind_contextvars(thread_id=thread_id, project_id=project_id,
                                               agent_run_id=agent_run_id)
        backend.runs[agent_run_id] = RunState(agent_run_id, thread_id, project_id)
        logger.info("agent run enqueued", model=model)
        backend.enqueue(dict(agent_run_id=agent_run_id, thread_id=thread_id, project_id=project_id,
                             model_name=model, request_id=request.state.request_id, prompt=body.prompt,
                             scenario=body.scenario))
        return {"agent_run_id": agent_run_id, "status": "running"}

    @app.get("/api/agent-run/{agent_run_id}")
    async def get_agent_run(agent_run_id: str) -> dict[str, Any]:
        run = backend.runs.get(agent_run_id)
        if run is None:
            return {"status": "not_found"}
        return {"agent_run_id": run.agent_run_id, "thread_id": run.thread_id, "status": run.status,
                "error": run.error, "response_ids": run.response_ids, "trace_id": run.trace_id}

    @app.post("/api/thread/{thread_id}/feedback")
    async def feedback(thread_id: str, body: FeedbackRequest) -> dict[str, Any]:
        run = backend.runs.get(body.agent_run_id)
        rid = run.response_ids[-1] if run and run.response_ids else None
        found = record_score("user_feedback", body.score, label=body.label, response_id=rid)
        logger.info("user feedback recorded", score=body.score, label=body.label)
        return {"recorded": True, "linked_to_llm_call": found}

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "instance_id": "single"}

    # The one line this project is about.
    agentpress_otel.instrument(app, **telemetry_options)
    return app
