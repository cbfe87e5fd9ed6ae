"""Agent-run, tool-call and LLM-call spans with their metrics: a lean path on the plain OTel SDK.

Why not util-genai's ``TelemetryHandler``: measured in benchmarks/bench_genai.py, its invocation objects,
dataclass context data and per-call attribute assembly cost well over the 1.5x budget relative to a bare
SDK span; we emit the same names (util-genai 1.3b0 / Baseline A) with one ``set_attributes`` call at the
end and cached metric attribute dicts. We still set util-genai's inference context key while an LLM span
is active, so util-genai based OpenAI/Anthropic instrumentations underneath suppress their duplicate span.

Each object is a context manager (sync and async) and a decorator for functions, coroutines, generators
and async generators; a coroutine that *returns* an async generator keeps its span until that generator
finishes, is closed or is dropped (AgentPress ``run_thread``).

Setters never raise into the caller: a bad value is skipped and counted
(``agentpress_otel.internal.errors{component="genai.invalid_value"}``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import operator
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY

from agentpress_otel import _context, _selftel
from agentpress_otel.genai import _content, _semconv, _state, prices

F = TypeVar("F", bound=Callable[..., Any])

#: Our own "an LLM span is active" context key (integrations skip nested calls, e.g. Router -> acompletion).
LLM_ACTIVE_KEY = otel_context.create_key("agentpress_otel.genai.llm_active")
#: The AgentRun whose span is active (tool and LLM spans inside roll up into it / name it).
AGENT_ACTIVE_KEY = otel_context.create_key("agentpress_otel.genai.agent_active")
#: util-genai 1.3b0's key: when set, util-genai based SDK instrumentations suppress their inference span.
UTIL_GENAI_INFERENCE_KEY = "opentelemetry.genai.client.inference.context"

_util_data: Any = None
_util_loaded = False


def _util_genai_data() -> Any:
    """The value that makes util-genai suppress nested inference spans (None if util-genai is not in use).

    One shared ``InferenceData``: suppressed invocations only merge their attributes into it and we never
    read it back, so sharing is harmless and saves a dataclass per call.
    """
    global _util_data, _util_loaded
    # Only instrumentations built on util-genai read the key; if none imported it, skip the work.
    if "opentelemetry.util.genai.handler" not in sys.modules:
        return None
    if not _util_loaded:
        _util_loaded = True
        try:
            from opentelemetry.util.genai._inference_invocation import InferenceData

            _util_data = InferenceData()
        except Exception:  # util-genai absent or moved: suppression of SDK spans not possible
            _util_data = None
    return _util_data


# ----------------------------------------------------------------------------------------------- errors

_error_mappers: list[Callable[[BaseException], str | None]] = []


def register_error_mapper(fn: Callable[[BaseException], str | None]) -> None:
    """Let an integration name its exceptions with stable ``error.type`` strings (first non-None wins)."""
    if fn not in _error_mappers:
        _error_mappers.append(fn)


_model_normalizers: list[Callable[[str], str | None]] = []


def register_model_normalizer(fn: Callable[[str], str | None]) -> None:
    """Let an integration strip its routing syntax from model names (LiteLLM ``openai/gpt-5`` -> ``gpt-5``).

    ``agent_run(model=...)`` reports the model as the LLM spans under it do (first non-None wins).
    """
    if fn not in _model_normalizers:
        _model_normalizers.append(fn)


def normalize_model(model: str) -> str:
    for fn in _model_normalizers:
        try:
            v = fn(model)
        except Exception:
            v = None
        if v:
            return v
    return model


def error_type(exc: BaseException) -> str:
    """Stable, low-cardinality ``error.type`` for ``exc``."""
    for m in _error_mappers:
        try:
            v = m(exc)
        except Exception:
            v = None
        if v:
            return v
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return _selftel.qualified_name(type(exc))


# ------------------------------------------------------------------------------------- response-id map

class _LRU:
    """Bounded key -> (span context, provider, model) map for :func:`record_score`.

    Two generations of plain dicts instead of an OrderedDict: a put is one dict store (hot path), and
    when the young generation is full it becomes the old one. Holds between ``size`` and ``2*size`` keys.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.young: dict[str | int, tuple[SpanContext, str, str]] = {}
        self.old: dict[str | int, tuple[SpanContext, str, str]] = {}

    def put(self, key: str | int, value: tuple[SpanContext, str, str]) -> None:
        y = self.young
        y[key] = value
        if len(y) >= self.size:
            self.old, self.young = y, {}

    def get(self, key: str | int) -> tuple[SpanContext, str, str] | None:
        v = self.young.get(key)
        return v if v is not None else self.old.get(key)


RESPONSES = _LRU()
SPANS = _LRU()


# ------------------------------------------------------------------------------------------- base op

