"""stdlib ``logging`` integration: a root handler that snapshots records into the log pipeline, and nothing
else the app can see.

``instrument(tel)`` attaches :class:`OTelQueueHandler` to the root logger without changing what the app's own
handlers print:

* the root level is left as it is, unless ``log_level`` is set explicitly (argument or variable): the default
  ``log_level`` is only the export threshold;
* a logger named in ``logger_levels`` below its current level is lowered so its records reach us, but the
  records below the level the app had go to our handler only (``Logger.callHandlers`` is wrapped for that:
  handlers the app adds later are covered too);
* our handler does not count as a handler for Python's "last resort": a WARNING from a logger with no
  handler of the app's still reaches stderr, as before;
* uvicorn's and gunicorn's access loggers get a filter that redacts secrets (the SSE ``?token=`` JWT) in
  what they print, not only in what we export.

``uninstrument()`` undoes all of it and drains the queue (bounded).
"""

from __future__ import annotations

import copy
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from agentpress_otel import _selftel
from agentpress_otel._text import to_text, truncate
from agentpress_otel.integrations._registry import Skip
from agentpress_otel.logs._levels import LevelPolicy, internal
from agentpress_otel.logs._pipeline import (
    STDLIB,
    WORKER_THREAD_NAME,
    LogPipeline,
    acquire_pipeline,
    current_ids,
    pipeline_for,
    release_pipeline,
)

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

NAME = "logging"
REQUIRES: str | None = None  # stdlib
_G_ACCESS = _selftel.guard("logs.access")

_get_span = trace.get_current_span


class OTelQueueHandler(logging.Handler):
    """A logging handler whose ``handle`` costs a few microseconds and never blocks.

    On the caller's thread it formats the message, reads the correlation ids and span context and
    appends a snapshot to the pipeline's bounded queue; the worker does the rest.

    Example::

        handler = OTelQueueHandler(pipeline, policy=LevelPolicy(default="INFO"))
        logging.getLogger().addHandler(handler)
    """

    def __init__(self, pipeline: LogPipeline, *, policy: LevelPolicy | None = None) -> None:
        super().__init__(logging.NOTSET)
        self.pipeline = pipeline
        self.policy = policy or LevelPolicy()

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the queue append is atomic, and the lock would serialise app threads.
        try:
            name = record.name
            tn = record.threadName or ""
            if internal(name) or tn == WORKER_THREAD_NAME or tn.startswith("Otel"):
                return False  # SDK/exporter output (incl. urllib3/grpc warnings on export threads)
            if type(record.msg) is dict and self.pipeline.structlog_exports and _from_structlog(record):
                return False  # structlog -> stdlib: our structlog processor already exported this event
            sc = _get_span().get_span_context()
            if not self.policy.keep(name, record.levelno, sc):
                return False
            if self.filters and not self.filter(record):
                return False
            try:
                msg = record.getMessage()  # now: args may be mutated after the call returns
            except Exception as exc:  # noqa: BLE001 - the app's bad arguments, counted through swallow()
                # Bad format arguments (``log.info("%d", "x")``): keep the record with its template and the
                # error instead of losing it; the caller's log call must not fail either.
                _selftel.swallow("logs.format", exc)
                msg = f"{to_text(record.msg)} [unformattable arguments: {type(exc).__name__}]"
                record = copy.copy(record)
                record.msg, record.args = msg, None
            limit = self.pipeline.max_message_chars
            if len(msg) > limit:
                # Cut before queueing, and queue a copy that no longer holds the full text (msg/args), so a
                # flood of huge messages costs the queue's byte budget and no more.
                msg = truncate(msg, limit)
                record = copy.copy(record)
                record.msg, record.args = msg, None
            self.pipeline.submit((STDLIB, record, msg, current_ids(), sc if sc.is_valid else None), len(msg))
            return True
        except Exception as exc:  # noqa: BLE001 - counted through swallow(); the handler must also answer False
            _selftel.swallow("logs.handler", exc)
            return False

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def flush(self) -> None:
        # Only explicit flushes (tests, logging.shutdown at exit) get here, never a log call: a
        # bounded drain into the provider is fine.
        if threading.current_thread().name != WORKER_THREAD_NAME:
            self.pipeline.flush(1.0)


def _from_structlog(record: logging.LogRecord) -> bool:
    """A record structlog forwarded to stdlib: ``ProcessorFormatter.wrap_for_formatter`` puts the event
    dict in ``msg`` and its markers ``_logger``/``_name`` in the record's extras."""
    d = record.__dict__
    return "_logger" in d and "_name" in d


_state_lock = threading.Lock()
_handler: OTelQueueHandler | None = None
_saved_levels: dict[str, int] = {}
#: The level each logger we lowered had: what the app's handlers keep seeing.
_print_levels: dict[logging.Logger, int] = {}
_orig_call_handlers: Any = None
ACCESS_LOGGERS = ("uvicorn.access", "gunicorn.access")


