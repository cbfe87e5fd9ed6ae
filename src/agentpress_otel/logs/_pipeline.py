"""The never-blocking log pipeline: cheap snapshot on the caller, everything else on one worker.

Caller thread (inside ``logger.info(...)``): format the message (args may be mutated later), read
the ids and the current span context, append a tuple to a bounded deque. No locks, no I/O, no
redaction, no JSON. When the deque is full the record is dropped and counted.

Worker thread: extras, exception formatting, redaction, one OTel ``LogRecord`` per record to the
``LoggerProvider`` (whose ``BatchLogRecordProcessor`` does the network I/O on its own thread) and,
optionally, one JSON line per record to stdout (orjson, one write per batch).
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk._logs import Logger as _SdkLogger
from opentelemetry.sdk._logs import ReadWriteLogRecord
from opentelemetry.trace import SpanContext

from agentpress_otel import _selftel
from agentpress_otel._export import MAX_QUEUE_BYTES, RECORD_OVERHEAD_BYTES
from agentpress_otel.redaction import PreRedactedLogRecord, Redactor, default_redactor
from agentpress_otel.redaction._engine import cut_middle, to_text

_ctx_current_ids: Callable[[], dict[str, str]] | None
_CTX_ID_ATTRIBUTES: dict[str, str] | None
try:
    from agentpress_otel import _context as _ctx

    _ctx_current_ids = _ctx.current_ids
    _CTX_ID_ATTRIBUTES = dict(_ctx.ID_ATTRIBUTES)
except ImportError:  # pragma: no cover - until the context module exists, ids come from baggage
    _ctx_current_ids = None
    _CTX_ID_ATTRIBUTES = None

#: JSON field name -> OTLP attribute name of the correlation ids (stable; see docs/logging.md).
ID_FIELDS: dict[str, str] = dict(
    _CTX_ID_ATTRIBUTES
    or {
        "project_id": "agentpress.project.id",
        "thread_id": "agentpress.thread.id",
        "agent_run_id": "agentpress.agent_run.id",
        "user_id": "user.id",
        "request_id": "agentpress.request.id",
    }
)
_BAGGAGE_KEYS = {v: k for k, v in ID_FIELDS.items()}

# Attributes every stdlib LogRecord has; anything else on a record came from ``extra=``.
RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_SEVERITY = {
    logging.DEBUG: (SeverityNumber.DEBUG, "DEBUG"),
    logging.INFO: (SeverityNumber.INFO, "INFO"),
    logging.WARNING: (SeverityNumber.WARN, "WARN"),
    logging.ERROR: (SeverityNumber.ERROR, "ERROR"),
    logging.CRITICAL: (SeverityNumber.FATAL, "FATAL"),
}
_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
                logging.CRITICAL: "critical"}  # fmt: skip
WORKER_THREAD_NAME = "agentpress-otel-logs"
#: How long the worker waits for a fuller batch after the first record arrives (bounds the added latency).
LINGER_S = 0.05

STDLIB = 0
STRUCTLOG = 1


def current_ids() -> dict[str, str]:
    """The correlation ids in effect (JSON field names). Uses ``_context`` or, failing that, baggage."""
    if _ctx_current_ids is not None:
        return _ctx_current_ids()
    from opentelemetry import baggage

    bag = baggage.get_all()
    return {_BAGGAGE_KEYS[k]: str(v) for k, v in bag.items() if k in _BAGGAGE_KEYS and v}


def _severity(levelno: int) -> tuple[SeverityNumber, str]:
    s = _SEVERITY.get(levelno)
    if s is not None:
        return s
    for lvl in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG):
        if levelno >= lvl:
            return _SEVERITY[lvl]
    return SeverityNumber.TRACE, "TRACE"


_TRUNCATED = "…[truncated]"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(_TRUNCATED))] + _TRUNCATED if limit > len(_TRUNCATED) else text[:limit]




def cut_message(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (suffix ``…[truncated]``); on the caller, before queueing."""
    return text if len(text) <= limit else _cut(text, limit)


def _safe_str(v: Any) -> str:
    return to_text(v)  # str(), then repr(), then a placeholder: never raises