class _Op:
    """One span-producing operation. Single use; as a decorator it clones itself per call."""

    _kind: SpanKind = SpanKind.INTERNAL

    def __init__(self) -> None:
        self.span: Span = trace.INVALID_SPAN
        self._ctx: Context | None = None
        self._ids: dict[str, str] | None = None
        self._outer_ids: dict[str, str] | None = None
        self._tokens: list[tuple[object, Any] | None] = []
        self._t0 = 0.0
        self._started = False
        self._ended = False
        self._error: str | None = None
        self._attrs: dict[str, Any] = {}

    # --- subclass hooks
    def _span_name(self) -> str:
        raise NotImplementedError

    def _start_attributes(self) -> dict[str, Any]:
        raise NotImplementedError

    def _new_ids(self) -> dict[str, str] | None:
        return None

    def _context_values(self) -> dict[str, Any]:
        """Extra OTel context values to set while this span is active."""
        return {}

    def _on_end(self, duration: float, exc: BaseException | None) -> None:
        return None

    def _on_return(self, value: Any) -> None:
        return None

    def _clone(self) -> _Op:
        raise NotImplementedError

    # --- lifecycle
    def _safe_start_attributes(self) -> dict[str, Any]:
        try:
            return self._start_attributes()
        except Exception as exc:  # a bad attribute must not cost the whole span
            _selftel.record_error("genai.span", exc)
            return {}

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            st = _state.STATE
            new = self._new_ids()
            if new:
                ids, base = _context.enter_ids(new)
                self._ids = ids
                self._outer_ids = _context.get_ids_raw()
                tok = _context.set_ids(ids)  # so ContextSpanProcessor sees the new ids on this span
                try:
                    self.span = st.tracer.start_span(
                        self._span_name(), context=base, kind=self._kind, attributes=self._safe_start_attributes()
                    )
                finally:
                    _context.reset_ids(tok, self._outer_ids)
                ctx = trace.set_span_in_context(self.span, base)
                for k, v in self._context_values().items():
                    ctx = otel_context.set_value(k, v, ctx)
                self._ctx = ctx
            else:
                self.span = st.tracer.start_span(
                    self._span_name(), kind=self._kind, attributes=self._safe_start_attributes()
                )
                # One Context copy holding the span and our extra keys (set_value would copy per key).
                extra = self._context_values()
                if extra:
                    extra[_SPAN_KEY] = self.span
                    self._ctx = Context({**otel_context.get_current(), **extra})
                else:
                    self._ctx = trace.set_span_in_context(self.span)
        except Exception as exc:
            _selftel.record_error("genai.span", exc)
        self._t0 = time.perf_counter()

    def _activate(self) -> tuple[object, Any] | None:
        if self._ctx is None:
            return None
        try:
            ids_tok = _context.set_ids(self._ids) if self._ids is not None else None
            return (otel_context.attach(self._ctx), ids_tok)
        except Exception as exc:  # pragma: no cover
            _selftel.record_error("genai.span", exc)
            return None

    def _deactivate(self, tokens: tuple[object, Any] | None) -> None:
        if tokens is None:
            return
        try:
            otel_context.detach(tokens[0])  # type: ignore[arg-type]
        except Exception as exc:  # pragma: no cover - detach in another context
            _selftel.record_error("genai.span", exc)
        if tokens[1] is not None:
            _context.reset_ids(tokens[1], self._outer_ids)

    # Public lifecycle used by the LiteLLM integration (issue 20). The genai split (H3) defines the same
    # three methods on its op base; at merge its version of this module replaces these lines.
    def start(self) -> Self:
        """Start the span (idempotent) without making it current; returns the operation itself."""
        self._start()
        return self

    def activate(self) -> tuple[object, Any] | None:
        """Make the started span current in this thread or task until :meth:`deactivate`."""
        return self._activate()

    def deactivate(self, token: tuple[object, Any] | None) -> None:
        """Undo one :meth:`activate` (the span stays open)."""
        self._deactivate(token)

    def fail(self, exc: BaseException | str, *, description: str | None = None) -> None:
        """Mark the operation failed (``error.type`` + error status) without ending it.

        Example::

            with llm_call(model="gpt-5", provider="openai") as call:
                call.fail("rate_limit")
        """
        try:
            etype = exc if isinstance(exc, str) else error_type(exc)
            self._error = etype
            self._attrs["error.type"] = etype
            desc = description if description is not None else (etype if isinstance(exc, str) else str(exc))
            self.span.set_status(Status(StatusCode.ERROR, desc[:512]))
        except Exception as e:  # pragma: no cover
            _selftel.record_error("genai.span", e)

    def end(self, exc: BaseException | None = None) -> None:
        """End the span now (idempotent). Context managers and decorators call this for you."""
        if self._ended:
            return
        self._ended = True
        try:
            if exc is not None and not isinstance(exc, GeneratorExit):
                self.fail(exc)
                if not isinstance(exc, asyncio.CancelledError):
                    self.span.record_exception(exc)
            duration = time.perf_counter() - self._t0 if self._t0 else 0.0
            self._on_end(duration, exc)
            if self._attrs:
                self.span.set_attributes(self._attrs)
        except Exception as e:
            _selftel.record_error("genai.span", e)
        finally:
            # Whatever failed above, the span is still ended (and exported) exactly once.
            try:
                self.span.end()
            except Exception as e:
                _selftel.record_error("genai.span", e)

    def _safe_on_return(self, value: Any) -> None:
        try:
            self._on_return(value)
        except Exception as exc:  # reading the return value must never reach user code
            _selftel.record_error("genai.span", exc)

    @property
    def ended(self) -> bool:
        return self._ended

    # --- context manager
    def __enter__(self) -> Any:
        self._start()
        self._tokens.append(self._activate())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tokens:
            self._deactivate(self._tokens.pop())
        self.end(exc)

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # --- decorator
    def __call__(self, fn: F) -> F:
        clone = self._clone
        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
                return wrap_async_generator(clone(), fn(*args, **kwargs))

            return cast(F, agen_wrapper)
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def coro_wrapper(*args: Any, **kwargs: Any) -> Any:
                op = clone()
                op._start()
                tok = op._activate()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    op._deactivate(tok)
                    op.end(exc)
                    raise
                op._deactivate(tok)
                if inspect.isasyncgen(result):
                    # "async def" returning a generator: the work happens while it is iterated.
                    return _AsyncGenProxy(result, op)
                op._safe_on_return(result)
                op.end()
                return result

            return cast(F, coro_wrapper)
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                return wrap_generator(clone(), fn(*args, **kwargs))

            return cast(F, gen_wrapper)

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            op = clone()
            op._start()
            tok = op._activate()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                op._deactivate(tok)
                op.end(exc)
                raise
            op._deactivate(tok)
            op._safe_on_return(result)
            op.end()
            return result

        return cast(F, sync_wrapper)


