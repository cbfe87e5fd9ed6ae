"""structlog integration: processors that add ids/trace ids, redact, and export events over OTLP.

AgentPress configures structlog once (``utils/logger.py``) with ``merge_contextvars`` and a
``JSONRenderer``; ids are bound with ``structlog.contextvars.bind_contextvars(thread_id=...)``.
:func:`configure_structlog` inserts our three processors just before the renderer of the current
chain (keeping the user's processors), and ``instrument(tel)`` also wraps ``structlog.configure`` so
a chain configured *after* ``instrument()`` gets them too. The current chain is edited in place, so
loggers that structlog already cached (``cache_logger_on_first_use=True``) pick the processors up.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from agentpress_otel import _selftel
from agentpress_otel._text import truncate
from agentpress_otel.integrations._registry import Skip
from agentpress_otel.logs._levels import LevelPolicy, internal
from agentpress_otel.logs._pipeline import (
    ID_FIELDS,
    STRUCTLOG,
    acquire_pipeline,
    current_ids,
    get_pipeline,
    pipeline_for,
    release_pipeline,
)
from agentpress_otel.redaction import Redactor, default_redactor

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

NAME = "structlog"
REQUIRES: str | None = "structlog"
# One component for all our processors and the configure hook: a failure there never reaches the app's log call.
_G = _selftel.guard("logs.structlog")

EventDict = MutableMapping[str, Any]
Processor = Callable[[Any, str, EventDict], EventDict]

_METHOD_LEVELS = {
    "debug": logging.DEBUG, "info": logging.INFO, "msg": logging.INFO, "warning": logging.WARNING,
    "warn": logging.WARNING, "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}  # fmt: skip
_get_span = trace.get_current_span


def add_context(_logger: Any, _method: str, event: EventDict) -> EventDict:
    """structlog processor: add ``trace_id``/``span_id`` of the current span and the correlation
    ids (``project_id``, ``thread_id``, ...) that are not already bound.

    Example: ``structlog.configure(processors=[..., add_context, JSONRenderer()])``
    """
    with _G:
        sc = _get_span().get_span_context()
        if sc.is_valid:
            event.setdefault("trace_id", f"{sc.trace_id:032x}")
            event.setdefault("span_id", f"{sc.span_id:016x}")
        for k, v in current_ids().items():
            event.setdefault(k, v)
    return event


def make_redact_processor(redactor: Redactor | None = None) -> Processor:
    """A structlog processor redacting the event dict (key rules + text scan) in place of the values.

    Example: ``processors=[..., make_redact_processor(), JSONRenderer()]``
    """

    def redact_event(_logger: Any, _method: str, event: EventDict) -> EventDict:
        with _G:
            r = redactor or default_redactor()
            for k, v in list(event.items()):
                if k == "exc_info" or v is None or isinstance(v, (bool, int, float)):
                    continue  # exc_info stays for the export processor; numbers need no scan
                # Containers get key rules; bytes, exceptions and other objects would be rendered
                # to text by the renderer anyway: redact_value scans that text now (as on stdlib).
                nv = r.redact_attribute(k, v) if isinstance(v, str) else r.redact_value({k: v})[k]
                if nv is not v:
                    event[k] = nv
        return event

    redact_event._agentpress_otel = True  # type: ignore[attr-defined]
    return redact_event


def _exc_info(event: EventDict) -> Any:
    ei = event.get("exc_info")
    if ei is True:
        ei = sys.exc_info()
    elif isinstance(ei, BaseException):
        ei = (type(ei), ei, ei.__traceback__)
    if isinstance(ei, tuple) and len(ei) == 3 and ei[0] is not None:
        return ei
    exc = event.get("exception")
    if isinstance(exc, list) and exc and isinstance(exc[0], dict):
        # dict_tracebacks ran first: inside the except block the live exception is still at hand, which
        # gives the qualified exception.type and the exact traceback text (never the frames' locals).
        live = sys.exc_info()
        if live[0] is not None and exc[0].get("exc_type") == live[0].__name__:
            return live
    if isinstance(exc, (str, list)):
        return exc
    return None


def make_export_processor(policy: LevelPolicy | None = None) -> Processor:
    """A structlog processor that snapshots the event into the log pipeline (OTLP export) and
    returns it unchanged, so the user's renderer still prints its own line.

    Example: ``processors=[..., make_export_processor(), JSONRenderer()]``
    """

    def export_event(logger: Any, method: str, event: EventDict) -> EventDict:
        p = get_pipeline()
        if p is None:
            return event
        with _G:
            levelno = _METHOD_LEVELS.get(method, logging.INFO)
            name = str(event.get("logger") or event.get("logger_name") or getattr(logger, "name", None) or "structlog")
            if internal(name):
                return event
            sc = _get_span().get_span_context()
            pol = policy or _policy
            if pol is not None and not pol.keep(name, levelno, sc):
                return event
            ids = current_ids()
            for f in ID_FIELDS:
                v = event.get(f)
                if v is not None:
                    ids[f] = str(v)
            if levelno >= logging.WARNING:
                from agentpress_otel.integrations.slack import alert_from_structlog

                alert_from_structlog(name, levelno, event)
            snapshot = dict(event)
            msg = snapshot.get("event")
            size = len(msg) if isinstance(msg, str) else 0
            if size > p.max_message_chars:  # cut before queueing: the queue holds the short copy only
                snapshot["event"] = truncate(msg, p.max_message_chars)  # type: ignore[arg-type]
                size = p.max_message_chars
            p.submit(
                (STRUCTLOG, time.time_ns(), levelno, name, snapshot, ids, sc if sc.is_valid else None,
                 _exc_info(event)),
                size,
            )
        return event

    export_event._agentpress_otel = True  # type: ignore[attr-defined]
    return export_event


add_context._agentpress_otel = True  # type: ignore[attr-defined]

# The level of the app's ``make_filtering_bound_logger`` wrapper when we lowered it so that DEBUG events reach
# our export: events below it are dropped after the export processor, so the app's renderer prints what it did.
_print_floor: int | None = None


def drop_below_app_level(_logger: Any, method: str, event: EventDict) -> EventDict:
    """structlog processor (after our export one): drop what only reached the chain because we lowered the
    app's filtering level, so the renderer prints exactly what it printed before.

    Example: part of :func:`structlog_processors`; a no-op unless ``logger_levels`` asks for ``structlog=DEBUG``.
    """
    floor = _print_floor
    if floor is not None and _METHOD_LEVELS.get(method, logging.INFO) < floor:
        import structlog

        raise structlog.DropEvent
    return event


drop_below_app_level._agentpress_otel = True  # type: ignore[attr-defined]


def _filtering_level(wrapper_class: Any) -> int | None:
    """The level of a ``make_filtering_bound_logger`` class (``None`` for any other wrapper)."""
    try:
        from structlog._native import LEVEL_TO_FILTERING_LOGGER
    except ImportError:  # pragma: no cover - structlog without the native filtering loggers
        return None
    for lvl, cls in LEVEL_TO_FILTERING_LOGGER.items():
        if cls is wrapper_class:
            return int(lvl)
    return None


def _lowered_wrapper(wrapper_class: Any) -> Any:
    """``wrapper_class`` or a filtering class at our structlog export level when that is lower; records the
    app's level as the print floor."""
    global _print_floor
    pol = _policy
    app_level = _filtering_level(wrapper_class)
    if pol is None or app_level is None:
        return wrapper_class
    want = pol.threshold("structlog")
    if want >= app_level:
        _print_floor = None
        return wrapper_class
    import structlog

    _print_floor = app_level
    return structlog.make_filtering_bound_logger(want)


