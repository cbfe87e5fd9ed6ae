"""An AgentPress-shaped backend (classic layout, Era A) written to a folder, with or without our two lines.

Shapes follow AgentPress's code as described in shared/reference/agentpress-target.md (written here from that
description, not copied): an ``agentpress`` package with ``ThreadManager.run_thread`` (an ``async def`` that
returns the response generator) and ``ResponseProcessor._execute_tool(tool_call)``, a tool registry,
``services/llm.py`` calling LiteLLM streamed (the response processor stops reading early, as AgentPress does
after an XML tool call), ``utils/logger.py`` configuring structlog to JSON on stdout with a filtering level,
``run_agent_background.py`` with a Dramatiq actor on a RedisBroker with the AsyncIO middleware, and ``api.py``
that imports the actor module *before* it creates the app, binds ``request_id`` in an HTTP middleware and
``user_id`` in its JWT dependency.
"""

from __future__ import annotations

from pathlib import Path

OTEL_API_LINE = 'import agentpress_otel; agentpress_otel.instrument(app, service_name="agentpress-api")'
OTEL_WORKER_LINE = 'import agentpress_otel; agentpress_otel.instrument(service_name="agentpress-worker")'

LOGGER = '''
import logging, os
import structlog

LOGGING_LEVEL = getattr(logging, os.getenv("LOGGING_LEVEL", "INFO"))
structlog.configure(
    processors=[
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.dict_tracebacks,
        structlog.processors.CallsiteParameterAdder({structlog.processors.CallsiteParameter.FILENAME,
                                                     structlog.processors.CallsiteParameter.FUNC_NAME}),
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.contextvars.merge_contextvars,
        structlog.processors.JSONRenderer(),
    ],
    cache_logger_on_first_use=True,
    wrapper_class=structlog.make_filtering_bound_logger(LOGGING_LEVEL),
)
logger = structlog.get_logger()
'''

LLM = '''
import os
import litellm
from utils.logger import logger

litellm.suppress_debug_info = True
litellm.drop_params = True


async def make_llm_api_call(messages, model_name, stream=True, temperature=0):
    logger.debug(f"Making LLM API call to model: {model_name} with {len(messages)} messages")
    return await litellm.acompletion(model=model_name, messages=messages, stream=stream, temperature=temperature,
                                     api_base=os.environ["LLM_BASE_URL"], api_key="sk-local-stand-in")
'''

TOOL = '''
from dataclasses import dataclass


@dataclass
class ToolResult:
    success: bool
    output: str
'''

REGISTRY = '''
class ToolRegistry:
    def __init__(self):
        self.tools = {}

    def register_tool(self, tool_class):
        tool = tool_class()
        for name in tool.function_names:
            self.tools[name] = getattr(tool, name)

    def get_tool(self, name):
        return self.tools[name]
'''

PROCESSOR = '''
from agentpress.tool import ToolResult
from utils.logger import logger


class ResponseProcessor:
    def __init__(self, tool_registry):
        self.tool_registry = tool_registry

    async def process_streaming_response(self, llm_response, thread_id):
        content = ""
        async for chunk in llm_response:
            delta = chunk.choices[0].delta.content or ""
            content += delta
            yield {"type": "content", "content": delta}
            if "answered" in content:
                break  # AgentPress stops reading once the tool call is complete; the usage chunk never comes
        for i, tool_call in enumerate(self._parse_tool_calls(content)):
            tool_call["id"] = f"call_{thread_id[:4]}_{i}"
            result = await self._execute_tool(tool_call)
            yield {"type": "tool", "name": tool_call["function_name"], "success": result.success}
        yield {"type": "finish"}

    def _parse_tool_calls(self, content):
        return [{"function_name": "web_search", "xml_tag_name": "web-search", "arguments": {"query": content}}]

    async def _execute_tool(self, tool_call):
        logger.debug(f"Executing tool: {tool_call['function_name']}")
        fn = self.tool_registry.get_tool(tool_call["function_name"])
        return await fn(**tool_call["arguments"])
'''

THREAD_MANAGER = '''
from agentpress.response_processor import ResponseProcessor
from agentpress.tool_registry import ToolRegistry
from services.llm import make_llm_api_call
from utils.logger import logger


class ThreadManager:
    def __init__(self):
        self.tool_registry = ToolRegistry()
        self.response_processor = ResponseProcessor(self.tool_registry)

    def add_tool(self, tool_class):
        self.tool_registry.register_tool(tool_class)

    async def run_thread(self, thread_id, system_prompt, stream=True, llm_model="openai/gpt-5-mini",
                         native_max_auto_continues=0):
        logger.debug(f"Starting thread execution for thread {thread_id}")
        messages = [system_prompt, {"role": "user", "content": "find it [[words:12]]"}]
        llm_response = await make_llm_api_call(messages, llm_model, stream=stream)
        return self.response_processor.process_streaming_response(llm_response, thread_id)
'''

