"""Self-telemetry: what the toolkit lost or swallowed, counted without ever raising.

Counters are plain process-local integers (cheap on hot paths, safe in exporter threads) and are
published as observable counters once a MeterProvider exists:

* ``agentpress_otel.exporter.dropped`` {signal, reason}: items lost to full queues or failed exports;
* ``agentpress_otel.internal.errors`` {component}: exceptions swallowed inside telemetry code.

The one error guard is :class:`guard` (a reusable context manager) and :func:`guarded` (its decorator form). In
production both count the exception and swallow it: telemetry never raises into the app. In strict mode (our own
test suite, and :func:`agentpress_otel.testing.capture`) an exception whose innermost frame is inside this package is
re-raised, so a bug in telemetry code fails the test that hit it instead of passing silently. On any thread but the
main one (the log worker, the Slack sender, export threads) it is kept instead, for :func:`take_strict_failures`:
re-raising there would end a worker loop and lose what it still holds; the test kit raises it when the test ends.
Failures that start outside the package (a refused connection, a user's ``__str__``, a test's injected fault) are
still swallowed in strict mode: surviving them is the behaviour under test.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

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
    except Exception:  # noqa: S110, BLE001 - diagnostics must never raise
        pass


_PKG_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_strict = False

P = ParamSpec("P")
R = TypeVar("R")


def set_strict(on: bool) -> bool:
    """Turn strict mode on or off (see the module docstring); returns the previous setting."""
    global _strict
    previous, _strict = _strict, on
    return previous


def is_strict() -> bool:
    return _strict


def _raised_here(tb: TracebackType | None) -> bool:
    """Whether the innermost frame of ``tb`` is code of this package (a telemetry bug, not an outside failure)."""
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_PKG_DIR)


_strict_failures: list[BaseException] = []


def _reraise(exc: BaseException, tb: TracebackType | None) -> bool:
    """Strict mode: whether ``exc`` (already counted) is re-raised where it was caught."""
    if not (_strict and _raised_here(tb)):
        return False
    if threading.current_thread() is threading.main_thread():
        return True
    with _lock:
        if len(_strict_failures) < 64:
            _strict_failures.append(exc)
    return False


def take_strict_failures() -> list[BaseException]:
    """The package-code exceptions strict mode kept on other threads since the last call (and forget them)."""
    with _lock:
        out = list(_strict_failures)
        _strict_failures.clear()
    return out


def swallow(component: str, exc: BaseException) -> None:
    """Count ``exc`` as swallowed in ``component``; in strict mode re-raise it if it started inside this package.

    For the rare ``except`` block that must do more than swallow (e.g. count a drop too); call it from inside that
    block. Everywhere else use :class:`guard` or :func:`guarded`.
    """
    record_error(component, exc)
    if _reraise(exc, exc.__traceback__):
        raise exc


class guard:
    """Context manager that counts and swallows any ``Exception`` from its body (see the module docstring).

    Stateless, so one instance per call site can be created once and reused from any thread::

        _GUARD = guard("httpx.request_hook")

        with _GUARD:
            span.set_attribute("http.request.body.size", size(request))
    """

    __slots__ = ("component",)

    def __init__(self, component: str) -> None:
        self.component = component

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # KeyboardInterrupt, SystemExit and GeneratorExit keep their meaning
        record_error(self.component, exc)
        return not _reraise(exc, tb)


def guarded(component: str, *, default: Any = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator form of :class:`guard`: on a swallowed exception the call returns ``default``.

    Example::

        @guarded("litellm.usage", default={})
        def usage_attributes(response: object) -> dict[str, int]: ...
    """

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - this is the guard
                swallow(component, exc)
                return default  # type: ignore[no-any-return]

        return wrapper

    return decorate


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
    _strict_failures.clear()


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