async def wrap_async_generator(op: _Op, agen: AsyncGenerator[Any, Any]) -> AsyncGenerator[Any, Any]:
    """Run ``agen`` inside ``op``'s span, step by step; end the span when it finishes or is closed.

    The span context is attached only while the inner generator runs, never across our ``yield``, so the
    consumer's context is not polluted. Like ``yield from``: values sent with ``asend`` and exceptions
    thrown in with ``athrow`` are forwarded to the inner generator, which may handle them and go on.
    """
    op._start()
    exc: BaseException | None = None
    try:
        send: Any = None
        thrown: BaseException | None = None
        while True:
            tok = op._activate()
            try:
                if thrown is None:
                    item = await agen.asend(send)
                else:
                    err, thrown = thrown, None
                    item = await agen.athrow(err)
            except StopAsyncIteration:
                break
            finally:
                op._deactivate(tok)
            try:
                send = yield item
            except GeneratorExit:
                raise
            except BaseException as e:  # athrow(): the inner generator decides what happens
                thrown, send = e, None
    except GeneratorExit:
        op._attrs["agentpress.closed_early"] = True
        tok = op._activate()
        try:
            await agen.aclose()
        finally:
            op._deactivate(tok)
        raise
    except BaseException as e:  # raised by the inner generator (its own error, or a thrown one not handled)
        exc = e
        raise
    finally:
        op.end(exc)


def _abandon(op: _Op) -> None:
    # weakref.finalize callback (any thread, at garbage collection): end the span, never raise.
    if not op.ended:
        op._attrs["agentpress.closed_early"] = True
        op.end()


