"""What our integrations patched, found by looking at the libraries themselves (not at our bookkeeping).

:func:`patch_counts` scans every class and function of the target libraries for wrapt proxies and counts how
often the same wrapper is stacked on it (2 = a double patch), plus our root-logger handlers, our structlog
processors and the layers of our middleware in a FastAPI app's stack. :func:`patch_points` is its set form.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections import Counter
from typing import Any

#: Libraries our integrations may patch (scanned only when already imported).
TARGET_PREFIXES = ("redis", "httpx", "litellm", "dramatiq", "asyncio", "structlog", "logging", "openai", "fastapi",
                   "starlette")  # fmt: skip


def import_targets() -> None:
    """Import every target library that is installed, so "nothing patched" is checked against loaded modules.

    All of them: a library first imported by a later test would otherwise bring patch points an earlier
    baseline never saw.
    """
    for lib in ("redis", "redis.asyncio", "httpx", "dramatiq", "structlog", "litellm"):
        with contextlib.suppress(ImportError):
            __import__(lib)


def _wrapt_base() -> type:
    import wrapt

    return getattr(wrapt, "BaseObjectProxy", wrapt.ObjectProxy)  # type: ignore[no-any-return]  # wrapt 2: C base


def _depth(v: Any, base: type) -> int:
    """How many times the same wrapper is stacked on ``v`` (0: not wrapped; 2: a double patch).

    Distinct wrappers may be stacked on purpose (httpx: our baggage filter under the upstream wrapper).
    """
    chain: list[str] = []
    while isinstance(v, base) and len(chain) < 50:
        w = getattr(v, "_self_wrapper", None) or type(v)  # FunctionWrapper's wrapper, else the proxy class
        chain.append(f"{getattr(w, '__module__', '')}.{getattr(w, '__qualname__', type(w).__qualname__)}")
        v = v.__wrapped__
    return max(Counter(chain).values(), default=0)


def _stack_layers(app: Any) -> int:
    """Our middleware layers in the stack ``app`` builds now (2 would mean every request is traced twice)."""
    from agentpress_otel.integrations.fastapi import AgentPressASGIMiddleware

    layer, n = app.build_middleware_stack(), 0
    for _ in range(100):
        if isinstance(layer, AgentPressASGIMiddleware):
            n += 1
        layer = getattr(layer, "app", None)
        if layer is None:
            break
    return n


def patch_counts(app: Any = None, *, prefixes: tuple[str, ...] = ()) -> Counter[str]:
    """Every patch point of the target libraries (and modules under ``prefixes``) -> how often it is patched by the
    same wrapper (handlers, processors and app layers: how many of each)."""
    base = _wrapt_base()
    found: Counter[str] = Counter()
    wanted = TARGET_PREFIXES + prefixes
    for modname, mod in list(sys.modules.items()):
        if mod is None or not modname.startswith(wanted):
            continue
        try:
            items = list(vars(mod).items())
        except TypeError:
            continue
        for name, obj in items:
            if d := _depth(obj, base):
                found[f"{modname}.{name}"] = d
            elif isinstance(obj, type) and getattr(obj, "__module__", None) == modname:
                for attr, val in list(vars(obj).items()):
                    if d := _depth(val, base):
                        found[f"{modname}.{name}.{attr}"] = d
    for h in logging.getLogger().handlers:
        if type(h).__module__.startswith("agentpress_otel"):
            found[f"logging.root.handler:{type(h).__qualname__}"] += 1
    if "structlog" in sys.modules:
        for p in sys.modules["structlog"].get_config().get("processors", []):
            owner = getattr(type(p), "__module__", "") + getattr(p, "__module__", "")
            if "agentpress_otel" in owner:
                found[f"structlog.processor:{getattr(p, '__qualname__', type(p).__qualname__)}"] += 1
    if app is not None and (n := _stack_layers(app)):
        found["fastapi.app.build_middleware_stack"] = n
    return found


def patch_points(app: Any = None, *, prefixes: tuple[str, ...] = ()) -> set[str]:
    """The patch points of :func:`patch_counts`, as a set of comparable strings."""
    return set(patch_counts(app, prefixes=prefixes))


def ping_app() -> Any:
    """A one-route FastAPI app (``GET /ping``) for the tests that instrument an app and look for its patches."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"ok": "yes"}

    return app
