"""Every public entry point survives hostile input under ``testing.capture()``, i.e. in strict mode.

Strict mode re-raises any exception that starts in agentpress-otel's own code; an entry point that relied on the
error guard to absorb odd input would raise here although production swallows it. Bad input must be handled
explicitly (a safe fallback), so users' tests behave as their production does.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import agentpress_otel as ap
from agentpress_otel.testing import capture


class _Hostile:
    """An object whose every conversion raises, standing for a user's broken model or id type."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __getattr__(self, name: str) -> Any:
        raise KeyError(name)


ODD: list[Any] = [None, 5, -1.5, float("nan"), "", "x" * 50_000, b"\xff\xfe", ["x"], {"choices": 5}, {"usage": "many"},
                  {"choices": [None, 5, {"message": 7, "finish_reason": 3}]}, _Hostile(), object()]


@pytest.mark.parametrize("value", ODD, ids=lambda v: type(v).__name__)
def test_genai_entry_points_take_odd_values(value: Any) -> None:
    """LLM, tool and agent spans, responses, usage, scores and context helpers accept any value without raising."""
    with capture(capture_content=True) as cap:
        with ap.llm_call(model="m", provider="openai", messages=value, temperature=value) as call:
            call.record_response(value)
            call.record_usage(value)
        with ap.tool_call("t", call_id="c", arguments=value) as t:
            t.set_result(value)
        with ap.agent_run("a", thread_id="t-1"):
            pass
        ap.record_score("quality", 0.5, label="good", response_id=None)
        if isinstance(value, str):
            ap.redact(value)
        else:
            ap.redact_value(value)
        with ap.extract(value) as ids:
            assert isinstance(ids, dict)
        ap.inject({})
        logging.getLogger("hostile").error("hostile extra", extra={"odd": value})
    assert cap.spans("execute_tool t") and cap.spans("invoke_agent a")
