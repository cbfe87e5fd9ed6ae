"""The one place that reads and writes the OpenTelemetry API's private global-provider slots.

The API lets each global provider (tracer, meter, logger) be set once per process. Tests, and
``agentpress_otel.testing.capture()``, instrument many times in one process, so they must put the slots back:
this module is the only code that does, for ``_setup._reset_for_tests`` and the test suite's autouse reset.
Production code never calls it.

The names are private to ``opentelemetry-api`` and pinned with it (pyproject.toml, ``opentelemetry-api==1.45.2``
through the SDK pin). ``tests/unit/test_sdk_globals.py`` fails with :func:`missing`'s message if an upgrade
renames them.
"""

from __future__ import annotations

from types import ModuleType

from opentelemetry import _logs as _logs_api
from opentelemetry import metrics as _metrics_api
from opentelemetry import trace as _trace_api
from opentelemetry.version import __version__ as api_version

__all__ = ["Providers", "api_version", "clear", "missing", "restore", "snapshot"]

#: (module holding the slot, provider attribute, its set-once guard) for traces, metrics and logs, in that order.
_SLOTS: tuple[tuple[ModuleType, str, str], ...] = (
    (_trace_api, "_TRACER_PROVIDER", "_TRACER_PROVIDER_SET_ONCE"),
    (_metrics_api._internal, "_METER_PROVIDER", "_METER_PROVIDER_SET_ONCE"),
    (_logs_api._internal, "_LOGGER_PROVIDER", "_LOGGER_PROVIDER_SET_ONCE"),
)

#: The three global providers (tracer, meter, logger); None where none was set.
Providers = tuple[object, object, object]


def missing() -> list[str]:
    """The private names this module needs that the installed ``opentelemetry-api`` lacks (empty when compatible).

    Example::

        assert not missing(), f"opentelemetry-api {api_version} moved: {missing()}"
    """
    out: list[str] = []
    for mod, provider, once in _SLOTS:
        if not hasattr(mod, provider):
            out.append(f"{mod.__name__}.{provider}")
        guard = getattr(mod, once, None)
        if guard is None or not hasattr(guard, "_done"):
            out.append(f"{mod.__name__}.{once}._done")
    return out


def snapshot() -> Providers:
    """The global providers as they are now (for :func:`restore`).

    Example::

        saved = snapshot()
        ...  # instrument(), tests
        restore(saved)
    """
    a, b, c = (getattr(mod, provider) for mod, provider, _ in _SLOTS)
    return (a, b, c)


def restore(saved: Providers) -> None:
    """Put the global providers back as :func:`snapshot` saw them; an empty slot may be set again afterwards."""
    for (mod, provider, once), value in zip(_SLOTS, saved, strict=True):
        setattr(mod, provider, value)
        getattr(mod, once)._done = value is not None


def clear() -> None:
    """Empty the three slots, so the next ``set_*_provider`` (an ``instrument()``) takes effect.

    Example::

        clear()
        trace.set_tracer_provider(TracerProvider())  # accepted again
    """
    restore((None, None, None))