def _exc_message(e: Any) -> str:
    """``str(exception)`` for ``exception.message``; a raising ``__str__`` must not lose the record."""
    try:
        return str(e)
    except Exception:
        return f"<unprintable {type(e).__name__} message>"


#: Stack traces longer than this are cut (head and tail kept) even when redaction is off.
_MAX_STACK_CHARS = 65_536
_JSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 64) - 1  # orjson's integer range


def _jsonable(obj: Any, r: Redactor | None, depth: int = 0) -> Any:
    """A copy orjson always accepts: string keys, bounded depth, 64-bit ints, text for other leaves.

    Only used when orjson rejected the document (a tuple key, a raising ``__str__``, a cycle, a huge
    int). Keys and leaves turned into text are scanned too: the redactor never saw them as text.
    """
    if obj is None or isinstance(obj, (bool, str, float)):
        return obj
    if isinstance(obj, int):
        return obj if _INT_MIN <= obj <= _INT_MAX else str(obj)
    if depth > 32:
        return "[depth]"
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            ks = k if isinstance(k, str) else to_text(k)
            out[ks if r is None or ks is k else r.redact(ks)] = _jsonable(v, r, depth + 1)
        return out
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v, r, depth + 1) for v in obj]
    text = to_text(obj)
    return text if r is None else r.redact(text)


def _json_line(doc: dict[str, Any], r: Redactor | None) -> bytes:
    """One JSON line for ``doc``; never raises, so a record is never missing from stdout."""
    try:
        return orjson.dumps(doc, default=_safe_str, option=_JSON_OPTS)
    except Exception:  # noqa: S110 - retried below with a safe copy
        pass
    try:
        return orjson.dumps(_jsonable(doc, r), option=_JSON_OPTS)
    except Exception as exc:
        _selftel.record_error("logs.json", exc)
        keep = {k: _safe_str(doc[k]) for k in ("timestamp", "level", "logger", "message") if k in doc}
        return orjson.dumps(keep, option=_JSON_OPTS)


