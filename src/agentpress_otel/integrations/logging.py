"""stdlib ``logging`` integration: a root handler that snapshots records into the log pipeline.

``instrument(tel)`` attaches :class:`OTelQueueHandler` to the root logger; ``uninstrument()``
detaches it, restores the levels it lowered and drains the queue (bounded).
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any

from opentelemetry import trace

from agentpress_otel import _selftel
from agentpress_otel.logs._levels import LevelPolicy, internal
from agentpress_otel.logs._pipeline import (
    STDLIB,
    WORKER_THREAD_NAME,
    LogPipeline,
    acquire_pipeline,
    current_ids,
    cut_message,
    pipeline_for,
    release_pipeline,
)
from agentpress_otel.redaction._engine import to_text

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
            except Exception as exc:
                # Bad format arguments (``log.info("%d", "x")``): keep the record with its template and the
                # error instead of losing it; the caller's log call must not fail either.
                _selftel.record_error("logs.format", exc)
                msg = f"{to_text(record.msg)} [unformattable arguments: {type(exc).__name__}]"
                record = copy.copy(record)
                record.msg, record.args = msg, None
            limit = self.pipeline.max_message_chars
            if len(msg) > limit:
                # Cut before queueing, and queue a copy that no longer holds the full text (msg/args), so a
                # flood of huge messages costs the queue's byte budget and no more.
                msg = cut_message(msg, limit)
                record = copy.copy(record)
                record.msg, record.args = msg, None
            self.pipeline.submit((STDLIB, record, msg, current_ids(), sc if sc.is_valid else None), len(msg))
            return True
        except Exception as exc:
            _selftel.record_error("logs.handler", exc)
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


def instrument(tel: Any) -> bool:
    """Attach the handler to the root logger (idempotent). Returns False when there is nothing to do
    (logs off and JSON stdout off).

    Example: called by ``agentpress_otel.instrument()``; by hand: ``instrument(tel)``.
    """
    global _handler
    cfg = tel.config
    with _state_lock:
        if _handler is not None:
            return True
        if tel.logger_provider is None and not cfg.log_json:
            return False
        policy = LevelPolicy(default=cfg.log_level, levels=cfg.logger_levels, sample_ratio=cfg.log_sample_ratio)
        pipeline = acquire_pipeline("logging", lambda: pipeline_for(tel))
        pipeline.json_stdout = pipeline.json_stdout or cfg.log_json
        _handler = OTelQueueHandler(pipeline, policy=policy)
        root = logging.getLogger()
        root.addHandler(_handler)
        # Let records at our configured levels reach the root handler.
        _lower("", root, policy.default)
        for name, lvl in policy.levels.items():
            lg = logging.getLogger(name) if name not in ("", "root") else root
            if lg.getEffectiveLevel() > lvl or lg.level == logging.NOTSET:
                _saved_levels.setdefault(name, lg.level)
                lg.setLevel(lvl)
        return True


def _lower(name: str, lg: logging.Logger, lvl: int) -> None:
    if lg.level > lvl or lg.level == logging.NOTSET:
        _saved_levels.setdefault(name, lg.level)
        lg.setLevel(lvl)


def uninstrument() -> None:
    """Detach the handler, restore levels we changed, drain the queue (bounded). Idempotent."""
    global _handler
    with _state_lock:
        h = _handler
        _handler = None
        if h is None:
            return
        logging.getLogger().removeHandler(h)
        for name, lvl in _saved_levels.items():
            (logging.getLogger(name) if name not in ("", "root") else logging.getLogger()).setLevel(lvl)
        _saved_levels.clear()
    release_pipeline("logging")


def handler() -> OTelQueueHandler | None:
    """The attached handler, if instrumented."""
    return _handler
