"""Zero-code start: ``opentelemetry-instrument uvicorn app:app`` sets up what ``instrument()`` sets up.

``opentelemetry-instrument`` (from ``opentelemetry-instrumentation``) loads, before the app's code runs, one
distro (entry-point group ``opentelemetry_distro``, chosen by ``OTEL_PYTHON_DISTRO`` or the first installed),
one configurator (``opentelemetry_configurator``, ``OTEL_PYTHON_CONFIGURATOR``), then every installed
instrumentor through the distro. Ours are both named ``agentpress_otel``:

* the configurator calls :func:`agentpress_otel.instrument` (every option from the environment, as always) and
  instruments each FastAPI app when it is constructed (a post-import hook on ``fastapi``), so an app created
  after start-up gets the same middleware as ``instrument(app)``;
* the distro skips the stock instrumentors of the libraries ``instrument()`` already covers (FastAPI, httpx,
  Redis, system metrics, logging), which would otherwise record every request twice, and loads all others.

When another distro is installed too (e.g. ``opentelemetry-distro``), select ours with
``OTEL_PYTHON_DISTRO=agentpress_otel OTEL_PYTHON_CONFIGURATOR=agentpress_otel``.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]  # no stubs
from opentelemetry.sdk._configuration import _BaseConfigurator

__all__ = ["AgentPressConfigurator", "AgentPressDistro"]

_log = logging.getLogger(__name__)

#: ``opentelemetry_instrumentor`` entry-point names whose libraries ``instrument()`` instruments itself.
COVERED = frozenset({"fastapi", "httpx", "redis", "system_metrics", "logging", "asgi"})


class AgentPressDistro(BaseDistro):  # type: ignore[misc]
    """Loads the installed instrumentors except those ``instrument()`` replaces."""

    def _configure(self, **kwargs: Any) -> None:
        return None

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name in COVERED:
            _log.debug("agentpress-otel instruments %s itself; skipping the stock instrumentor", entry_point.name)
            return
        super().load_instrumentor(entry_point, **kwargs)


class AgentPressConfigurator(_BaseConfigurator):
    """Runs ``instrument()`` and instruments FastAPI apps as they are created."""

    def _configure(self, **kwargs: Any) -> None:
        import os

        import wrapt

        from agentpress_otel._config import sdk_disabled
        from agentpress_otel._setup import instrument

        tel = instrument()
        if sdk_disabled(os.environ) or not tel.config.enabled("fastapi"):
            return

        def on_init(wrapped: Any, instance: Any, args: Any, kwargs_: Any) -> Any:
            result = wrapped(*args, **kwargs_)
            from agentpress_otel._setup import current
            from agentpress_otel.integrations._registry import instrument_app

            handle = current()
            if handle is not None:
                instrument_app(handle, instance)  # idempotent; instrument(app) later is a no-op for it
            return result

        def on_import(module: Any) -> None:
            wrapt.wrap_function_wrapper(module, "FastAPI.__init__", on_init)

        wrapt.register_post_import_hook(on_import, "fastapi")
