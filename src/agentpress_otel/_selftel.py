"""Self-telemetry: what the toolkit lost or swallowed, counted without ever raising.

Counters are plain process-local integers (cheap on hot paths, safe in exporter threads) and are
published as observable counters once a MeterProvider exists:

* ``agentpress_otel.exporter.dropped`` {signal, reason}: items lost to full queues or failed exports;
* ``agentpress_otel.internal.errors`` {component}: exceptions swallowed inside telemetry code.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

_lock = threading.Lock()
_dropped: Counter[tuple[str, str]] = Counter()
_errors: Counter[str] = Counter()
_last_warned: dict[str, float] = {}

# Our own diagnostics go to this logger, which the log pipeline never exports (no feedback loops).
log = logging.getLogger("agentpress_otel.internal")
log.propagate = False
if not log.handlers:
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("agentpress_otel: %(levelname)s %(message)s"))
    log.addHandler(_h)
    log.setLevel(logging.WARNING)


def record_dropped(signal: str, reason: str, count: int = 1) -> None:
    """Count ``count`` telemetry items of ``signal`` (spans/logs/metrics/slack) lost for ``reason``."""
    if count <= 0:
        return
    with _lock:
        _dropped[(signal, reason)] += count


def record_error(component: str, exc: BaseException | None = None) -> None:
    """Count an exception swallowed in ``component``; warn at most once a minute per component."""
    with _lock:
        _errors[component] += 1
        now = time.monotonic()
        if now - _last_warned.get(component, -1e9) < 60.0:
            return
        _last_warned[component] = now
    try:
        log.warning("error swallowed in %s: %r", component, exc)
    except Exception:  # noqa: S110 - diagnostics must never raise
        pass


def dropped(signal: str | None = None, reason: str | None = None) -> int:
    """Total items dropped, optionally filtered by signal and reason."""
    with _lock:
        return sum(
            n for (s, r), n in _dropped.items() if (signal is None or s == signal) and (reason is None or r == reason)
        )


def errors(component: str | None = None) -> int:
    with _lock:
        return sum(n for c, n in _errors.items() if component is None or c == component)


def reset() -> None:
    """Zero all counters (tests)."""
    with _lock:
        _dropped.clear()
        _errors.clear()
        _last_warned.clear()


def _after_fork_in_child() -> None:
    """A forked child is a new process with its own ``service.instance.id``: its counts start at zero.

    The lock is re-created too: another thread of the parent may have held it at ``fork()``.
    """
    global _lock
    _lock = threading.Lock()
    _dropped.clear()
    _errors.clear()
    _last_warned.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _observe_dropped(_opts: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        items = list(_dropped.items())
    return [Observation(n, {"signal": s, "reason": r}) for (s, r), n in items]


def _observe_errors(_opts: CallbackOptions) -> Iterable[Observation]:
    with _lock:
        items = list(_errors.items())
    return [Observation(n, {"component": c}) for c, n in items]


def register_metrics(meter_provider: MeterProvider) -> None:
    meter = meter_provider.get_meter("agentpress_otel.selftel")
    meter.create_observable_counter(
        "agentpress_otel.exporter.dropped",
        callbacks=[_observe_dropped],
        unit="{item}",
        description="Telemetry items dropped by full queues or failed exports",
    )
    meter.create_observable_counter(
        "agentpress_otel.internal.errors",
        callbacks=[_observe_errors],
        unit="{error}",
        description="Exceptions swallowed inside agentpress-otel",
    )


def qualified_name(cls: type) -> str:
    """``exception.type`` / ``error.type`` spelling: ``module.QualName``, bare for builtins (as tracebacks print)."""
    mod = getattr(cls, "__module__", "builtins")
    return cls.__qualname__ if mod in ("builtins", "__main__") else f"{mod}.{cls.__qualname__}"