class _AsyncGenProxy(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The async generator a decorated coroutine returned (``run_thread``), stepped inside ``op``'s span.

    Transparent (``inspect.isasyncgen`` still holds). A proxy rather than a bare wrapper generator because
    a generator that is never started never runs its ``finally``: if the caller drops it before iterating
    (say, a billing check raises first), ``weakref.finalize`` ends the span, as the LiteLLM stream proxy does.
    """

    def __init__(self, agen: AsyncGenerator[Any, Any], op: _Op) -> None:
        super().__init__(agen)
        self._self_op = op
        self._self_steps = wrap_async_generator(op, agen)
        weakref.finalize(self, _abandon, op)

    def __aiter__(self) -> _AsyncGenProxy:
        return self

    def __anext__(self) -> Any:
        return self._self_steps.__anext__()

    def asend(self, value: Any) -> Any:
        return self._self_steps.asend(value)

    async def athrow(self, *args: Any) -> Any:
        try:
            return await self._self_steps.athrow(*args)
        except BaseException as e:
            self._self_op.end(e)  # thrown before the first step: the wrapper never ran; no-op otherwise
            raise

    async def aclose(self) -> None:
        await self._self_steps.aclose()
        _abandon(self._self_op)  # closed before the first step: the wrapper never ran; no-op otherwise


def wrap_generator(op: _Op, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Sync twin of :func:`wrap_async_generator` (``send``/``throw`` forwarded, return value kept)."""
    op._start()
    exc: BaseException | None = None
    try:
        send: Any = None
        thrown: BaseException | None = None
        while True:
            tok = op._activate()
            try:
                if thrown is None:
                    item = gen.send(send)
                else:
                    err, thrown = thrown, None
                    item = gen.throw(err)
            except StopIteration as stop:
                return stop.value
            finally:
                op._deactivate(tok)
            try:
                send = yield item
            except GeneratorExit:
                raise
            except BaseException as e:  # throw(): e.g. @contextmanager passing the block's exception in
                thrown, send = e, None
    except GeneratorExit:
        op._attrs["agentpress.closed_early"] = True
        tok = op._activate()
        try:
            gen.close()
        finally:
            op._deactivate(tok)
        raise
    except BaseException as e:
        exc = e
        raise
    finally:
        op.end(exc)


# --------------------------------------------------------------------------------------------- agent

class AgentRun(_Op):
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
        model = _model_text(model)
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

    def _start(self) -> None:
        if self._started:
            return
        super()._start()
        try:
            ins = _state.STATE.instruments
            ins.record(ins.active_runs, 1, {"gen_ai.agent.name": self.name})
            self._active = True
        except Exception as exc:  # pragma: no cover
            _selftel.record_error("genai.metrics", exc)

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


def _model_text(model: Any) -> str | None:
    """A model name as text, never raising: a non-string (whose ``__bool__``/``__str__`` may raise) is turned
    into text safely, so telemetry cannot break the caller."""
    if model is None or isinstance(model, str):
        return model
    from agentpress_otel.redaction._engine import to_text

    return to_text(model)


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


# ---------------------------------------------------------------------------------------------- tool

class ToolCall(_Op):
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
        self.capture = _state.STATE.capture_content if capture_content is None else capture_content
        self._capture_arg = capture_content
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
        agent = otel_context.get_value(AGENT_ACTIVE_KEY)
        if isinstance(agent, AgentRun):  # conditionally required when the tool runs inside an agent
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
        try:
            ok = _result_ok(value)
            if ok is False:
                self.fail("tool_failure", description=_result_output(value)[:256])
            elif self.capture:
                self._attrs["gen_ai.tool.call.result"] = _content.prepare(_result_output(value))
        except Exception as exc:
            _selftel.record_error("genai.tool", exc)

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


def _field(obj: Any, key: str) -> Any:
    """``obj[key]`` for mappings, else ``getattr(obj, key, None)``; None when absent or unreadable."""
    if obj is None:
        return None
    if type(obj) is dict:
        return obj.get(key)
    try:
        d = getattr(obj, "__dict__", None)
        if d is not None:
            v = d.get(key, _MISSING)
            if v is not _MISSING:
                return v
            if _absent_on_model(type(obj), key):
                # pydantic's own __getattr__ would look in the extras next, then raise: that, minus the raise
                extra = getattr(obj, "__pydantic_extra__", None)
                return extra.get(key) if extra else None
        if isinstance(obj, Mapping):
            return obj.get(key)
        return getattr(obj, key, None)
    except Exception:  # e.g. a __getattr__ raising KeyError: not the shape we read
        return None


_MISSING: Any = object()
_absent: dict[tuple[type, str], bool] = {}


def _absent_on_model(cls: type, key: str) -> bool:
    """Whether ``key`` can only be a pydantic extra of an instance of ``cls`` (if it is not in its dict).

    LiteLLM's responses and stream chunks are pydantic models: ``getattr(chunk, "usage", None)`` on a
    chunk without usage goes through pydantic's ``__getattr__``, which raises and catches an
    AttributeError, most of the 12 µs we spent per chunk. For a class whose ``__getattr__`` is pydantic's,
    a public name that is neither in the instance dict nor on the class is an extra or absent."""
    hit = _absent.get((cls, key))
    if hit is None:
        pyd = sys.modules.get("pydantic")
        base = getattr(pyd, "BaseModel", None) if pyd is not None else None
        hit = (base is not None and getattr(cls, "__getattr__", None) is getattr(base, "__getattr__", 0)
               and not key.startswith("_") and not hasattr(cls, key))
        if len(_absent) > 4096:
            _absent.clear()
        _absent[(cls, key)] = hit
    return hit


def _invalid(what: str, value: Any) -> None:
    """Count (and warn about, once a minute) a value a setter ignored; the value itself is not logged."""
    _selftel.record_error("genai.invalid_value", ValueError(f"{what}: unusable {type(value).__name__}"))


def _count(what: str, v: Any) -> int | None:
    """``v`` as a non-negative int token count, or None (counted) for NaN, negatives, bools, text..."""
    if type(v) is int and v >= 0:  # the common case, first
        return v
    n: int | None = None
    try:
        if isinstance(v, bool):
            n = None
        elif isinstance(v, float):
            n = int(v) if math.isfinite(v) else None
        elif isinstance(v, str):
            n = int(v.strip())
        else:
            n = operator.index(v)  # int subclasses, numpy integers
    except (TypeError, ValueError, OverflowError):
        n = None
    if n is None or n < 0:
        _invalid(what, v)
        return None
    return n


def _seconds(what: str, v: Any) -> float | None:
    """``v`` as finite seconds (int, float or numeric string), or None (counted)."""
    if type(v) is float and math.isfinite(v):
        return v
    try:
        f = None if isinstance(v, bool) else float(v)
    except (TypeError, ValueError, OverflowError):
        f = None
    if f is None or not math.isfinite(f):
        _invalid(what, v)
        return None
    return f


def _result_ok(value: Any) -> bool | None:
    s = value.get("success") if isinstance(value, Mapping) else getattr(value, "success", None)
    return s if isinstance(s, bool) else None


def _result_output(value: Any) -> str:
    out = value.get("output", value) if isinstance(value, Mapping) else getattr(value, "output", value)
    return _content.to_text(out)


def tool_call(name: str, *, call_id: str | None = None, arguments: Any = None, tool_type: str | None = "function",
              capture_content: bool | None = None) -> ToolCall:
    """Span ``execute_tool {name}``; ``.set_result(v)`` records the result (content only when capture is on).

    A result with ``success=False`` (AgentPress ``ToolResult``) or an exception marks the span as error.

    Example::

        with tool_call("sb_shell", call_id=tc.get("id"), arguments=tc["arguments"]) as t:
            t.set_result(await fn(**tc["arguments"]))
    """
    return ToolCall(name, call_id=call_id, arguments=arguments, tool_type=tool_type, capture_content=capture_content)


# ----------------------------------------------------------------------------------------------- llm

_PARAM_ATTRS: dict[str, str] = {
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "top_k": "gen_ai.request.top_k",
    "max_tokens": "gen_ai.request.max_tokens",
    "max_completion_tokens": "gen_ai.request.max_tokens",
    "frequency_penalty": "gen_ai.request.frequency_penalty",
    "presence_penalty": "gen_ai.request.presence_penalty",
    "seed": "gen_ai.request.seed",
    "reasoning_effort": "gen_ai.request.reasoning.level",
}

# (operation, provider, model, response model, error type, server address, server port, latest names)
# -> cached metric attribute dicts
_MetricKey = tuple[str, str, str, str | None, str | None, str | None, int | None, bool]
_metric_cache: dict[_MetricKey, tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]] = {}


