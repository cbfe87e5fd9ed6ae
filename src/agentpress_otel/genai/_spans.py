"""The span API's old single-module import path, kept so integrations and tests that import it keep working.

The code lives in one module per job: ``_op`` (base and decorator machinery), ``_agent``, ``_tool``, ``_llm``,
``_request`` (request-attribute mapping) and ``_usage`` (usage, finish reasons, response-id map). New code
imports public names from :mod:`agentpress_otel.genai` and field access from :mod:`agentpress_otel._text`.
"""

from __future__ import annotations

from agentpress_otel._text import field as _field
from agentpress_otel.genai._agent import AGENT_ACTIVE_KEY, AgentRun, agent_run
from agentpress_otel.genai._llm import LLM_ACTIVE_KEY, UTIL_GENAI_INFERENCE_KEY, LLMCall, current_llm_call, llm_call
from agentpress_otel.genai._op import (
    Activation,
    Op,
    error_type,
    normalize_model,
    register_error_mapper,
    register_model_normalizer,
    wrap_async_generator,
    wrap_generator,
)
from agentpress_otel.genai._tool import ToolCall, tool_call
from agentpress_otel.genai._usage import _LRU, RESPONSES, SPANS

_Op = Op

__all__ = [
    "AGENT_ACTIVE_KEY",
    "LLM_ACTIVE_KEY",
    "RESPONSES",
    "SPANS",
    "UTIL_GENAI_INFERENCE_KEY",
    "_LRU",
    "Activation",
    "AgentRun",
    "LLMCall",
    "Op",
    "ToolCall",
    "_Op",
    "_field",
    "agent_run",
    "current_llm_call",
    "error_type",
    "llm_call",
    "normalize_model",
    "register_error_mapper",
    "register_model_normalizer",
    "tool_call",
    "wrap_async_generator",
    "wrap_generator",
]
