"""The integration contract and the one registry that loads integrations for ``instrument()``.

An integration is a module of this package exposing ``NAME``, ``REQUIRES``, ``instrument(telemetry)`` and
``uninstrument()`` (the :class:`Integration` protocol, satisfied structurally by the module). ``instrument``
returns ``None`` and raises :class:`Skip` when it does not apply here (a feature switched off, the app's own
instrumentation already in place); a missing library surfaces as ``ImportError``. Both leave the integration out
of ``Telemetry.integrations`` quietly; any other exception is counted and warned about, never raised.

Integrations whose library is not imported yet are patched when the app first imports it (a post-import hook
running in the importing thread), not by ``instrument()`` itself: importing httpx, redis-py, Dramatiq or
structlog (and their OTel instrumentations) to patch them cost ``instrument()`` most of its 0.7 s of CPU, for
libraries an app may never load.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agentpress_otel import _selftel

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = ["REGISTRY", "Integration", "Skip", "instrument_all", "instrument_app", "load", "uninstrument_all"]


class Skip(Exception):
    """Raised by an integration's ``instrument()`` when it does not apply; the reason is the message.

    Example::

        def instrument(telemetry: Telemetry) -> None:
            if not telemetry.config.slack_webhook_url:
                raise Skip("no Slack webhook URL configured")
    """


@runtime_checkable
class Integration(Protocol):
    """What every integration module provides (checked structurally by mypy and by a runtime test).

    Example::

        from agentpress_otel.integrations import load
        redis: Integration = load("redis")
        redis.instrument(telemetry)
        redis.uninstrument()
    """

    #: the name in ``Config.integrations`` (``integrations=`` / ``disabled_integrations=``)
    NAME: str
    #: import name of the library it patches (``None``: stdlib or our own code only)
    REQUIRES: str | None

    def instrument(self, telemetry: Telemetry, /) -> None:
        """Patch (idempotent); raise :class:`Skip` when not applicable."""

    def uninstrument(self) -> None:
        """Undo every patch (idempotent, safe when never instrumented)."""


@dataclass(frozen=True)
class _Entry:
    module: str
    #: same as the module's REQUIRES, known here without importing the module (Dramatiq's imports dramatiq)
    requires: str | None = None
    #: patch at the library's first import when it is not loaded yet. LiteLLM is eager: its module sets
    #: LITELLM_LOCAL_MODEL_COST_MAP before litellm is imported and registers its own post-import hook.
    lazy: bool = True


_PKG = "agentpress_otel.integrations."

#: Integration name -> where it lives and what it needs, in the order they are instrumented. The one list of
#: integrations: the ``integrations`` option's names and default derive from it (a test checks every module
#: against its entry).
REGISTRY: dict[str, _Entry] = {
    "fastapi": _Entry(_PKG + "fastapi"),
    "httpx": _Entry(_PKG + "httpx", "httpx"),
    "litellm": _Entry(_PKG + "litellm", "litellm", lazy=False),
    "redis": _Entry(_PKG + "redis", "redis"),
    "dramatiq": _Entry(_PKG + "dramatiq", "dramatiq"),
    "agentpress": _Entry(_PKG + "agentpress"),
    "logging": _Entry(_PKG + "logging"),
    "structlog": _Entry(_PKG + "structlog", "structlog"),
    "slack": _Entry(_PKG + "slack"),
    "runtime": _Entry(_PKG + "runtime"),
}


#: Every integration name, in registry order (the ``integrations`` option's default).
INTEGRATIONS: tuple[str, ...] = tuple(REGISTRY)


def load(name: str) -> Integration:
    """Import and return the module of integration ``name`` (``ImportError`` when its library is absent).

    Example::

        load("runtime").uninstrument()
    """
    mod: Integration = importlib.import_module(REGISTRY[name].module)
    return mod


def instrument_all(tel: Telemetry, app: Any = None) -> None:
    """Start every integration ``tel.config`` enables (``fastapi`` only for ``app``), in registry order."""
    for name in INTEGRATIONS:
        if name != "fastapi" and tel.config.enabled(name):
            _start(tel, name)
    if app is not None and tel.config.enabled("fastapi"):
        instrument_app(tel, app)


def _start(tel: Telemetry, name: str) -> None:
    target = REGISTRY[name].requires
    if target is not None and target not in sys.modules:
        if importlib.util.find_spec(target) is None:
            return  # not installed: skipped quietly
        if REGISTRY[name].lazy:
            _defer(tel, name, target)
            return
    if _instrument_now(tel, name):
        tel.integrations.append(name)


def _defer(tel: Telemetry, name: str, target: str) -> None:
    """Instrument ``name`` when ``target`` is first imported (in the importing thread)."""

    def on_import(_module: Any) -> None:
        if name not in tel._deferred or tel._shut:
            return  # shut down (or undone) before the app imported the library
        tel._deferred.discard(name)
        if not _instrument_now(tel, name) and name in tel.integrations:
            tel.integrations.remove(name)

    import wrapt

    tel._deferred.add(name)
    tel.integrations.append(name)
    wrapt.register_post_import_hook(on_import, target)


def _instrument_now(tel: Telemetry, name: str) -> bool:
    try:
        load(name).instrument(tel)
    except (ImportError, Skip):
        return False  # its library is not installed, or it does not apply here: skip quietly
    except Exception as exc:  # noqa: BLE001 - counted through the guard's swallow, and warned about too
        _selftel.swallow(f"instrument.{name}", exc)
        warnings.warn(f"agentpress-otel: could not instrument {name}: {exc!r}", RuntimeWarning, stacklevel=4)
        return False
    return True


def instrument_app(tel: Telemetry, app: Any) -> None:
    """Wrap one FastAPI/Starlette ``app`` (idempotent); used by ``instrument(app)`` and zero-code start-up."""
    from agentpress_otel.integrations import fastapi

    try:
        fastapi.instrument_app(app, tel)
    except Exception as exc:  # noqa: BLE001 - counted through the guard's swallow, and warned about too
        _selftel.swallow("instrument.fastapi", exc)
        warnings.warn(f"agentpress-otel: could not instrument the app: {exc!r}", RuntimeWarning, stacklevel=3)
        return
    if "fastapi" not in tel.integrations:
        tel.integrations.append("fastapi")
    tel.app = app


def uninstrument_all(tel: Telemetry) -> None:
    """Undo ``tel``'s integrations, last started first; those still waiting for their library just forget it."""
    for name in reversed(tel.integrations):
        if name in tel._deferred:
            tel._deferred.discard(name)  # its library was never imported: nothing to undo
            continue
        with _selftel.guard(f"uninstrument.{name}"):
            load(name).uninstrument()
    tel.integrations.clear()


if TYPE_CHECKING:  # mypy checks every module against the protocol (the runtime twin is in the unit tests)
    from agentpress_otel.integrations import agentpress as _agentpress
    from agentpress_otel.integrations import dramatiq as _dramatiq
    from agentpress_otel.integrations import fastapi as _fastapi
    from agentpress_otel.integrations import httpx as _httpx
    from agentpress_otel.integrations import litellm as _litellm
    from agentpress_otel.integrations import logging as _logging
    from agentpress_otel.integrations import redis as _redis
    from agentpress_otel.integrations import runtime as _runtime
    from agentpress_otel.integrations import slack as _slack
    from agentpress_otel.integrations import structlog as _structlog

    _fastapi_ok: Integration = _fastapi
    _httpx_ok: Integration = _httpx
    _litellm_ok: Integration = _litellm
    _redis_ok: Integration = _redis
    _dramatiq_ok: Integration = _dramatiq
    _agentpress_ok: Integration = _agentpress
    _logging_ok: Integration = _logging
    _structlog_ok: Integration = _structlog
    _slack_ok: Integration = _slack
    _runtime_ok: Integration = _runtime