def structlog_processors(*, redact: bool = True, redactor: Redactor | None = None) -> list[Processor]:
    """Our processors, in order: add ids/trace ids, redact, export over OTLP. Put them just before
    your renderer.

    Example::

        structlog.configure(processors=[merge_contextvars, *structlog_processors(), JSONRenderer()])
    """
    procs: list[Processor] = [add_context]
    if redact:
        procs.append(make_redact_processor(redactor))
    procs.append(make_export_processor())
    procs.append(drop_below_app_level)
    return procs


def _is_ours(p: Any) -> bool:
    return bool(getattr(p, "_agentpress_otel", False))


def _is_renderer(p: Any) -> bool:
    n = getattr(p, "__name__", None) or type(p).__name__
    return str(n).endswith("Renderer") or n == "wrap_for_formatter" or type(p).__name__.endswith("Renderer")


def with_our_processors(processors: list[Any], *, redact: bool = True) -> list[Any]:
    """``processors`` with ours inserted before a trailing renderer (or appended); idempotent."""
    procs = [p for p in processors if not _is_ours(p)]
    ours = structlog_processors(redact=redact)
    if procs and _is_renderer(procs[-1]):
        return [*procs[:-1], *ours, procs[-1]]
    return [*procs, *ours]


_policy: LevelPolicy | None = None
_saved: dict[str, Any] | None = None
_redact_on = True


