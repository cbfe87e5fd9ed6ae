"""``invoke_agent {name}`` spans: one agent run, whose ids are current for everything inside it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context

from agentpress_otel import _selftel, _text
from agentpress_otel.genai import _state
from agentpress_otel.genai._op import Op, normalize_model

if TYPE_CHECKING:
    from agentpress_otel.genai._llm import LLMCall

#: The AgentRun whose span is active (tool and LLM spans inside roll up into it / name it).
AGENT_ACTIVE_KEY = otel_context.create_key("agentpress_otel.genai.agent_active")

_G_METRICS = _selftel.guard("genai.metrics")


class AgentRun(Op):
    """``invoke_agent {name}`` (INTERNAL) that also makes its ids current. See :func:`agent_run`.

    Example::

        async with agent_run("planner", thread_id="t-1", agent_run_id="r-1") as run:
            ...  # every span and log record in here carries the thread and run ids
    """

    def __init__(
        self,
        name: str,
        *,
        thread_id: str | None = None,
        agent_run_id: str | None = None,
        project_id: str | None = None,
        user_id: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        model = model_text(model)
        self._kw = {"thread_id": thread_id, "agent_run_id": agent_run_id, "project_id": project_id,
                    "user_id": user_id, "model": model}
        self._model = normalize_model(str(model)) if model else None
        self._metric_attrs: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": name}
        if self._model:
            self._metric_attrs["gen_ai.request.model"] = self._model
        self._active = False
        # Rolled up from the LLM calls made inside (semconv recommends usage and finish reasons here too).
        self.input_tokens = 0
        self.output_tokens = 0
        self._usage_seen = False
        self.finish_reasons: list[str] = []
        self._roll_lock = threading.Lock()  # calls inside one run may end on several threads at once

    def _clone(self) -> AgentRun:
        return AgentRun(self.name, **self._kw)

    def _span_name(self) -> str:
        return f"invoke_agent {self.name}"

    def _new_ids(self) -> dict[str, str] | None:
        new = {k: str(v) for k, v in self._kw.items() if v is not None and k != "model"}
        return new or None

    def _start_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": self.name}
        if self._model:
            attrs["gen_ai.request.model"] = self._model
        tid = (self._ids or {}).get("thread_id")
        if tid:
            attrs["gen_ai.conversation.id"] = tid
        return attrs

    def start(self) -> AgentRun:
        """Start the span (see :meth:`Op.start`) and count the run as active."""
        if self._started:
            return self
        super().start()
        with _G_METRICS:
            ins = _state.STATE.instruments
            ins.record(ins.active_runs, 1, {"gen_ai.agent.name": self.name})
            self._active = True
        return self

    def _context_values(self) -> dict[str, Any]:
        return {AGENT_ACTIVE_KEY: self}

    def _roll_up(self, call: LLMCall) -> None:
        """Called by an LLM call ending inside this run (from any thread)."""
        fr = call._attrs.get("gen_ai.response.finish_reasons")
        with self._roll_lock:
            if call.input_tokens is not None or call.output_tokens is not None:
                self._usage_seen = True
                self.input_tokens += call.input_tokens or 0
                self.output_tokens += call.output_tokens or 0
            if fr and len(self.finish_reasons) < 64:  # bounded: a long run makes many calls
                self.finish_reasons.extend(fr)

    def _on_end(self, duration: float, exc: BaseException | None) -> None:
        if self._usage_seen:
            self._attrs["gen_ai.usage.input_tokens"] = self.input_tokens
            self._attrs["gen_ai.usage.output_tokens"] = self.output_tokens
        if self.finish_reasons:
            self._attrs["gen_ai.response.finish_reasons"] = list(self.finish_reasons)
        ins = _state.STATE.instruments
        attrs = self._metric_attrs
        if self._error:
            attrs = {**attrs, "error.type": self._error}
        ins.record(ins.agent_duration, duration, attrs, self.span.get_span_context())
        if self._active:
            ins.record(ins.active_runs, -1, {"gen_ai.agent.name": self.name})


def active_agent() -> AgentRun | None:
    """The :class:`AgentRun` whose span is current here, if any."""
    agent = otel_context.get_value(AGENT_ACTIVE_KEY)
    return agent if isinstance(agent, AgentRun) else None


def model_text(model: Any) -> str | None:
    """A model name as text, never raising: a non-string (whose ``__bool__``/``__str__`` may raise) is turned
    into text safely, so telemetry cannot break the caller."""
    if model is None or isinstance(model, str):
        return model
    return _text.to_text(model)


def agent_run(
    name: str,
    *,
    thread_id: str | None = None,
    agent_run_id: str | None = None,
    project_id: str | None = None,
    user_id: str | None = None,
    model: str | None = None,
) -> AgentRun:
    """Span ``invoke_agent {name}`` around one agent run; its ids are current for everything inside.

    Works as ``with``/``async with`` and as a decorator (sync, async, generators, async generators).

    Example::

        async with agent_run("suna", thread_id=tid, agent_run_id=rid, project_id=pid):
            async for chunk in runner.run():
                ...
    """
    return AgentRun(name, thread_id=thread_id, agent_run_id=agent_run_id, project_id=project_id,
                    user_id=user_id, model=model)