def _attr_value(v: Any, limit: int = 8192, r: Redactor | None = None) -> Any:
    """OTLP attribute values: primitives and homogeneous lists; everything else as JSON/str; cut to ``limit``."""
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        return _cut(v, limit)
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return [_cut(x, limit) for x in v]
    try:
        text = orjson.dumps(v, default=_safe_str, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:
        try:
            text = orjson.dumps(_jsonable(v, r), option=orjson.OPT_NON_STR_KEYS).decode()
        except Exception:
            text = _safe_str(v)
    return _cut(text, limit)


#: A non-empty context holding no span (an empty one makes ``LogRecord`` read the worker's own context).
_NO_SPAN = Context({"agentpress-otel.log-record": True})


def _emit(lg: Any, rec: LogRecord) -> None:
    """``lg.emit(rec)``, minus the SDK's second validation of every attribute value.

    The SDK's ``Logger.emit`` wraps the attributes in a new ``BoundedAttributes``, which checks and
    copies each value again: a third of the worker's time per record. Ours are already OTLP-valid
    (``_attr_value``: primitives, lists of strings, cut to the length limit), so an SDK logger gets
    its record handed to its processors directly, unless the SDK's own limits could apply (then, and
    for any other logger, its ``emit`` runs as usual). The SDK version is pinned (pyproject.toml).
    """
    if type(lg) is _SdkLogger:
        try:
            limits = lg._log_record_limits
            attrs = rec.attributes
            if (
                lg._is_enabled()
                and limits.max_log_record_attribute_length is None
                and (attrs is None or len(attrs) <= (limits.max_log_record_attributes or 0))
            ):
                rw = object.__new__(ReadWriteLogRecord)
                rw.log_record = rec
                rw.resource = lg._resource
                rw.instrumentation_scope = lg._instrumentation_scope
                rw.limits = limits
                lg._logger_metrics.emit_log()
                lg._multi_log_record_processor.on_emit(rw)
                return
        except AttributeError:  # pragma: no cover - an SDK whose internals moved: the public path
            pass
    lg.emit(rec)


_iso_second: tuple[int, str] = (-1, "")  # (second, "YYYY-MM-DDTHH:MM:SS"): records come in bursts


def _iso(ts_ns: int) -> str:
    """``2026-12-06T22:27:07.123456Z`` (truncated to µs); the date part is formatted once per second."""
    global _iso_second
    sec, ns = divmod(ts_ns, 1_000_000_000)
    cached = _iso_second  # one tuple: threads see a consistent (second, text) pair
    if cached[0] == sec:
        prefix = cached[1]
    else:
        prefix = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _iso_second = (sec, prefix)
    return f"{prefix}.{ns // 1000:06d}Z"


class LogPipeline:
    """Bounded queue + worker thread. One per process (see :func:`get_pipeline`)."""

    def __init__(
        self,
        *,
        logger_provider: LoggerProvider | None,
        json_stdout: bool = False,
        max_queue_size: int = 8192,
        redact: bool = True,
        redactor: Redactor | None = None,
        stream: Callable[[], TextIO] | None = None,
        batch_size: int = 512,
        max_attr_chars: int = 8192,
        max_message_chars: int = 16_384,
        max_queue_bytes: int = MAX_QUEUE_BYTES,
    ) -> None:
        self.max_attr_chars = max_attr_chars
        self.max_message_chars = max_message_chars
        self.max_queue_bytes = max_queue_bytes
        self.logger_provider = logger_provider
        self.json_stdout = json_stdout
        self.max_queue_size = max_queue_size
        self.redact = redact
        self._redactor = redactor
        self._stream = stream or (lambda: sys.stdout)
        self._batch = batch_size
        self._q: collections.deque[tuple[int, tuple[Any, ...]]] = collections.deque()
        # Bytes queued (messages + a fixed overhead per record); a lock, as += from many threads is not atomic.
        self._bytes = 0
        self._bytes_lock = threading.Lock()
        self._wake = threading.Event()
        #: set when a full batch is queued, or by flush/stop: ends the worker's linger early
        self._full = threading.Event()
        self._stop = False
        self._busy = False
        self.dropped = 0
        self.processed = 0
        #: set by the structlog integration while its export processor is in structlog's chain: the
        #: stdlib handler then skips records structlog forwarded to stdlib (already exported).
        self.structlog_exports = False
        self._loggers: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._start()
        _live.add(self)

    # ---------------------------------------------------------------- caller side
    def submit(self, item: tuple[Any, ...], size: int = 0) -> bool:
        """Enqueue a snapshot of about ``size`` bytes (its message); never blocks.

        False (and counted) when the queue is full (records or bytes) or stopped.
        """
        q = self._q
        cost = size + RECORD_OVERHEAD_BYTES
        with self._bytes_lock:
            full = len(q) >= self.max_queue_size or self._bytes + cost > self.max_queue_bytes
            if not full and not self._stop:
                self._bytes += cost
        if full or self._stop:
            self.dropped += 1
            # After stop() no worker would ever take it: counted as lost at shutdown.
            _selftel.record_dropped("logs", "shutdown" if self._stop else "queue_full")
            return False
        q.append((cost, item))
        n = len(q)
        if n == 1:
            self._wake.set()
        elif n == self._batch:
            self._full.set()
        return True

    # ---------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        self._stop = False
        t = threading.Thread(target=self._run, name=WORKER_THREAD_NAME, daemon=True)
        self._thread = t
        t.start()

    def _after_fork(self) -> None:
        # The worker thread does not survive fork; the inherited queue belongs to the parent.
        self._q = collections.deque()
        self._bytes = 0
        self._bytes_lock = threading.Lock()
        self._wake = threading.Event()
        self._full = threading.Event()
        self._busy = False
        self._loggers.clear()
        self._start()

    def flush(self, timeout_s: float = 2.0) -> bool:
        """Wait (bounded) until queued records were handed to the provider / written."""
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        self._full.set()
        while self._q or self._busy:
            if time.monotonic() >= deadline or self._thread is None or not self._thread.is_alive():
                return False
            time.sleep(0.002)
        return True

    def stop(self, timeout_s: float = 2.0) -> None:
        """Drain (bounded), stop the worker, and count what is still queued as dropped ("shutdown")."""
        self.flush(timeout_s)
        self._stop = True
        self._wake.set()
        self._full.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout_s)
        # Whatever the drain did not reach is lost: count it, so dropped + processed == submitted.
        # popleft is atomic, so a worker still running cannot take (and process) a record counted here.
        left = 0
        q = self._q
        while True:
            try:
                q.popleft()
            except IndexError:
                break
            left += 1
        if left:
            self.dropped += left
            _selftel.record_dropped("logs", "shutdown", left)
        _live.discard(self)

    # ---------------------------------------------------------------- worker side
    def _run(self) -> None:
        q = self._q
        while not self._stop:
            if q is not self._q:  # replaced after fork in a child (defensive)
                q = self._q
            if not q:
                self._wake.clear()
                if not q:
                    self._wake.wait(0.1)
                continue
            if len(q) < self._batch and not self._full.is_set():
                # Linger a little for more records: one wake-up per batch instead of one per record
                # keeps the worker from trading the GIL with the app thread on every log call.
                self._full.wait(LINGER_S)
            self._full.clear()
            self._busy = True
            lines: list[bytes] = []
            try:
                n = ok = freed = 0
                while n < self._batch:
                    try:
                        cost, item = q.popleft()
                    except IndexError:  # emptied (stop() drains concurrently)
                        break
                    n += 1
                    freed += cost
                    try:
                        self._process(item, lines)
                        ok += 1
                    except Exception as exc:
                        # The record is lost: count it as a drop as well as an error.
                        _selftel.record_error("logs.worker", exc)
                        self.dropped += 1
                        _selftel.record_dropped("logs", "error")
                self.processed += ok
                with self._bytes_lock:
                    self._bytes -= freed
                if lines:
                    self._write(lines)
            finally:
                self._busy = bool(q)

    def _write(self, lines: list[bytes]) -> None:
        try:
            out = self._stream()
            data = b"".join(lines)
            buf = getattr(out, "buffer", None)
            if buf is not None:
                buf.write(data)
                buf.flush()
            else:
                out.write(data.decode())
                out.flush()
        except Exception as exc:
            _selftel.record_error("logs.stdout", exc)

    def _otel_logger(self, name: str) -> Any:
        lg = self._loggers.get(name)
        if lg is None and self.logger_provider is not None:
            lg = self.logger_provider.get_logger(name or "root")
            if len(self._loggers) < 10_000:
                self._loggers[name] = lg
        return lg

    def _process(self, item: tuple[Any, ...], lines: list[bytes]) -> None:
        rec = self._from_stdlib(item) if item[0] == STDLIB else self._from_structlog(item)
        ts_ns, levelno, name, message, ids, sc, extras, exc, code = rec
        r = (self._redactor or default_redactor()) if self.redact else None
        if exc and isinstance(exc.get("stacktrace"), str):
            # Cut before scanning (cost is linear), keeping the head and the innermost frames.
            exc["stacktrace"] = cut_middle(exc["stacktrace"], r.max_chars if r is not None else _MAX_STACK_CHARS)
        if r is not None:
            message = r.redact(message) if isinstance(message, str) else r.redact_value(message)
            if extras:
                extras = r.redact_value(extras)
            if exc:
                exc = {k: r.redact(v) if isinstance(v, str) else v for k, v in exc.items()}
            if ids:  # ids come from the app (a secret passed as a thread id must not leak through them)
                ids = {k: r.redact(v) if isinstance(v, str) else v for k, v in ids.items()}
        valid = sc is not None and sc.is_valid

        if self.logger_provider is not None:
            attrs: dict[str, Any] = {}
            if extras:
                for k, v in extras.items():
                    ks = k if isinstance(k, str) else _safe_str(k)
                    attrs[ks if r is None or ks is k else r.redact(ks)] = _attr_value(v, self.max_attr_chars, r)
            for field, value in ids.items():
                attr = ID_FIELDS.get(field)
                if attr is not None and value is not None:
                    attrs[attr] = str(value)
            if exc:
                limit = self.max_attr_chars
                for k, v in exc.items():
                    if isinstance(v, str) and len(v) > limit:
                        # a stack trace keeps its head and its end (the innermost frames, the exception line)
                        v = cut_middle(v, limit) if k == "stacktrace" else _cut(v, limit)
                    attrs[f"exception.{k}"] = v
            if code:
                attrs.update(code)
            sev, sev_text = _severity(levelno)
            lg = self._otel_logger(name)
            if lg is not None:
                cls = PreRedactedLogRecord if r is not None else LogRecord
                lr = cls(
                    timestamp=ts_ns,
                    context=_NO_SPAN,
                    severity_number=sev,
                    severity_text=sev_text,
                    body=message if isinstance(message, str) else _attr_value(message, self.max_attr_chars, r),
                    attributes=attrs,
                )
                if valid:  # the ids straight from the span context: no Context/NonRecordingSpan round trip
                    lr.trace_id, lr.span_id, lr.trace_flags = sc.trace_id, sc.span_id, sc.trace_flags
                _emit(lg, lr)

        if self.json_stdout and item[0] == STDLIB:
            doc: dict[str, Any] = {
                "timestamp": _iso(ts_ns),
                "level": _LEVEL_NAMES.get(levelno, logging.getLevelName(levelno).lower()),
                "logger": name,
                "message": message,
            }
            if valid:
                doc["trace_id"] = f"{sc.trace_id:032x}"
                doc["span_id"] = f"{sc.span_id:016x}"
            for field in ID_FIELDS:
                v = ids.get(field)
                if v is not None:
                    doc[field] = v
            if extras:
                doc["extra"] = extras
            if exc:
                doc["exception"] = exc
            lines.append(_json_line(doc, r))

    @staticmethod
    def _from_stdlib(item: tuple[Any, ...]) -> tuple[Any, ...]:
        _, record, message, ids, sc = item
        # A bare ``object()`` on a record is a library's marker (LiteLLM stamps every record it
        # scrubbed with ``litellm_redacted=object()``): no data, only "<object object at 0x...>" noise.
        extras = {k: v for k, v in record.__dict__.items()
                  if k not in RESERVED and not k.startswith("_") and type(v) is not object}
        exc: dict[str, str] | None = None
        ei = record.exc_info
        if ei and ei[0] is not None:
            exc = {
                "type": _selftel.qualified_name(ei[0]),
                "message": _exc_message(ei[1]),
                "stacktrace": record.exc_text or "".join(traceback.format_exception(*ei)),
            }
        elif record.stack_info:
            exc = None
            extras["stack_info"] = record.stack_info
        code = {
            "code.file.path": record.pathname,
            "code.function.name": record.funcName,
            "code.line.number": record.lineno,
        }
        ts_ns = int(record.created * 1e9)
        return ts_ns, record.levelno, record.name, message, ids, sc, extras, exc, code

    @staticmethod
    def _from_structlog(item: tuple[Any, ...]) -> tuple[Any, ...]:
        _, ts_ns, levelno, name, event, ids, sc, raw_exc = item
        message = event.pop("event", "")
        for k in ("level", "timestamp", "logger", "exc_info", "exception", "trace_id", "span_id", *ID_FIELDS):
            event.pop(k, None)
        if not isinstance(message, str):
            message = _safe_str(message)
        return ts_ns, levelno, name, message, ids, sc, event, _structlog_exc(raw_exc), None


