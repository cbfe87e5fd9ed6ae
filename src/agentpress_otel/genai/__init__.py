"""GenAI telemetry: agent runs, tool calls, LLM calls, cost and scores (semconv names of util-genai 1.3b0).

Example::

    from agentpress_otel.genai import agent_run, llm_call, tool_call

    async with agent_run("suna", thread_id="t-1", agent_run_id="r-1"):
        async with llm_call(model="openai/gpt-5-mini", provider="openai") as call:
            ...
"""

from agentpress_otel.genai._agent import AgentRun, agent_run
from agentpress_otel.genai._llm import LLMCall, current_llm_call, llm_call
from agentpress_otel.genai._op import Activation, error_type, register_error_mapper, register_model_normalizer
from agentpress_otel.genai._state import GenAISettings, configure, unconfigure
from agentpress_otel.genai._tool import ToolCall, tool_call
from agentpress_otel.genai.prices import PRICES_VERSION, Price, cost_usd, set_prices
from agentpress_otel.genai.scores import record_score

__all__ = [
    "PRICES_VERSION",
    "Activation",
    "AgentRun",
    "GenAISettings",
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
    "register_model_normalizer",
    "set_prices",
    "tool_call",
    "unconfigure",
]
