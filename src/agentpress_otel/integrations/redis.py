"""Redis client spans via ``opentelemetry-instrumentation-redis``, bound to our tracer provider.

Integration name ``redis``. Covers sync and asyncio clients (``redis.Redis``, ``redis.asyncio.Redis``),
pipelines and cluster clients: every command becomes a CLIENT span (``RPUSH``, ``LRANGE``,
``PUBLISH``...) in the current trace. ``db.statement`` is upstream's sanitised form (``RPUSH ? ?``),
so streamed agent output pushed into Redis lists never lands in span attributes.
Pub/sub *receiving* (``PubSub.get_message``/``listen``) is not traced: it is a long poll, not a call.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from opentelemetry.trace import TracerProvider

from agentpress_otel import _selftel

__all__ = ["instrument", "is_instrumented", "uninstrument"]

NAME = "redis"

_lock = threading.Lock()
_instrumentor: Any = None


class _TelemetryLike(Protocol):
    tracer_provider: TracerProvider


def instrument(tel: _TelemetryLike) -> bool:
    """Trace redis-py commands into ``tel.tracer_provider``; ``ImportError`` when redis-py is absent.

    Idempotent: calling it again re-binds to the new provider.

    Example::

        from agentpress_otel.integrations import redis as redis_integration
        redis_integration.instrument(tel)   # done by agentpress_otel.instrument() when "redis" is enabled
    """
    import redis  # noqa: F401 - ImportError here means "library absent": instrument() skips quietly
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    global _instrumentor
    with _lock:
        _uninstrument_locked()
        inst = RedisInstrumentor()
        # skip_dep_check: redis-py's version is whatever the app pins; upstream supports >= 2.6.
        inst.instrument(tracer_provider=tel.tracer_provider, skip_dep_check=True)
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
