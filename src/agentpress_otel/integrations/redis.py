"""Redis client spans via ``opentelemetry-instrumentation-redis``, bound to our tracer provider.

Integration name ``redis``. Covers sync and asyncio clients (``redis.Redis``, ``redis.asyncio.Redis``),
pipelines and cluster clients: every command becomes a CLIENT span (``RPUSH``, ``LRANGE``,
``PUBLISH``...) in the current trace. ``db.query.text`` is upstream's sanitised form (``RPUSH ? ?``),
so streamed agent output pushed into Redis lists never lands in span attributes.
Pub/sub *receiving* (``PubSub.get_message``/``listen``) is not traced: it is a long poll, not a call.

**Only inside a trace.** A command runs as a span only when a span is already current (an HTTP request,
a Dramatiq message, an agent run...). Commands outside any trace make no span at all: otherwise an idle
Dramatiq worker on the Redis broker exports several root traces per second of its own polling
(``EVALSHA``/``SCRIPT LOAD``), and every background heartbeat becomes a one-span trace. This costs one
context lookup per command and is done by handing upstream a tracer that returns the non-recording
invalid span when there is no valid current span (nothing is attached to the context then).

**Stable database conventions.** Whatever ``OTEL_SEMCONV_STABILITY_OPT_IN`` says (upstream reads it once per
process, possibly before we run), the spans we hand upstream translate its attributes to the stable names:
``db.system.name``, ``db.query.text``, ``db.namespace``, ``server.address``/``server.port``,
``network.transport``; every span gets the required ``db.operation.name`` (the command); a pipeline is named
and operated ``PIPELINE`` with ``db.operation.batch.size``; a failed command carries ``error.type``. Upstream's
own ``db.redis.args_length`` (in no registry) is dropped.

If the app already instrumented redis-py itself (``RedisInstrumentor().instrument()`` or any other
wrapper on ``Redis.execute_command``), this integration leaves it alone: it neither re-binds it nor
removes it at shutdown.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import wrapt
from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Span, Tracer, TracerProvider

from agentpress_otel import _selftel
from agentpress_otel.integrations._registry import Skip

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = ["NAME", "REQUIRES", "instrument", "is_instrumented", "uninstrument"]

NAME = "redis"
REQUIRES: str | None = "redis"

_lock = threading.Lock()
_instrumentor: Any = None
_G_ATTRIBUTES = _selftel.guard("redis.attributes")
_G_UNINSTRUMENT = _selftel.guard("redis.uninstrument")


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
        return _stable_db_span(self._inner.start_as_current_span(name, context, *args, **kwargs), name)


#: Upstream's (old or stable) attribute -> the stable database/network name; None drops it.
_RENAMES: dict[str, str | None] = {
    "db.system": "db.system.name",
    "db.statement": "db.query.text",
    "db.redis.database_index": "db.namespace",
    "net.peer.name": "server.address",
    "net.peer.port": "server.port",
    "net.transport": "network.transport",
    "db.redis.args_length": None,
}
_TRANSPORTS = {"ip_tcp": "tcp", "ip_udp": "udp", "unix": "unix", "pipe": "pipe"}


class _StableDbSpan(wrapt.ObjectProxy):  # type: ignore[type-arg]
    """The span upstream writes to, with its attribute names translated (see module doc)."""

    def set_attribute(self, key: str, value: Any) -> None:
        with _G_ATTRIBUTES:  # a failed rename still records the attribute as upstream named it
            if key == "db.redis.pipeline_length":
                n = int(value)
                self.__wrapped__.update_name("PIPELINE")
                self.__wrapped__.set_attribute("db.operation.name", "PIPELINE")
                if n >= 2:  # the convention's batch size is only for batches of two or more
                    self.__wrapped__.set_attribute("db.operation.batch.size", n)
                return
            if key in _RENAMES:
                new = _RENAMES[key]
                if new is None:
                    return
                if new == "db.namespace":
                    value = str(value)
                elif new == "network.transport":
                    value = _TRANSPORTS.get(str(value), str(value))
                key = new
        self.__wrapped__.set_attribute(key, value)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        for k, v in attributes.items():
            self.set_attribute(k, v)


@contextlib.contextmanager
def _stable_db_span(inner: AbstractContextManager[Span], name: str) -> Iterator[Span]:
    with inner as span:
        if span.is_recording():
            span.set_attribute("db.operation.name", name)  # the command (a pipeline is renamed later)
        try:
            yield cast(Span, _StableDbSpan(span))
        except BaseException as exc:
            if span.is_recording():
                # Conditionally required on failure; the Redis error class, qualified as spans spell it.
                span.set_attribute("error.type", _selftel.qualified_name(type(exc)))
            raise


class _ParentOnlyTracerProvider(TracerProvider):
    def __init__(self, inner: TracerProvider) -> None:
        self._inner = inner

    def get_tracer(self, *args: Any, **kwargs: Any) -> Tracer:
        return _ParentOnlyTracer(self._inner.get_tracer(*args, **kwargs))


def _wrapped_by_someone_else() -> bool:
    import redis

    return hasattr(redis.Redis.execute_command, "__wrapped__")


def instrument(telemetry: Telemetry) -> None:
    """Trace redis-py commands made inside a trace into ``telemetry.tracer_provider``.

    ``ImportError`` when redis-py is absent; :class:`Skip` (nothing done) when the app already instrumented
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
            raise Skip("the app instrumented redis-py itself: not ours to re-bind or remove")
        # skip_dep_check: redis-py's version is whatever the app pins; upstream supports >= 2.6.
        inst.instrument(tracer_provider=_ParentOnlyTracerProvider(telemetry.tracer_provider), skip_dep_check=True)
        _instrumentor = inst


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
    with _G_UNINSTRUMENT:
        inst.uninstrument()


def is_instrumented() -> bool:
    """Whether redis-py is currently patched by us.

    Example::

        assert redis_integration.is_instrumented()
    """
    return _instrumentor is not None