def configure_structlog(*, redact: bool = True) -> None:
    """Re-configure structlog's current chain with our processors (keeps the user's processors).

    The chain list is edited in place, so loggers structlog already cached see the change.

    Example::

        import structlog, agentpress_otel
        agentpress_otel.instrument()
        agentpress_otel.configure_structlog()
    """
    import structlog

    current = structlog.get_config()["processors"]
    new = with_our_processors(list(current), redact=redact)
    if isinstance(current, list):
        # In place: loggers already cached by ``cache_logger_on_first_use`` hold this very list.
        current[:] = new
    else:
        _orig_configure(processors=new)


def _orig_configure(**kw: Any) -> None:
    import structlog

    fn = getattr(structlog.configure, "__wrapped__", structlog.configure)
    fn(**kw)


def _configure_wrapper(wrapped: Any, _instance: Any, args: Any, kwargs: Any) -> Any:
    with _G:
        procs = kwargs.get("processors", args[0] if args else None)
        if procs is not None:
            new = with_our_processors(list(procs), redact=_redact_on)
            if args:
                args = (new, *args[1:])
            else:
                kwargs = {**kwargs, "processors": new}
        if "wrapper_class" in kwargs:
            kwargs = {**kwargs, "wrapper_class": _lowered_wrapper(kwargs["wrapper_class"])}
    return wrapped(*args, **kwargs)


def instrument(telemetry: Telemetry) -> None:
    """Start the pipeline, add our processors to the current chain and to any later
    ``structlog.configure`` call. Idempotent; :class:`Skip` when logs are off.

    Example: called by ``agentpress_otel.instrument()``; by hand: ``instrument(tel)``.
    """
    global _policy, _saved, _redact_on
    import structlog
    import wrapt

    if _saved is not None:
        return
    cfg = telemetry.config
    if telemetry.logger_provider is None:
        raise Skip("logs are off")
    pipeline = acquire_pipeline("structlog", lambda: pipeline_for(telemetry))
    pipeline.structlog_exports = True  # the stdlib handler skips events structlog forwards to stdlib
    _policy = LevelPolicy(default=cfg.log_level, levels=cfg.logger_levels, sample_ratio=cfg.log_sample_ratio)
    _redact_on = bool(cfg.redact)
    conf = structlog.get_config()
    _saved = {"processors": list(conf["processors"]), "wrapper_class": conf["wrapper_class"]}
    configure_structlog(redact=_redact_on)
    lowered = _lowered_wrapper(conf["wrapper_class"])
    if lowered is not conf["wrapper_class"]:
        _orig_configure(wrapper_class=lowered)
    if not hasattr(structlog.configure, "__wrapped__"):
        wrapt.wrap_function_wrapper(structlog, "configure", _configure_wrapper)


def uninstrument() -> None:
    """Restore structlog's chain and ``structlog.configure``; stop our use of the pipeline."""
    global _policy, _saved, _print_floor
    import structlog

    if _saved is None:
        return
    if hasattr(structlog.configure, "__wrapped__"):
        structlog.configure = structlog.configure.__wrapped__
    if _print_floor is not None:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(_print_floor))
        _print_floor = None
    current = structlog.get_config()["processors"]
    procs = [p for p in current if not _is_ours(p)]
    if isinstance(current, list):
        current[:] = procs  # in place, for cached loggers (see configure_structlog)
    else:
        structlog.configure(processors=procs)
    _saved = None
    _policy = None
    p = get_pipeline()
    if p is not None:
        p.structlog_exports = False
    release_pipeline("structlog")