def _metric_attrs(key: _MetricKey) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    hit = _metric_cache.get(key)
    if hit is not None:
        return hit
    op, provider, model, resp_model, err, server, port, latest = key
    base: dict[str, Any] = {"gen_ai.operation.name": op, "gen_ai.provider.name": provider,
                            "gen_ai.request.model": model}
    if resp_model:
        base["gen_ai.response.model"] = resp_model
    if server:
        base["server.address"] = server
        if port:
            base["server.port"] = port  # conditionally required when server.address is set
    # Semconv lists error.type for the duration metric only; token usage is about billed tokens.
    if latest:
        # The token counters are keyed by modality; we do not split a call's tokens by modality.
        inp = out = {**base, _semconv.TOKEN_MODALITY: "unknown"}
    else:
        inp = {**base, _semconv.TOKEN_TYPE: "input"}
        out = {**base, _semconv.TOKEN_TYPE: "output"}
    if err:
        base["error.type"] = err
    cost = {"gen_ai.provider.name": provider, "gen_ai.request.model": model}
    if len(_metric_cache) > 2048:  # unbounded model strings must not grow memory
        _metric_cache.clear()
    _metric_cache[key] = (base, inp, out, cost)
    return base, inp, out, cost


class LLMCall(_Op):
    """``{operation} {model}`` (CLIENT) with usage, cost and (opt-in) content. See :func:`llm_call`.

    Example::

        async with llm_call(model="gpt-5-mini", provider="openai", temperature=0.2) as call:
            resp = await client.chat.completions.create(...)
            call.record_usage(resp.usage)
            call.set_response(model=resp.model, id=resp.id, finish_reasons=["stop"])
    """

    _kind = SpanKind.CLIENT

    def __init__(self, *, model: str, provider: str, operation: str = "chat", server_address: str | None = None,
                 server_port: int | None = None, capture_content: bool | None = None,
                 suppress_nested: bool = True, **request_params: Any) -> None:
        super().__init__()
        self.model = _model_text(model) or "unknown"
        self.provider = provider or "unknown"
        self.operation = operation
        self.server_address = server_address
        self.server_port = server_port
        self.request_params = request_params
        self._capture_arg = capture_content
        self.capture = _state.STATE.capture_content if capture_content is None else capture_content
        self._suppress_nested = suppress_nested
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.cache_read_tokens: int | None = None
        self.cache_write_tokens: int | None = None
        self.reasoning_tokens: int | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None
        self.cost_usd: float | None = None
        self._first_chunk: float | None = None
        self._ttfc_set: float | None = None
        self._last_chunk: float | None = None
        self._chunk_gaps: list[float] | None = None
        self.chunks = 0
        self._agent: AgentRun | None = None

    def _clone(self) -> LLMCall:
        return LLMCall(model=self.model, provider=self.provider, operation=self.operation,
                       server_address=self.server_address, server_port=self.server_port,
                       capture_content=self._capture_arg, suppress_nested=self._suppress_nested,
                       **self.request_params)

    def _span_name(self) -> str:
        return f"{self.operation} {self.model}"

    def _start_attributes(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": self.operation,
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
        }
        if self.server_address:
            attrs["server.address"] = self.server_address
            if self.server_port:
                attrs["server.port"] = self.server_port
        agent = otel_context.get_value(AGENT_ACTIVE_KEY)
        if isinstance(agent, AgentRun):
            self._agent = agent
        ids = _context.get_ids_raw()
        if ids:
            tid = ids.get("thread_id")
            if tid:
                attrs["gen_ai.conversation.id"] = tid
        if self.request_params:
            self._request_attributes(attrs)
        return attrs

    def _request_attributes(self, attrs: dict[str, Any]) -> None:
        # Each parameter is checked on its own: one odd value (stop=5) skips that attribute, not the span.
        p = self.request_params
        try:
            for key, v in p.items():
                attr = _PARAM_ATTRS.get(key)
                if attr is not None and v is not None:
                    if isinstance(v, (int, float, str, bool)):
                        attrs[attr] = v
                    else:
                        _invalid(key, v)
            if p.get("stream"):
                attrs["gen_ai.request.stream"] = True
            stop = p.get("stop")
            if stop:
                if isinstance(stop, str):
                    attrs["gen_ai.request.stop_sequences"] = [stop]
                elif isinstance(stop, (list, tuple)) and all(isinstance(x, str) for x in stop):
                    attrs["gen_ai.request.stop_sequences"] = list(stop)
                else:
                    _invalid("stop", stop)
            n = p.get("n")
            if n is not None and not isinstance(n, bool) and isinstance(n, int):
                if n != 1:
                    attrs["gen_ai.request.choice.count"] = n
            elif n is not None:
                _invalid("n", n)
            rf = p.get("response_format")
            if rf is not None:
                ot = _output_type(rf)
                if ot is not None:
                    attrs["gen_ai.output.type"] = ot
            if self.capture:
                msgs = p.get("messages")
                if msgs is not None:
                    attrs["gen_ai.input.messages"] = _content.prepare(_content.convert_messages(msgs))
                tools = p.get("tools")
                if tools:
                    attrs["gen_ai.tool.definitions"] = _content.prepare(_content.convert_tool_definitions(tools))
        except Exception as exc:
            _selftel.record_error("genai.span", exc)
        finally:
            if "messages" in p or "tools" in p:
                # Content (if captured) is in attrs now. Keeping the caller's whole thread history
                # referenced from this call (and every Context copy holding it) would only retain memory.
                self.request_params = {k: v for k, v in p.items() if k not in ("messages", "tools")}

    def _context_values(self) -> dict[str, Any]:
        vals: dict[str, Any] = {LLM_ACTIVE_KEY: self}
        if self._suppress_nested:
            data = _util_genai_data()
            if data is not None:
                vals[UTIL_GENAI_INFERENCE_KEY] = data
        return vals

    # --- setters
    def set_usage(self, *, input_tokens: int | None = None, output_tokens: int | None = None,
                  cache_read_tokens: int | None = None, cache_write_tokens: int | None = None,
                  reasoning_tokens: int | None = None, estimated: bool = False) -> None:
        """Token usage (``input_tokens`` includes cached ones, ``output_tokens`` includes reasoning).

        Values that are not non-negative whole numbers (NaN, "abc", lists, negatives) are ignored and
        counted; numeric strings and floats are converted.

        Example::

            call.set_usage(input_tokens=1200, output_tokens=80, cache_read_tokens=1000)
        """
        try:
            a = self._attrs
            for field, value, attr in (
                ("input_tokens", input_tokens, "gen_ai.usage.input_tokens"),
                ("output_tokens", output_tokens, "gen_ai.usage.output_tokens"),
                ("cache_read_tokens", cache_read_tokens, "gen_ai.usage.cache_read.input_tokens"),
                ("cache_write_tokens", cache_write_tokens, _cache_write_attr()),
                ("reasoning_tokens", reasoning_tokens, "gen_ai.usage.reasoning.output_tokens"),
            ):
                if value is not None and (n := _count(field, value)) is not None:
                    setattr(self, field, n)
                    a[attr] = n
            if estimated:
                a["agentpress.usage.estimated"] = True
        except Exception as exc:  # pragma: no cover - defensive
            _selftel.record_error("genai.llm", exc)

    def set_response(self, *, model: str | None = None, id: str | None = None,
                     finish_reasons: Sequence[str] | str | None = None) -> None:
        """Response model, id and finish reasons (a single string counts as one reason).

        Example::

            call.set_response(model="gpt-5-2025-08-07", id="chatcmpl-1", finish_reasons=["stop"])
        """
        try:
            if model:
                self.response_model = str(model)
                self._attrs["gen_ai.response.model"] = self.response_model
            if id:
                self.response_id = str(id)
                self._attrs["gen_ai.response.id"] = self.response_id
            if finish_reasons:
                if isinstance(finish_reasons, str):
                    self._attrs["gen_ai.response.finish_reasons"] = [finish_reasons]
                elif isinstance(finish_reasons, (list, tuple)):
                    self._attrs["gen_ai.response.finish_reasons"] = [str(f) for f in finish_reasons]
                else:
                    _invalid("finish_reasons", finish_reasons)
        except Exception as exc:
            _selftel.record_error("genai.llm", exc)

    def record_usage(self, usage: Any) -> bool:
        """Read a ``usage`` object or dict; returns False when it has no counts. Understood shapes:

        * OpenAI Chat Completions / LiteLLM: ``prompt_tokens`` (includes cached), ``completion_tokens``,
          ``prompt_tokens_details.cached_tokens``, ``completion_tokens_details.reasoning_tokens``, and
          LiteLLM's ``cache_read_input_tokens``/``cache_creation_input_tokens``;
        * OpenAI Responses: ``input_tokens`` (includes cached), ``output_tokens``,
          ``input_tokens_details.cached_tokens``, ``output_tokens_details.reasoning_tokens``;
        * Anthropic Messages: ``input_tokens`` *excludes* the cache, so ``gen_ai.usage.input_tokens`` =
          ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens`` (semconv, anthropic.md).

        Example::

            call.record_usage(resp.usage)
        """
        try:
            if usage is None:
                return False
            pt = _field(usage, "prompt_tokens")
            ct = _field(usage, "completion_tokens")
            cache_read = _field(_field(usage, "prompt_tokens_details"), "cached_tokens") or _field(
                usage, "cache_read_input_tokens")
            cache_write = _field(usage, "cache_creation_input_tokens")
            reasoning = _field(_field(usage, "completion_tokens_details"), "reasoning_tokens")
            if pt is None and ct is None:
                pt = _field(usage, "input_tokens")
                ct = _field(usage, "output_tokens")
                if pt is None and ct is None:
                    return False
                in_details = _field(usage, "input_tokens_details")
                if in_details is not None:  # OpenAI Responses
                    cache_read = _field(in_details, "cached_tokens")
                    reasoning = _field(_field(usage, "output_tokens_details"), "reasoning_tokens")
                elif (cache_read is not None or cache_write is not None) and pt is not None:  # Anthropic
                    base = _count("input_tokens", pt)
                    extra = [_count("cache_tokens", c) for c in (cache_read, cache_write) if c is not None]
                    pt = None if base is None or None in extra else base + sum(x for x in extra if x)
            self.set_usage(input_tokens=pt, output_tokens=ct, cache_read_tokens=cache_read or None,
                           cache_write_tokens=cache_write or None, reasoning_tokens=reasoning or None)
            return True
        except Exception as exc:
            _selftel.record_error("genai.llm", exc)
            return False

    def record_response(self, resp: Any) -> None:
        """Read usage, model, id, finish reasons (and output messages when capturing) from an
        OpenAI/LiteLLM-shaped chat completion (object or dict). Decorated functions get this for free.

        Example::

            async with llm_call(model="gpt-5", provider="openai") as call:
                call.record_response(await client.chat.completions.create(...))
        """
        try:
            choices = _field(resp, "choices") or []
            finish = [str(_field(c, "finish_reason")) for c in choices if _field(c, "finish_reason")]
            self.set_response(model=_field(resp, "model"), id=_field(resp, "id"), finish_reasons=finish or None)
            self.record_usage(_field(resp, "usage"))
            self.record_openai_fields(resp)
            if self.capture and choices:
                self.set_output_messages([_field(c, "message") for c in choices], finish_reasons=finish)
        except Exception as exc:
            _selftel.record_error("genai.llm", exc)

    def record_openai_fields(self, resp: Any) -> None:
        """``openai.response.system_fingerprint`` / ``service_tier`` (openai.md: recommended when returned)
        from a response or a streamed chunk."""
        try:
            for field, attr in (("system_fingerprint", "openai.response.system_fingerprint"),
                                ("service_tier", "openai.response.service_tier")):
                v = _field(resp, field)
                if isinstance(v, str) and v:
                    self._attrs[attr] = v
        except Exception as exc:
            _selftel.record_error("genai.llm", exc)

    def _on_return(self, value: Any) -> None:
        if value is not None and _field(value, "choices") is not None:
            self.record_response(value)

    def set_input_messages(self, messages: Any) -> None:
        """OpenAI-style messages; recorded (converted, truncated, redacted) only when capture is on."""
        if self.capture and messages is not None:
            try:
                self._attrs["gen_ai.input.messages"] = _content.prepare(_content.convert_messages(messages))
            except Exception as exc:
                _selftel.record_error("genai.content", exc)

    def set_output_messages(self, messages: Any, *, finish_reasons: Sequence[str] | None = None) -> None:
        """Output messages (e.g. ``[choice.message]``); recorded only when capture is on."""
        if self.capture and messages is not None:
            try:
                fr = [finish_reasons] if isinstance(finish_reasons, str) else (
                    [str(f) for f in finish_reasons] if finish_reasons else None)
                self._attrs["gen_ai.output.messages"] = _content.prepare(
                    _content.convert_messages(messages, finish_reasons=fr))
            except Exception as exc:
                _selftel.record_error("genai.content", exc)

    def set_system_instructions(self, text: Any) -> None:
        """System prompt; recorded only when capture is on."""
        if self.capture and text is not None:
            try:
                self._attrs["gen_ai.system_instructions"] = _content.prepare([{"type": "text", "content": text}])
            except Exception as exc:
                _selftel.record_error("genai.content", exc)

    def chunk(self, now: float | None = None) -> None:
        """Call once per streamed chunk: the first sets time to first chunk, the rest the per-chunk gaps.

        ``now`` is a ``time.perf_counter()`` value; anything else unusable is counted and replaced by now.
        """
        if now is None:
            t = time.perf_counter()
        else:
            checked = _seconds("chunk(now)", now)
            t = time.perf_counter() if checked is None else checked
        self.chunks += 1
        if self._first_chunk is None:
            self._first_chunk = t
        else:
            if self._chunk_gaps is None:
                self._chunk_gaps = []
            if self._last_chunk is not None and len(self._chunk_gaps) < 4096:
                self._chunk_gaps.append(t - self._last_chunk)
        self._last_chunk = t

    def set_time_to_first_chunk(self, seconds: float) -> None:
        """Set the time to first chunk directly (when timing is measured elsewhere); bad values are counted."""
        v = _seconds("time_to_first_chunk", seconds)
        if v is not None and v >= 0:
            self._ttfc_set = v
        elif v is not None:
            _invalid("time_to_first_chunk", seconds)

    @property
    def time_to_first_chunk(self) -> float | None:
        if self._ttfc_set is not None:
            return self._ttfc_set
        return None if self._first_chunk is None else self._first_chunk - self._t0

    def set_attribute(self, key: str, value: Any) -> None:
        """Any extra span attribute (set when the span ends)."""
        self._attrs[key] = value

    def _on_end(self, duration: float, exc: BaseException | None) -> None:
        ins = _state.STATE.instruments
        base, inp, out, cost_attrs = _metric_attrs(
            (self.operation, self.provider, self.model, self.response_model, self._error, self.server_address,
             self.server_port if self.server_address else None, ins.latest))
        if exc is not None and not isinstance(exc, (GeneratorExit, asyncio.CancelledError)):
            _exception_event(self.span, exc)
        if self._agent is not None:
            self._agent._roll_up(self)
        ttfc = self.time_to_first_chunk
        attrs = self._attrs
        if ttfc is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = ttfc
        cost = None
        unpriced = False
        if self.input_tokens is not None or self.output_tokens is not None:
            price = (self.response_model and prices.lookup(self.response_model)) or prices.lookup(self.model)
            if price is None:
                unpriced = True
            else:
                cost = prices.price_cost(
                    price, input_tokens=self.input_tokens or 0, output_tokens=self.output_tokens or 0,
                    cache_read_tokens=self.cache_read_tokens or 0, cache_write_tokens=self.cache_write_tokens or 0,
                )
                self.cost_usd = cost
                attrs["agentpress.llm.cost_usd"] = cost
                attrs["agentpress.llm.prices_version"] = prices.PRICES_VERSION
        # Exemplars (trace links) only on duration/TTFC: an exemplar offer per record is not free.
        sc = self.span.get_span_context()
        # The record keeps only the span context (exemplars): never this call or its Context.
        detail = ((self.cache_read_tokens, self.cache_write_tokens, self.reasoning_tokens) if ins.latest else None)
        ins.record_llm(_state.LLMRecord(
            duration, ttfc, self._chunk_gaps, self.input_tokens, self.output_tokens, cost, unpriced,
            base, inp, out, cost_attrs, sc, detail))
        if sc.is_valid:
            entry = (sc, self.provider, self.model)
            SPANS.put(sc.span_id, entry)
            if self.response_id:
                RESPONSES.put(self.response_id, entry)


