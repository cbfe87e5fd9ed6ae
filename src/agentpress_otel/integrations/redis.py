"""Redis client spans via ``opentelemetry-instrumentation-redis``, bound to our tracer provider.

Integration name ``redis``. Covers sync and asyncio clients (``redis.Redis``, ``redis.asyncio.Redis``),
pipelines and cluster clients: every command becomes a CLIENT span (``RPUSH``, ``LRANGE``,
``PUBLISH``...) in the current trace. ``db.statement`` is upstream's sanitised form (``RPUSH ? ?``),
so streamed agent output pushed into Redis lists never lands in span attributes.
Pub/sub *receiving* (``PubSub.get_message``/``listen``) is not traced: it is a long poll, not a call.

**Only inside a trace.** A command runs as a span only when a span is already current (an HTTP request,
a Dramatiq message, an agent run...). Commands outside any trace make no span at all: otherwise an idle
Dramatiq worker on the Redis broker exports several root traces per second of its own polling
(``EVALSHA``/``SCRIPT LOAD``), and every background heartbeat becomes a one-span trace. This costs one
context lookup per command and is done by handing upstream a tracer that returns the non-recording
invalid span when there is no valid current span (nothing is attached to the context then).

If the app already instrumented redis-py itself (``RedisInstrumentor().instrument()`` or any other
wrapper on ``Redis.execute_command``), this integration leaves it alone: it neither re-binds it nor
removes it at shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, Tracer, TracerProvider

from agentpress_otel import _selftel

__all__ = ["instrument", "is_instrumented", "uninstrument"]

NAME = "redis"

_lock = threading.Lock()
_instrumentor: Any = None


class _TelemetryLike(Protocol):
    tracer_provider: TracerProvider


class _NoSpan(AbstractContextManager[Span]):
    """``start_as_current_span`` outside a trace: yields the invalid span, attaches nothing."""

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


_NO_SPAN = _NoSpan()


def _in_trace(context: Any) -> bool:
    return bool(trace.get_current_span(context).get_span_context().is_valid)


class _ParentOnlyTracer(Tracer):
    """A tracer that starts real spans only when a valid span is current (or given as the parent)."""

    def __init__(self, inner: Tracer) -> None:
        self._inner = inner

    def start_span(self, name: str, context: Any = None, *args: Any, **kwargs: Any) -> Span:
        if not _in_trace(context):
            return INVALID_SPAN
        return self._inner.start_span(name, context, *args, **kwargs)

    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: Any = None, *args: Any, **kwargs: Any
    ) -> AbstractContextManager[Span] | Iterator[Span]:
        if not _in_trace(context):
            return _NO_SPAN
        return self._inner.start_as_current_span(name, context, *args, **kwargs)


class _ParentOnlyTracerProvider(TracerProvider):
    def __init__(self, inner: TracerProvider) -> None:
        self._inner = inner

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return _ParentOnlyTracer(self._inner.get_tracer(*args, **kwargs))


def _wrapped_by_someone_else() -> bool:
    import redis

    return hasattr(redis.Redis.execute_command, "__wrapped__")


def instrument(tel: _TelemetryLike) -> bool:
    """Trace redis-py commands made inside a trace into ``tel.tracer_provider``.

    ``ImportError`` when redis-py is absent; ``False`` (nothing done) when the app already instrumented
    redis-py itself. Idempotent: calling it again re-binds our patches to the new provider.

    Example::

        from agentpress_otel.integrations import redis as redis_integration
        redis_integration.instrument(tel)   # done by agentpress_otel.instrument() when "redis" is enabled
    """
    import redis  # noqa: F401 - ImportError here means "library absent": instrument() skips quietly
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    global _instrumentor
    with _lock:
        _uninstrument_locked()  # ours only: _instrumentor is None when someone else patched redis-py
        inst = RedisInstrumentor()
        if inst.is_instrumented_by_opentelemetry or _wrapped_by_someone_else():
            return False  # the app's own instrumentation: not ours to re-bind or remove
        # skip_dep_check: redis-py's version is whatever the app pins; upstream supports >= 2.6.
        inst.instrument(tracer_provider=_ParentOnlyTracerProvider(tel.tracer_provider), skip_dep_check=True)
        _instrumentor = inst
    return True


def uninstrument() -> None:
    """Remove the patches (``redis.Redis.execute_command`` loses its ``__wrapped__``). Safe to call twice.

    Example::

        redis_integration.uninstrument()
    """
    with _lock:
        _uninstrument_locked()


def _uninstrument_locked() -> None:
    global _instrumentor
    inst = _instrumentor
    _instrumentor = None
    if inst is None:
        return
    try:
        inst.uninstrument()
    except Exception as exc:
        _selftel.record_error("redis.uninstrument", exc)


def is_instrumented() -> bool:
    """Whether redis-py is currently patched by us.

    Example::

        assert redis_integration.is_instrumented()
    """
    return _instrumentor is not None
