"""``execute_tool {name}`` spans: one tool call, its (opt-in) arguments and result, and its duration metric."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentpress_otel import _selftel, _text
from agentpress_otel.genai import _content, _state
from agentpress_otel.genai._agent import active_agent
from agentpress_otel.genai._op import Op

_G_TOOL = _selftel.guard("genai.tool")


class ToolCall(Op):
    """``execute_tool {name}`` (INTERNAL). See :func:`tool_call`.

    Example::

        with tool_call("web_search", call_id="call_1", arguments={"q": "otel"}) as tool:
            tool.set_result({"success": False, "output": "rate limited"})  # marks the span as an error
    """

    def __init__(self, name: str, *, call_id: str | None = None, arguments: Any = None,
                 tool_type: str | None = "function", capture_content: bool | None = None) -> None:
        super().__init__()
        self.name = name
        self.call_id = call_id
        self.arguments = arguments
        self.tool_type = tool_type
        self._set_capture(capture_content)
        self.agent_name: str | None = None

    def _clone(self) -> ToolCall:
        return ToolCall(self.name, call_id=self.call_id, arguments=self.arguments, tool_type=self.tool_type,
                        capture_content=self._capture_arg)

    def _span_name(self) -> str:
        return f"execute_tool {self.name}"

    def _start_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": self.name}
        if self.tool_type:
            attrs["gen_ai.tool.type"] = self.tool_type
        agent = active_agent()
        if agent is not None:  # conditionally required when the tool runs inside an agent
            self.agent_name = agent.name
            attrs["gen_ai.agent.name"] = agent.name
        if self.call_id:
            attrs["gen_ai.tool.call.id"] = str(self.call_id)
        if self.capture and self.arguments is not None:
            attrs["gen_ai.tool.call.arguments"] = _content.prepare(self.arguments)
        return attrs

    def set_result(self, value: Any) -> None:
        """Record the tool's result; a failure result (``success=False``) marks the span as error.

        Example::

            with tool_call("web_search", call_id="call_1") as t:
                t.set_result(ToolResult(success=True, output="..."))
        """
        with _G_TOOL:
            ok = _result_ok(value)
            if ok is False:
                self.fail("tool_failure", description=_result_output(value)[:256])
            elif self.capture:
                self._attrs["gen_ai.tool.call.result"] = _content.prepare(_result_output(value))

    def _on_return(self, value: Any) -> None:
        if value is not None:
            self.set_result(value)

    def _on_end(self, duration: float, exc: BaseException | None) -> None:
        attrs: dict[str, Any] = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": self.name}
        if self.tool_type:
            attrs["gen_ai.tool.type"] = self.tool_type
        if self.agent_name:
            attrs["gen_ai.agent.name"] = self.agent_name
        if self._error:
            attrs["error.type"] = self._error
        ins = _state.STATE.instruments
        ins.record(ins.tool_duration, duration, attrs, self.span.get_span_context())


def _result_ok(value: Any) -> bool | None:
    s = value.get("success") if isinstance(value, Mapping) else getattr(value, "success", None)
    return s if isinstance(s, bool) else None


def _result_output(value: Any) -> str:
    out = value.get("output", value) if isinstance(value, Mapping) else getattr(value, "output", value)
    return _text.to_text(out, structured=True)


def tool_call(name: str, *, call_id: str | None = None, arguments: Any = None, tool_type: str | None = "function",
              capture_content: bool | None = None) -> ToolCall:
    """Span ``execute_tool {name}``; ``.set_result(v)`` records the result (content only when capture is on).

    A result with ``success=False`` (AgentPress ``ToolResult``) or an exception marks the span as error.

    Example::

        with tool_call("sb_shell", call_id=tc.get("id"), arguments=tc["arguments"]) as t:
            t.set_result(await fn(**tc["arguments"]))
    """
    return ToolCall(name, call_id=call_id, arguments=arguments, tool_type=tool_type, capture_content=capture_content)