def _structlog_exc(raw: Any) -> dict[str, str] | None:
    """exception.* fields from an exc_info tuple, a formatted traceback or dict_tracebacks output."""
    if raw is None:
        return None
    if isinstance(raw, tuple):
        return {
            "type": _selftel.qualified_name(raw[0]),
            "message": _exc_message(raw[1]),
            "stacktrace": "".join(traceback.format_exception(*raw)),
        }
    if isinstance(raw, str):
        last = raw.strip().splitlines()[-1] if raw.strip() else ""
        typ, _, msg = last.partition(": ")
        return {"type": typ, "message": msg, "stacktrace": raw}
    if isinstance(raw, list) and raw and all(isinstance(s, dict) for s in raw):
        # structlog dict_tracebacks: rebuilt as the natural traceback text (the convention's
        # exception.stacktrace). Frame "locals" are never read: exporting local variables would leak data.
        top: dict[str, Any] = raw[0]
        return {
            "type": _safe_str(top.get("exc_type", "")),
            "message": _safe_str(top.get("exc_value", "")),
            "stacktrace": _render_dict_traceback(raw),
        }
    return None


def _render_dict_traceback(stacks: list[dict[str, Any]]) -> str:
    """structlog's ``[{exc_type, exc_value, frames, is_cause}, ...]`` (raised exception first) -> the text
    ``traceback.format_exception`` prints (causes first)."""
    out: list[str] = []
    for i, st in enumerate(reversed(stacks)):
        if i:
            out.append("\nThe above exception was the direct cause of the following exception:\n\n"
                       if stacks[len(stacks) - i].get("is_cause") else
                       "\nDuring handling of the above exception, another exception occurred:\n\n")
        frames = st.get("frames") or []
        if frames:
            out.append("Traceback (most recent call last):\n")
        for f in frames:
            if not isinstance(f, dict):
                continue
            out.append(f'  File "{_safe_str(f.get("filename", "?"))}", line {_safe_str(f.get("lineno", "?"))}, '
                       f'in {_safe_str(f.get("name", "?"))}\n')
            line = f.get("line")
            if line:
                out.append(f"    {_safe_str(line).strip()}\n")
        value = _safe_str(st.get("exc_value", ""))
        out.append(f"{_safe_str(st.get('exc_type', ''))}: {value}\n" if value else
                   f"{_safe_str(st.get('exc_type', ''))}\n")
    return "".join(out)


