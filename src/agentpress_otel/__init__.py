"""agentpress-otel: OpenTelemetry observability for AI-agent backends, in one line.

Example::

    import agentpress_otel
    from fastapi import FastAPI

    app = FastAPI()
    agentpress_otel.instrument(app, service_name="agentpress-api")

    async def run_agent(thread_id: str, agent_run_id: str) -> None:
        with agentpress_otel.agent_run("agentpress", thread_id=thread_id, agent_run_id=agent_run_id):
            ...
"""

from __future__ import annotations

from agentpress_otel._config import Config, ConfigError
from agentpress_otel._context import ContextSpanProcessor, current_ids, extract, inject, thread_context
from agentpress_otel._setup import Telemetry, current, instrument
from agentpress_otel._version import __version__
from agentpress_otel.genai import (
    PRICES_VERSION,
    AgentRun,
    LLMCall,
    Price,
    ToolCall,
    agent_run,
    cost_usd,
    llm_call,
    record_score,
    set_prices,
    tool_call,
)
from agentpress_otel.integrations.fastapi import PROPAGATION_HEADERS
from agentpress_otel.integrations.runtime import watch_loop
from agentpress_otel.integrations.slack import SlackAlertHandler
from agentpress_otel.integrations.structlog import configure_structlog, structlog_processors
from agentpress_otel.redaction import (
    RedactingLogExporter,
    RedactingSpanExporter,
    Redactor,
    configure_redaction,
    redact,
    redact_url,
    redact_value,
)

__all__ = [
    "PRICES_VERSION",
    "PROPAGATION_HEADERS",
    "AgentRun",
    "Config",
    "ConfigError",
    "ContextSpanProcessor",
    "LLMCall",
    "Price",
    "RedactingLogExporter",
    "RedactingSpanExporter",
    "Redactor",
    "SlackAlertHandler",
    "Telemetry",
    "ToolCall",
    "__version__",
    "agent_run",
    "configure_redaction",
    "configure_structlog",
    "cost_usd",
    "current",
    "current_ids",
    "extract",
    "inject",
    "instrument",
    "llm_call",
    "record_score",
    "redact",
    "redact_url",
    "redact_value",
    "set_prices",
    "structlog_processors",
    "thread_context",
    "tool_call",
    "watch_loop",
]