TOOLS = '''
import logging
from agentpress.tool import ToolResult


class WebSearchTool:
    function_names = ["web_search"]

    async def web_search(self, query):
        # A stdlib warning from a logger without handlers: Python's last resort prints it to stderr.
        logging.getLogger("agent.tools.web_search").warning("web search quota at 80 percent")
        return ToolResult(success=True, output=f"3 results for {len(query)} chars")
'''

WORKER = '''
import json, os
{otel}
import dramatiq
import redis.asyncio as aioredis
import structlog
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AsyncIO

from agent_tools import WebSearchTool
from agentpress.thread_manager import ThreadManager
from utils.logger import logger

redis_broker = RedisBroker(url=os.environ["REDIS_URL"], middleware=[AsyncIO()])
dramatiq.set_broker(redis_broker)


@dramatiq.actor
async def run_agent_background(agent_run_id, thread_id, instance_id, project_id, model_name="openai/gpt-5-mini",
                               request_id=None):
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(agent_run_id=agent_run_id, thread_id=thread_id, request_id=request_id)
    logger.info(f"Starting background agent run: {{agent_run_id}} for thread: {{thread_id}}")
    client = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    thread_manager = ThreadManager()
    thread_manager.add_tool(WebSearchTool)
    for _ in range(2):
        response_gen = await thread_manager.run_thread(thread_id=thread_id,
                                                       system_prompt={{"role": "system", "content": "be brief"}},
                                                       llm_model=model_name)
        async for response in response_gen:
            await client.rpush(f"agent_run:{{agent_run_id}}:responses", json.dumps(response))
    logger.info(f"Agent run completed: {{agent_run_id}}")
    await client.set(f"done:{{agent_run_id}}", request_id or "")
    await client.aclose()
'''

API = '''
import base64, json, uuid
import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from run_agent_background import run_agent_background  # AgentPress imports the actor before creating the app
from utils.logger import logger

app = FastAPI()
{otel}


@app.middleware("http")
async def log_requests_middleware(request: Request, call_next):
    structlog.contextvars.clear_contextvars()
    request_id = str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(request_id=request_id, client_ip=request.client.host,
                                           method=request.method, path=request.url.path,
                                           query_params=str(request.query_params))
    logger.info(f"Request started: {{request.method}} {{request.url.path}}")
    response = await call_next(request)
    logger.debug(f"Request completed: {{request.method}} {{request.url.path}} | Status: {{response.status_code}}")
    return response


async def get_current_user_id_from_jwt(request: Request) -> str:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    payload = token.split(".")[1]
    user_id = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
    structlog.contextvars.bind_contextvars(user_id=user_id, auth_method="jwt")
    return user_id


@app.post("/api/thread/{{thread_id}}/agent/start")
async def start_agent(thread_id: str, user_id: str = Depends(get_current_user_id_from_jwt)):
    project_id = f"proj-{{thread_id}}"
    structlog.contextvars.bind_contextvars(thread_id=thread_id, project_id=project_id, account_id=user_id)
    agent_run_id = str(uuid.uuid4())
    structlog.contextvars.bind_contextvars(agent_run_id=agent_run_id)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    run_agent_background.send(agent_run_id=agent_run_id, thread_id=thread_id, instance_id="single",
                              project_id=project_id, model_name="openai/gpt-5-mini", request_id=request_id)
    logger.info(f"Started agent run {{agent_run_id}}")
    return {{"agent_run_id": agent_run_id, "status": "running", "request_id": request_id}}


@app.get("/api/agent-run/{{agent_run_id}}/stream")
async def stream_agent_run(agent_run_id: str, token: str):
    structlog.contextvars.bind_contextvars(agent_run_id=agent_run_id)

    async def events():
        yield f"data: {{json.dumps({{'type': 'status', 'status': 'completed'}})}}\\n\\n"

    return StreamingResponse(events(), media_type="text/event-stream")
'''


def write_backend(root: Path, *, with_otel: bool) -> Path:
    """Write the backend under ``root`` and return it (the folder to run uvicorn and dramatiq in)."""
    files = {
        "utils/__init__.py": "",
        "utils/logger.py": LOGGER,
        "services/__init__.py": "",
        "services/llm.py": LLM,
        "agentpress/__init__.py": "",
        "agentpress/tool.py": TOOL,
        "agentpress/tool_registry.py": REGISTRY,
        "agentpress/response_processor.py": PROCESSOR,
        "agentpress/thread_manager.py": THREAD_MANAGER,
        "agent_tools.py": TOOLS,
        "run_agent_background.py": WORKER.format(otel=OTEL_WORKER_LINE if with_otel else ""),
        "api.py": API.format(otel=OTEL_API_LINE if with_otel else ""),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"))
    return root