def _print_floor(lg: logging.Logger) -> int:
    """The effective level ``lg`` had before we lowered any logger (``Logger.getEffectiveLevel`` then)."""
    c: logging.Logger | None = lg
    saved = _print_levels
    while c is not None:
        lvl = saved.get(c, c.level)
        if lvl:
            return lvl
        c = c.parent
    return logging.NOTSET


def _call_handlers(self: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.callHandlers`` (CPython's walk) where our handler neither prints nor counts.

    Records below the level the app had (present only because we lowered a logger for export) reach our
    handler alone; and ``found`` ignores our handler, so Python's last-resort stderr output for a logger
    without handlers stays as it was before ``instrument()``.
    """
    ours = _handler
    printable = not _print_levels or record.levelno >= _print_floor(self)
    c: logging.Logger | None = self
    found = 0
    while c is not None:
        for hdlr in c.handlers:
            if hdlr is ours:
                ours.handle(record)
                if ours.pipeline.json_stdout:
                    found += 1  # log_json: our JSON line is the app's printed output
                continue
            found += 1
            if printable and record.levelno >= hdlr.level:
                hdlr.handle(record)
        c = c.parent if c.propagate else None
    if found == 0 and printable:
        last = logging.lastResort
        if last is not None:
            if record.levelno >= last.level:
                last.handle(record)
        elif logging.raiseExceptions and not self.manager.emittedNoHandlerWarning:
            sys.stderr.write(f"No handlers could be found for logger \"{self.name}\"\n")
            self.manager.emittedNoHandlerWarning = True


class AccessLogRedactor(logging.Filter):
    """Redacts secrets in access-log records before any handler formats them (uvicorn: a tuple of
    arguments with the full path; gunicorn: a dict of atoms with the request line and query string).

    Example::

        logging.getLogger("uvicorn.access").addFilter(AccessLogRedactor())
    """

    def filter(self, record: logging.LogRecord) -> bool:
        with _G_ACCESS:
            from agentpress_otel.redaction import redact

            args = record.args
            if isinstance(args, tuple):
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
            elif isinstance(args, dict):
                record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
            elif isinstance(record.msg, str):
                record.msg = redact(record.msg)
        return True


_access_filter = AccessLogRedactor()


def instrument(telemetry: Telemetry) -> None:
    """Attach the handler to the root logger (idempotent). Raises :class:`Skip` when there is nothing to do
    (logs off and JSON stdout off).

    Example: called by ``agentpress_otel.instrument()``; by hand: ``instrument(tel)``.
    """
    global _handler
    cfg = telemetry.config
    with _state_lock:
        if _handler is not None:
            return
        if telemetry.logger_provider is None and not cfg.log_json:
            raise Skip("logs are off and log_json is off")
        policy = LevelPolicy(default=cfg.log_level, levels=cfg.logger_levels, sample_ratio=cfg.log_sample_ratio)
        pipeline = acquire_pipeline("logging", lambda: pipeline_for(telemetry))
        pipeline.json_stdout = pipeline.json_stdout or cfg.log_json
        _handler = OTelQueueHandler(pipeline, policy=policy)
        root = logging.getLogger()
        # The root level stays the app's unless log_level was asked for explicitly; loggers named in
        # logger_levels are lowered. What that lets through goes to our handler alone (see _call_handlers).
        chosen = {k: v for k, v in policy.levels.items() if k in cfg.logger_levels}  # not the quiet defaults
        if cfg.sources.get("log_level", "default") != "default":
            chosen.setdefault("", policy.default)
        for name, lvl in chosen.items():
            lg = logging.getLogger(name) if name not in ("", "root") else root
            if lg.getEffectiveLevel() > lvl:
                _print_levels[lg] = lg.level
                _saved_levels.setdefault(name, lg.level)
                lg.setLevel(lvl)
        global _orig_call_handlers
        if _orig_call_handlers is None:
            _orig_call_handlers = logging.Logger.__dict__["callHandlers"]
            setattr(logging.Logger, "callHandlers", _call_handlers)  # noqa: B010 - mypy: method assignment
        root.addHandler(_handler)
        for name in ACCESS_LOGGERS:
            if cfg.redact:
                logging.getLogger(name).addFilter(_access_filter)


def uninstrument() -> None:
    """Detach the handler, restore levels we changed, drain the queue (bounded). Idempotent."""
    global _handler
    with _state_lock:
        h = _handler
        _handler = None
        if h is None:
            return
        global _orig_call_handlers
        logging.getLogger().removeHandler(h)
        for name, lvl in _saved_levels.items():
            (logging.getLogger(name) if name not in ("", "root") else logging.getLogger()).setLevel(lvl)
        _saved_levels.clear()
        _print_levels.clear()
        if _orig_call_handlers is not None:
            setattr(logging.Logger, "callHandlers", _orig_call_handlers)  # noqa: B010
            _orig_call_handlers = None
        for name in ACCESS_LOGGERS:
            logging.getLogger(name).removeFilter(_access_filter)
    release_pipeline("logging")


def handler() -> OTelQueueHandler | None:
    """The attached handler, if instrumented."""
    return _handler
