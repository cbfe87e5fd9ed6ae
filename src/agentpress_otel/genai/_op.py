"""The span-producing operation base shared by agent runs, tool calls and LLM calls, and its decorator machinery.

Why not util-genai's ``TelemetryHandler``: measured in benchmarks/bench_genai.py, its invocation objects,
dataclass context data and per-call attribute assembly cost well over the 1.5x budget relative to a bare
SDK span; we emit the same names (util-genai 1.3b0 / Baseline A) with one ``set_attributes`` call at the
end and cached metric attribute dicts.

Each operation is a context manager (sync and async) and a decorator for functions, coroutines, generators
and async generators; a coroutine that *returns* an async generator keeps its span until that generator
finishes, is closed or is dropped (AgentPress ``run_thread``). Integrations that cannot wrap a block
(LiteLLM: the call returns, the stream goes on) drive the public lifecycle instead: :meth:`Op.start`,
:meth:`Op.activate` / :meth:`Op.deactivate` (or ``with op.activated():``) and :meth:`Op.end`.

Setters never raise into the caller: a bad value is skipped and counted
(``agentpress_otel.internal.errors{component="genai.invalid_value"}``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY

from agentpress_otel import _context, _selftel
from agentpress_otel.genai import _span_attrs, _state

F = TypeVar("F", bound=Callable[..., Any])
OpT = TypeVar("OpT", bound="Op")

_G_SPAN = _selftel.guard("genai.span")
_G_MAPPER = _selftel.guard("genai.mapper")

# ----------------------------------------------------------------------------------------------- errors

_error_mappers: list[Callable[[BaseException], str | None]] = []


def register_error_mapper(fn: Callable[[BaseException], str | None]) -> None:
    """Let an integration name its exceptions with stable ``error.type`` strings (first non-None wins).

    Example::

        register_error_mapper(lambda e: "rate_limit" if type(e).__name__ == "RateLimitError" else None)
    """
    if fn not in _error_mappers:
        _error_mappers.append(fn)


_model_normalizers: list[Callable[[str], str | None]] = []


def register_model_normalizer(fn: Callable[[str], str | None]) -> None:
    """Let an integration strip its routing syntax from model names (LiteLLM ``openai/gpt-5`` -> ``gpt-5``).

    ``agent_run(model=...)`` reports the model as the LLM spans under it do (first non-None wins).

    Example::

        register_model_normalizer(lambda m: m.split("/", 1)[1] if "/" in m else None)
    """
    if fn not in _model_normalizers:
        _model_normalizers.append(fn)


def normalize_model(model: str) -> str:
    """``model`` as the registered normalizers report it (unchanged when none recognises it)."""
    for fn in _model_normalizers:
        v = None
        with _G_MAPPER:
            v = fn(model)
        if v:
            return v
    return model


def error_type(exc: BaseException) -> str:
    """Stable, low-cardinality ``error.type`` for ``exc``.

    Example::

        error_type(TimeoutError())  # 'timeout'
    """
    for m in _error_mappers:
        v = None
        with _G_MAPPER:
            v = m(exc)
        if v:
            return v
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return _selftel.qualified_name(type(exc))


# ------------------------------------------------------------------------------------------- base op

class Activation:
    """Opaque token returned by :meth:`Op.activate`; give it back to :meth:`Op.deactivate`.

    Example::

        token = call.activate()
        ...
        call.deactivate(token)
    """

    __slots__ = ("ctx_token", "ids_token")

    def __init__(self, ctx_token: object, ids_token: Any) -> None:
        self.ctx_token = ctx_token
        self.ids_token = ids_token


class _Activated(Generic[OpT]):
    """``with op.activated():`` makes the span current for the block without ending it."""

    __slots__ = ("op", "token")

    def __init__(self, op: OpT) -> None:
        self.op = op
        self.token: Activation | None = None

    def __enter__(self) -> OpT:
        self.token = self.op.activate()
        return self.op

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.op.deactivate(self.token)


class _Running(_Activated[OpT]):
    """``_Activated`` that also ends the op, failed, when the block raises: the body of every wrapper."""

    __slots__ = ()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.op.deactivate(self.token)
        if exc is not None:
            self.op.end(exc)


class Op:
    """One span-producing operation. Single use; as a decorator it clones itself per call.

    Lifecycle (what ``with``/``async with`` and decorators do, public for integrations)::

        call = LLMCall(model="gpt-5", provider="openai").start()  # span started, not current yet
        with call.activated():                                    # current for this block only
            resp = client.chat.completions.create(...)
        call.record_response(resp)
        call.end()                                                # or call.end(exc) on failure
    """

    _kind: SpanKind = SpanKind.INTERNAL

    def __init__(self) -> None:
        self.span: Span = trace.INVALID_SPAN
        self._ctx: Context | None = None
        self._ids: dict[str, str] | None = None
        self._outer_ids: dict[str, str] | None = None
        self._tokens: list[Activation | None] = []
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

    def _clone(self) -> Op:
        raise NotImplementedError

    def _set_capture(self, capture_content: bool | None) -> None:
        # ``None`` follows the global setting; the argument itself is kept so a clone resolves it again.
        self._capture_arg = capture_content
        self.capture = _state.STATE.settings.capture_content if capture_content is None else capture_content

    # --- lifecycle
    def _safe_start_attributes(self) -> dict[str, Any]:
        try:
            return self._start_attributes()
        except Exception as exc:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("genai.span", exc)  # a bad attribute must not cost the whole span
            return {}

    def _start_with_ids(self, new: dict[str, str]) -> None:
        ids, base = _context.enter_ids(new)
        self._ids = ids
        self._outer_ids = _context.get_ids_raw()
        tok = _context.set_ids(ids)  # so ContextSpanProcessor sees the new ids on this span
        try:
            self.span = _state.STATE.tracer.start_span(
                self._span_name(), context=base, kind=self._kind, attributes=self._safe_start_attributes()
            )
        finally:
            _context.reset_ids(tok, self._outer_ids)
        ctx = trace.set_span_in_context(self.span, base)
        for k, v in self._context_values().items():
            ctx = otel_context.set_value(k, v, ctx)
        self._ctx = ctx

    def start(self) -> Self:
        """Start the span (idempotent) without making it current; returns the operation itself.

        The clock for the duration metric starts here. Pair with :meth:`activate`/:meth:`deactivate` or
        :meth:`activated` around the work, and with :meth:`end` when the operation is over.

        Example::

            call = llm_call(model="gpt-5", provider="openai").start()
        """
        if self._started:
            return self
        self._started = True
        try:
            new = self._new_ids()
            if new:
                self._start_with_ids(new)
            else:
                self.span = _state.STATE.tracer.start_span(
                    self._span_name(), kind=self._kind, attributes=self._safe_start_attributes()
                )
                # One Context copy holding the span and our extra keys (set_value would copy per key).
                extra = self._context_values()
                if extra:
                    extra[_SPAN_KEY] = self.span
                    self._ctx = Context({**otel_context.get_current(), **extra})
                else:
                    self._ctx = trace.set_span_in_context(self.span)
        except Exception as exc:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("genai.span", exc)
        self._t0 = time.perf_counter()
        return self

    def activate(self) -> Activation | None:
        """Make the started span (and its ids) current in this thread or task until :meth:`deactivate`.

        Returns None when the span was never started; :meth:`deactivate` accepts that too. Activations
        nest, and each must be undone in the same thread or task, innermost first.

        Example::

            token = call.activate()
            try:
                resp = wrapped(*args, **kwargs)
            finally:
                call.deactivate(token)
        """
        if self._ctx is None:
            return None
        # No guard: both only set a contextvar, which cannot fail for a Context we built in start().
        ids_tok = _context.set_ids(self._ids) if self._ids is not None else None
        return Activation(otel_context.attach(self._ctx), ids_tok)

    def deactivate(self, token: Activation | None) -> None:
        """Undo one :meth:`activate` (the span goes on; :meth:`end` ends it).

        Example::

            call.deactivate(token)
        """
        if token is None:
            return
        otel_context.detach(token.ctx_token)  # type: ignore[arg-type]  # logs, never raises, if out of order
        if token.ids_token is not None:
            _context.reset_ids(token.ids_token, self._outer_ids)

    def activated(self) -> _Activated[Self]:
        """Context manager: the span is current inside the block, and still open after it.

        Example::

            with call.activated():
                resp = wrapped(*args, **kwargs)
        """
        return _Activated(self)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """``fn(*args, **kwargs)`` with the started span current; on an exception the span ends failed.

        The one wrapper body (decorators, integrations); on success the span stays open for the caller,
        who reads the result before ending it. :meth:`_acall` is its twin for coroutine functions.
        """
        with _Running(self):
            return fn(*args, **kwargs)

    async def _acall(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        """Async twin of :meth:`_call` (``await fn(*args, **kwargs)``)."""
        with _Running(self):
            return await fn(*args, **kwargs)

    def fail(self, exc: BaseException | str, *, description: str | None = None) -> None:
        """Mark the operation failed (``error.type`` + error status) without ending it.

        Example::

            with llm_call(model="gpt-5", provider="openai") as call:
                call.fail("rate_limit")
        """
        with _G_SPAN:
            etype = exc if isinstance(exc, str) else error_type(exc)
            self._error = etype
            self._attrs["error.type"] = etype
            desc = description if description is not None else (etype if isinstance(exc, str) else str(exc))
            self.span.set_status(Status(StatusCode.ERROR, desc[:512]))

    def end(self, exc: BaseException | None = None) -> None:
        """End the span now (idempotent); ``exc`` marks it failed. Context managers and decorators call this.

        Example::

            call.end()           # success
            call.end(exc)        # failed with exc (recorded as error.type and an exception event)
        """
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
                _span_attrs.set_attributes(self.span, self._attrs)  # set_attributes, minus re-checking our values
        except Exception as e:  # noqa: BLE001 - hot path (every call): a try costs nothing, the guard's with ~0.2 µs
            _selftel.swallow("genai.span", e)
        finally:
            # Whatever failed above, the span is still ended (and exported) exactly once.
            try:
                self.span.end()
            except Exception as e:  # noqa: BLE001 - hot path (every call): a try costs nothing, a guard ~0.2 µs
                _selftel.swallow("genai.span", e)

    def _safe_on_return(self, value: Any) -> None:
        with _G_SPAN:  # reading the return value must never reach user code
            self._on_return(value)

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` ran."""
        return self._ended

    # --- context manager
    def __enter__(self) -> Any:
        self.start()
        self._tokens.append(self.activate())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tokens:
            self.deactivate(self._tokens.pop())
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
            return cast(F, _coroutine_wrapper(clone, fn))
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                return wrap_generator(clone(), fn(*args, **kwargs))

            return cast(F, gen_wrapper)

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            op = clone().start()
            result = op._call(fn, args, kwargs)
            op._safe_on_return(result)
            op.end()
            return result

        return cast(F, sync_wrapper)