# ------------------------------------------------------------------------------------- process-wide
_live: weakref.WeakSet[LogPipeline] = weakref.WeakSet()
_pipeline: LogPipeline | None = None
_users: set[str] = set()
_lock = threading.Lock()


def _fork_child() -> None:
    for p in list(_live):
        try:
            p._after_fork()
        except Exception as exc:  # pragma: no cover
            _selftel.record_error("logs.fork", exc)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fork_child)


def acquire_pipeline(user: str, factory: Callable[[], LogPipeline]) -> LogPipeline:
    """Get (creating on first use) the process pipeline on behalf of ``user`` (an integration name)."""
    global _pipeline
    with _lock:
        if _pipeline is None:
            _pipeline = factory()
        _users.add(user)
        return _pipeline


def release_pipeline(user: str, timeout_s: float = 2.0) -> None:
    """Drop ``user``'s claim; the last one out drains (bounded) and stops the worker."""
    global _pipeline
    with _lock:
        _users.discard(user)
        p = _pipeline if not _users else None
        if p is not None:
            _pipeline = None
    if p is not None:
        p.stop(timeout_s)


def get_pipeline() -> LogPipeline | None:
    """The running pipeline, if any integration started one."""
    return _pipeline


def flush(timeout_s: float = 2.0) -> bool:
    """Hand every queued record to the LoggerProvider (bounded wait). Example: ``logs.flush(1.0)``."""
    p = _pipeline
    return True if p is None else p.flush(timeout_s)


def stats() -> Mapping[str, int]:
    """Counters of the running pipeline: queued, processed, dropped."""
    p = _pipeline
    if p is None:
        return {"queued": 0, "processed": 0, "dropped": 0}
    return {"queued": len(p._q), "processed": p.processed, "dropped": p.dropped}


def span_context() -> SpanContext | None:
    sc = trace.get_current_span().get_span_context()
    return sc if sc.is_valid else None


def pipeline_for(tel: Any) -> LogPipeline:
    """A pipeline configured from ``tel.config`` (the stdlib and structlog integrations share one)."""
    cfg = tel.config
    return LogPipeline(
        logger_provider=tel.logger_provider,
        json_stdout=cfg.log_json,
        max_queue_size=max(cfg.max_queue_size, 8192),
        redact=cfg.redact,
        max_attr_chars=cfg.attribute_max_chars,
        max_message_chars=cfg.log_max_chars,
    )