def _cache_write_attr() -> str:
    """The cache-write token attribute of the configured convention set (renamed in the latest set)."""
    return _semconv.CACHE_WRITE_ATTR if _state.STATE.instruments.latest else _semconv.CACHE_CREATION_ATTR


def _exception_event(span: Span, exc: BaseException) -> None:
    """``gen_ai.client.operation.exception`` (recommended, severity WARN) for a failed GenAI call.

    A log record parented to the call's span, when a logger provider is configured.
    """
    logger = _state.STATE.event_logger
    if logger is None:
        return
    try:
        import traceback

        from opentelemetry._logs import SeverityNumber

        qualified = _selftel.qualified_name(type(exc))
        attrs: dict[str, Any] = _context.ids_as_attributes(_context.current_ids())  # as every log record has
        attrs.update({"exception.type": qualified, "exception.message": str(exc)[:1024],
                      "exception.stacktrace": "".join(traceback.format_exception(exc))[-8192:]})
        logger.emit(event_name="gen_ai.client.operation.exception", severity_number=SeverityNumber.WARN,
                    severity_text="WARN", context=trace.set_span_in_context(span), body=None, attributes=attrs)
    except Exception as e:
        _selftel.record_error("genai.event", e)


def _output_type(rf: Any) -> str | None:
    """``response_format`` -> ``gen_ai.output.type`` (``text`` | ``json``), None when unrecognised."""
    if isinstance(rf, type):  # a pydantic model class: structured (JSON) output
        return "json"
    t = _field(rf, "type") if not isinstance(rf, str) else rf
    if t == "text":
        return "text"
    if t in ("json_object", "json_schema", "json"):
        return "json"
    return None


def llm_call(*, model: str, provider: str, operation: str = "chat", server_address: str | None = None,
             server_port: int | None = None, capture_content: bool | None = None,
             **request_params: Any) -> LLMCall:
    """Span ``{operation} {model}`` (CLIENT) for one logical LLM call, retries included, plus its metrics.

    ``request_params`` are the call's parameters (``temperature``, ``max_tokens``, ``stream``,
    ``messages``...); messages are recorded only when content capture is on.

    Example::

        async with llm_call(model="gpt-5-mini", provider="openai", temperature=0) as call:
            resp = await client.chat.completions.create(...)
            call.set_usage(input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens)
            call.set_response(model=resp.model, id=resp.id, finish_reasons=["stop"])
    """
    return LLMCall(model=model, provider=provider, operation=operation, server_address=server_address,
                   server_port=server_port, capture_content=capture_content, **request_params)


def current_llm_call(ctx: Context | None = None) -> LLMCall | None:
    """The :class:`LLMCall` whose span is active here, if any (integrations use it to skip nested calls)."""
    v = otel_context.get_value(LLM_ACTIVE_KEY, ctx)
    return v if isinstance(v, LLMCall) else None