def _coroutine_wrapper(clone: Callable[[], Op], fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def coro_wrapper(*args: Any, **kwargs: Any) -> Any:
        op = clone().start()
        result = await op._acall(fn, args, kwargs)
        if inspect.isasyncgen(result):
            # "async def" returning a generator: the work happens while it is iterated.
            return _AsyncGenProxy(result, op)
        op._safe_on_return(result)
        op.end()
        return result

    return coro_wrapper


async def wrap_async_generator(op: Op, agen: AsyncGenerator[Any, Any]) -> AsyncGenerator[Any, Any]:
    """Run ``agen`` inside ``op``'s span, step by step; end the span when it finishes or is closed.

    The span context is attached only while the inner generator runs, never across our ``yield``, so the
    consumer's context is not polluted. Like ``yield from``: values sent with ``asend`` and exceptions
    thrown in with ``athrow`` are forwarded to the inner generator, which may handle them and go on.
    """
    op.start()
    exc: BaseException | None = None
    try:
        send: Any = None
        thrown: BaseException | None = None
        while True:
            tok = op.activate()
            try:
                if thrown is None:
                    item = await agen.asend(send)
                else:
                    err, thrown = thrown, None
                    item = await agen.athrow(err)
            except StopAsyncIteration:
                break
            finally:
                op.deactivate(tok)
            try:
                send = yield item
            except GeneratorExit:
                raise
            except BaseException as e:  # noqa: BLE001 - not swallowed: athrow() forwards it to the inner generator
                thrown, send = e, None
    except GeneratorExit:
        op._attrs["agentpress.closed_early"] = True
        with op.activated():
            await agen.aclose()
        raise
    except BaseException as e:  # raised by the inner generator (its own error, or a thrown one not handled)
        exc = e
        raise
    finally:
        op.end(exc)


def _abandon(op: Op) -> None:
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

    def __init__(self, agen: AsyncGenerator[Any, Any], op: Op) -> None:
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


def wrap_generator(op: Op, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Sync twin of :func:`wrap_async_generator` (``send``/``throw`` forwarded, return value kept)."""
    op.start()
    exc: BaseException | None = None
    try:
        send: Any = None
        thrown: BaseException | None = None
        while True:
            tok = op.activate()
            try:
                if thrown is None:
                    item = gen.send(send)
                else:
                    err, thrown = thrown, None
                    item = gen.throw(err)
            except StopIteration as stop:
                return stop.value
            finally:
                op.deactivate(tok)
            try:
                send = yield item
            except GeneratorExit:
                raise
            except BaseException as e:  # noqa: BLE001 - not swallowed: throw() forwards it (e.g. @contextmanager)
                thrown, send = e, None
    except GeneratorExit:
        op._attrs["agentpress.closed_early"] = True
        with op.activated():
            gen.close()
        raise
    except BaseException as e:
        exc = e
        raise
    finally:
        op.end(exc)
