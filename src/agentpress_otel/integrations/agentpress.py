"""AgentPress integration: ``invoke_agent`` and ``execute_tool`` spans, and AgentPress's own ids on everything.

With no code change in the backend:

* ``ThreadManager.run_thread`` (an ``async def`` that returns the response generator) runs inside an
  ``invoke_agent agentpress`` span that lasts until the generator is exhausted or closed; its thread id and
  model are on the span.
* ``ResponseProcessor._execute_tool(tool_call)`` runs inside ``execute_tool {function_name}`` with the call id
  (native tool calls) and the ``ToolResult`` (``success=False`` marks the span as an error).
* The ids AgentPress binds with ``structlog.contextvars.bind_contextvars`` (``thread_id``, ``agent_run_id``,
  ``project_id``, ``user_id``, ``request_id``) become ours too: on every span started afterwards, on every log
  record, and in the baggage that crosses the Dramatiq queue. The span current at the bind (the request's
  server span in a handler) gets them as attributes as well.
* One request id per trace: when a request id is already in effect (ours from ``X-Request-ID``, or the one
  that came with the Dramatiq message), AgentPress's freshly generated ``request_id`` is replaced by it, so
  its log lines, the actor's ``request_id`` argument and our spans all carry the same value.

Modules are hooked lazily, when AgentPress imports them (nothing is imported here). The layouts tried, in
order, are the classic ``agentpress.*``, ``core.agentpress.*`` and the current ``core.agentpress.thread_manager``
package; ``AGENTPRESS_OTEL_AGENTPRESS_MODULES`` replaces them with your own
``thread_manager_module,response_processor_module`` pairs separated by ``;``.

Example::

    agentpress_otel.instrument(app, service_name="agentpress-api")   # on by default when AgentPress is there
    # AGENTPRESS_OTEL_AGENTPRESS_MODULES="myapp.tm,myapp.rp" for a fork with other module paths
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry import trace

from agentpress_otel import _context, _selftel
from agentpress_otel._options import env_value
from agentpress_otel.integrations._registry import Skip

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = ["LAYOUTS", "NAME", "REQUIRES", "instrument", "layouts", "uninstrument"]

NAME = "agentpress"
#: None: the modules to hook depend on the layout (see :func:`layouts`); instrument() skips when none is importable
REQUIRES: str | None = None

#: (thread manager module, response processor module) per AgentPress layout, tried in this order.
LAYOUTS: tuple[tuple[str, str], ...] = (
    ("agentpress.thread_manager", "agentpress.response_processor"),
    ("core.agentpress.thread_manager", "core.agentpress.response_processor"),
    ("core.agentpress.thread_manager.manager", "core.agentpress.response_processor"),
)
AGENT_NAME = "agentpress"
# Telemetry never stands between AgentPress and its own call: a failure here is counted, the call goes on.
_G = _selftel.guard("agentpress")

_lock = threading.Lock()
_active = False
_hooked: set[str] = set()  # module names whose post-import hook is registered (wrapt cannot unregister)
_patched: list[tuple[Any, str, Any]] = []  # (owner, attribute, original)
_bind_original: Any = None


def layouts(env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """The (thread manager, response processor) module pairs to hook: ``AGENTPRESS_OTEL_AGENTPRESS_MODULES``'s
    (the options table's ``agentpress_modules``; a malformed value is warned about by ``instrument()`` and
    ignored), else :data:`LAYOUTS`.

    Example: ``layouts({"AGENTPRESS_OTEL_AGENTPRESS_MODULES": "a.tm,a.rp"}) == (("a.tm", "a.rp"),)``
    """
    pairs: tuple[tuple[str, str], ...] = env_value("agentpress_modules", env)
    return pairs or LAYOUTS


def _importable(module: str) -> bool:
    """Whether ``module`` can be found, without importing it or any parent package."""
    parts = module.split(".")
    try:
        spec = importlib.util.find_spec(parts[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if len(parts) == 1 or parts[0] in sys.modules:
        return True
    for base in spec.submodule_search_locations or ():
        path = os.path.join(base, *parts[1:-1])
        if os.path.isdir(os.path.join(path, parts[-1])) or os.path.isfile(os.path.join(path, parts[-1] + ".py")):
            return True
    return False


# --------------------------------------------------------------------------------------------- the spans

async def _run_thread(wrapped: Any, _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from agentpress_otel.genai import agent_run

    traced = wrapped
    with _G:
        thread_id = kwargs.get("thread_id", args[0] if args else None)
        model = kwargs.get("llm_model")
        op = agent_run(AGENT_NAME, thread_id=None if thread_id is None else str(thread_id),
                       model=None if model is None else str(model))
        # The decorator form handles "async def that returns a generator": the span lasts while it is iterated.
        traced = op(wrapped)
    return await traced(*args, **kwargs)


async def _execute_tool(wrapped: Any, _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from agentpress_otel.genai import tool_call

    traced = wrapped
    with _G:
        call = kwargs.get("tool_call", args[0] if args else None)
        name, call_id, arguments = "unknown", None, None
        if isinstance(call, Mapping):
            name = str(call.get("function_name") or call.get("xml_tag_name") or "unknown")
            cid = call.get("id") or call.get("tool_call_id")
            call_id = None if cid is None else str(cid)
            arguments = call.get("arguments")
        traced = tool_call(name, call_id=call_id, arguments=arguments)(wrapped)
    return await traced(*args, **kwargs)


def _patch(owner: Any, attr: str, wrapper: Any) -> None:
    original = owner.__dict__.get(attr)
    if original is None or isinstance(original, wrapt.FunctionWrapper):
        return
    setattr(owner, attr, wrapt.FunctionWrapper(original, wrapper))
    _patched.append((owner, attr, original))


def _hook(cls_name: str, attr: str, wrapper: Any) -> Callable[[Any], None]:
    """The import hook that patches ``cls_name.attr`` of a module with ``wrapper`` (while we are active)."""

    def on_import(module: Any) -> None:
        if not _active:
            return
        with _G:
            cls = getattr(module, cls_name, None)
            if cls is not None:
                with _lock:
                    _patch(cls, attr, wrapper)

    return on_import


_on_thread_manager = _hook("ThreadManager", "run_thread", _run_thread)
_on_response_processor = _hook("ResponseProcessor", "_execute_tool", _execute_tool)


# -------------------------------------------------------------------------------------- structlog's ids

def _bind_wrapper(wrapped: Any, _instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if not _active or not kwargs:
        return wrapped(*args, **kwargs)
    new: dict[str, str] = {}
    with _G:
        mine = _context.current_ids()
        rid = mine.get("request_id")
        if "request_id" in kwargs and rid and kwargs["request_id"] != rid:
            kwargs = {**kwargs, "request_id": rid}  # theirs adopts ours: one request id per trace
        for key in _context.ID_ATTRIBUTES:
            v = kwargs.get(key)
            if v is not None and v != "" and mine.get(key) != str(v):
                new[key] = str(v)
    result = wrapped(*args, **kwargs)
    if new:
        with _G:
            # Like bind_contextvars itself: set in the current context, no reset (AgentPress clears per task).
            _context.set_ids({**_context.current_ids(), **new})
            span = trace.get_current_span()
            if span.is_recording():
                span.set_attributes(_context.ids_as_attributes(new))
    return result


# ------------------------------------------------------------------------------------------- lifecycle

def instrument(telemetry: Telemetry) -> None:
    """Hook AgentPress (now, or when it is imported) and mirror its structlog ids. :class:`Skip` when no layout
    is importable. Idempotent.

    Example: called by ``agentpress_otel.instrument()``; by hand: ``instrument(tel)``.
    """
    global _active, _bind_original
    pairs = layouts()
    if not any(_importable(tm) or _importable(rp) for tm, rp in pairs):
        raise Skip("no AgentPress layout is importable")
    with _lock:
        if _active:
            return
        _active = True
    for tm, rp in pairs:
        for name, hook in ((tm, _on_thread_manager), (rp, _on_response_processor)):
            if name in sys.modules:
                hook(sys.modules[name])
            elif name not in _hooked:
                _hooked.add(name)
                wrapt.register_post_import_hook(hook, name)
    try:
        import structlog.contextvars as sc
    except ImportError:
        return
    with _lock:
        if not isinstance(sc.bind_contextvars, wrapt.FunctionWrapper):
            _bind_original = sc.bind_contextvars
            sc.bind_contextvars = wrapt.FunctionWrapper(sc.bind_contextvars, _bind_wrapper)


def uninstrument() -> None:
    """Restore every patched method and ``bind_contextvars``; import hooks left behind do nothing.

    Example::

        from agentpress_otel.integrations import agentpress
        agentpress.uninstrument()
    """
    global _active, _bind_original
    with _lock:
        _active = False
        for owner, attr, original in reversed(_patched):
            setattr(owner, attr, original)
        _patched.clear()
        if _bind_original is not None:
            import structlog.contextvars as sc

            sc.bind_contextvars = _bind_original
            _bind_original = None
