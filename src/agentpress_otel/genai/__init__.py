"""GenAI telemetry: agent runs, tool calls, LLM calls, cost and scores (semconv names of util-genai 1.3b0).

Example::

    from agentpress_otel.genai import agent_run, llm_call, tool_call

    async with agent_run("suna", thread_id="t-1", agent_run_id="r-1"):
        async with llm_call(model="openai/gpt-5-mini", provider="openai") as call:
            ...
"""

from agentpress_otel.genai._spans import (
    AgentRun,
    LLMCall,
    ToolCall,
    agent_run,
    current_llm_call,
    error_type,
    llm_call,
    register_error_mapper,
    tool_call,
)
from agentpress_otel.genai._state import configure, unconfigure
from agentpress_otel.genai.prices import PRICES_VERSION, Price, cost_usd, set_prices
from agentpress_otel.genai.scores import record_score

__all__ = [
    "PRICES_VERSION",
    "AgentRun",
    "LLMCall",
    "Price",
    "ToolCall",
    "agent_run",
    "configure",
    "cost_usd",
    "current_llm_call",
    "error_type",
    "llm_call",
    "record_score",
    "register_error_mapper",
    "set_prices",
    "tool_call",
    "unconfigure",
]
