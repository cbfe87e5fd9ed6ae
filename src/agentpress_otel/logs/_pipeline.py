"""The never-blocking log pipeline: cheap snapshot on the caller, everything else on one worker.

Caller thread (inside ``logger.info(...)``): format the message (args may be mutated later), read
the ids and the current span context, append a tuple to a bounded deque. No locks, no I/O, no
redaction, no JSON. When the deque is full the record is dropped and counted.

Worker thread, a batch at a time: extras, exception formatting, redaction (one scan over the batch's
strings, then only the records with a candidate match), one OTel ``LogRecord`` per record to the
``LoggerProvider`` (whose ``BatchLogRecordProcessor`` does the network I/O on its own thread) and,
optionally, one JSON line per record to stdout (orjson, one write per batch). The JSON and OTLP value
helpers are in ``_json`` and ``_otlp``, exception fields in ``_exc``.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from opentelemetry import trace
from opentelemetry._logs import LoggerProvider, LogRecord
from opentelemetry.trace import SpanContext

from agentpress_otel import _context, _selftel
from agentpress_otel._export import MAX_QUEUE_BYTES, RECORD_OVERHEAD_BYTES
from agentpress_otel._text import to_text, truncate
from agentpress_otel.logs._exc import from_exc_info, structlog_exc
from agentpress_otel.logs._json import iso, json_line, trace_hex
from agentpress_otel.logs._otlp import attr_value, emit, make_record, severity
from agentpress_otel.redaction import PreRedactedLogRecord, Redactor, default_redactor
from agentpress_otel.redaction._exporters import add_scannable

#: JSON field name -> OTLP attribute name of the correlation ids (stable; see docs/logging.md).
ID_FIELDS: Mapping[str, str] = _context.ID_ATTRIBUTES
current_ids = _context.current_ids

# Attributes every stdlib LogRecord has; anything else on a record came from ``extra=``.
RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}

_LEVEL_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning", logging.ERROR: "error",
                logging.CRITICAL: "critical"}  # fmt: skip
WORKER_THREAD_NAME = "agentpress-otel-logs"
#: How long the worker waits for a fuller batch after the first record arrives (bounds the added latency).
LINGER_S = 0.05
#: How long an idle worker sleeps before looking at the queue on its own. A record put into the queue while it
#: waits wakes it (see submit); this is only a safety net. An idle app's worker wakes once a second, not ten times.
IDLE_WAKE_S = 1.0

STDLIB = 0
STRUCTLOG = 1

#: Stack traces longer than this are cut (head and tail kept) even when redaction is off.
_MAX_STACK_CHARS = 65_536
#: Keys structlog's own processors add: not ``extra`` data (the ids go to their own fields).
_STRUCTLOG_OWN = ("level", "timestamp", "logger", "exc_info", "exception", "trace_id", "span_id", *ID_FIELDS)
_G_WRITE = _selftel.guard("logs.stdout")
_G_FORK = _selftel.guard("logs.fork")
_G_SCAN = _selftel.guard("logs.redaction_scan")


class Entry:
    """One log record as the worker handles it, whichever library it came from."""

    __slots__ = ("code", "exc", "extras", "ids", "levelno", "message", "name", "sc", "ts_ns")

    def __init__(self, ts_ns: int, levelno: int, name: str, message: Any, ids: dict[str, Any],
                 sc: SpanContext | None, extras: dict[Any, Any], exc: dict[str, Any] | None,
                 code: tuple[str, str, int] | None) -> None:  # fmt: skip
        self.ts_ns = ts_ns
        self.levelno = levelno
        self.name = name
        self.message = message
        self.ids = ids
        self.sc = sc
        self.extras = extras
        self.exc = exc
        self.code = code


#: A record's attribute names (its ``__dict__`` keys, in order) -> its ``extra=`` names: a call site's records all
#: have the same names, so the set difference is done once per call site. Only log workers use it (single get/set
#: calls, atomic under the GIL; a lost entry is only computed again).
_EXTRA_NAMES: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _extra_names(d: dict[Any, Any]) -> tuple[Any, ...]:
    """The ``extra=`` names of a record whose attributes are ``d``, in the order they were set (leading ``_``
    names are a library's private state, never data)."""
    keys = tuple(d)
    names = _EXTRA_NAMES.get(keys)
    if names is None:
        names = tuple(k for k in keys if k not in RESERVED and not (type(k) is str and k.startswith("_")))
        if len(_EXTRA_NAMES) >= 4096:
            _EXTRA_NAMES.clear()
        _EXTRA_NAMES[keys] = names
    return names


def from_stdlib(item: tuple[Any, ...]) -> Entry:
    """An :class:`Entry` from the stdlib handler's snapshot ``(STDLIB, record, message, ids, span context)``."""
    _, record, message, ids, sc = item
    d = record.__dict__
    # A bare ``object()`` on a record is a library's marker (LiteLLM stamps every record it
    # scrubbed with ``litellm_redacted=object()``): no data, only "<object object at 0x...>" noise.
    extras = {k: v for k in _extra_names(d) if type(v := d[k]) is not object}
    exc: dict[str, str] | None = None
    ei = record.exc_info
    if ei and ei[0] is not None:
        exc = from_exc_info(ei, record.exc_text)
    elif record.stack_info:
        extras["stack_info"] = record.stack_info
    code = (record.pathname, record.funcName, record.lineno)
    return Entry(int(record.created * 1e9), record.levelno, record.name, message, ids, sc, extras, exc, code)


def from_structlog(item: tuple[Any, ...]) -> Entry:
    """An :class:`Entry` from the structlog processor's snapshot (its event dict is ours to pop from)."""
    _, ts_ns, levelno, name, event, ids, sc, raw_exc = item
    message = event.pop("event", "")
    for k in _STRUCTLOG_OWN:
        event.pop(k, None)
    if not isinstance(message, str):
        message = to_text(message)
    return Entry(ts_ns, levelno, name, message, ids, sc, event, structlog_exc(raw_exc), None)


def _redact_str_values(r: Redactor, d: dict[str, Any]) -> dict[str, Any]:
    return {k: r.redact(v) if isinstance(v, str) else v for k, v in d.items()}


def redact_entry(e: Entry, r: Redactor) -> None:
    """Redact ``e``'s message, extras, exception fields and ids in place (key rules and a scan of each string)."""
    e.message = r.redact(e.message) if isinstance(e.message, str) else r.redact_value(e.message)
    if e.extras:
        e.extras = r.redact_value(e.extras)
    if e.exc:
        e.exc = _redact_str_values(r, e.exc)
    if e.ids:  # ids come from the app (a secret passed as a thread id must not leak through them)
        e.ids = _redact_str_values(r, e.ids)


def needs_redaction(entries: Sequence[Entry | Exception], r: Redactor) -> set[int]:
    """Indices of the ``entries`` that :func:`redact_entry` could change.

    Most records hold no secret: the strings of all records of a batch are checked together
    (:meth:`Redactor.dirty`, one call into RE2 for the batch instead of one per string, and no GIL hand-off
    per record), and only a record with a candidate match, a sensitive key or a non-primitive value is redacted.
    """
    return r.dirty(entries, lambda e, flat: _add_plain_texts(e, r, flat) if isinstance(e, Entry) else None)


def _add_plain_texts(e: Entry, r: Redactor, flat: list[str]) -> bool:
    """Append the strings of ``e`` to ``flat`` and answer True when redacting it is only scanning them (str message,
    extras that :func:`add_scannable` accepts); else False (``flat`` may then hold some of them)."""
    msg = e.message
    if not isinstance(msg, str):
        return False
    flat.append(msg)
    if not add_scannable(r, e.extras, flat, lists=False):  # lists and dicts become JSON text: redact_entry's job
        return False
    if e.exc:
        flat += [v for v in e.exc.values() if isinstance(v, str)]
    flat += [v for v in e.ids.values() if isinstance(v, str)]
    return True


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
        # The worker clears _wake only when it finds the queue empty, just before it waits: a producer that finds it
        # clear wakes it (whatever the queue length: two threads appending at once may both see two records), and
        # one that finds it set pays one flag read.
        if not self._wake.is_set():
            self._wake.set()
        elif len(q) == self._batch:
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
                    self._wake.wait(IDLE_WAKE_S)
                continue
            if len(q) < self._batch and not self._full.is_set():
                # Linger a little for more records: one wake-up per batch instead of one per record
                # keeps the worker from trading the GIL with the app thread on every log call.
                self._full.wait(LINGER_S)
            self._full.clear()
            self._busy = True
            try:
                self._drain_batch(q)
            finally:
                self._busy = bool(q)

    def _drain_batch(self, q: collections.deque[tuple[int, tuple[Any, ...]]]) -> None:
        # Prepare a batch from a copy of the queue's head (taken in one C call under the GIL; producers only
        # append), then pop the records one at a time as before: a record stop() takes meanwhile is counted there
        # as dropped, and every record is either handed on or counted, exactly once.
        try:
            head = list(itertools.islice(q, self._batch))
        except RuntimeError:  # "deque mutated during iteration": a GC callback let a producer in; next round
            return
        r = (self._redactor or default_redactor()) if self.redact else None
        prepared, dirty = self._prepare(head, r)
        # One buffer for the batch's JSON lines: each line is copied in and freed at once, so orjson's next output
        # reuses its memory (keeping 512 lines alive until a join cost 2 us per line in fresh allocations).
        lines = bytearray()
        ok = freed = 0
        for place in range(len(head)):
            k = place
            try:
                cost, item = q.popleft()
            except IndexError:  # emptied (stop() drains concurrently)
                break
            freed += cost
            if item is not head[k][1]:  # stop() took some meanwhile: find this one's place in the batch
                k = next((j for j, (_, it) in enumerate(head) if it is item), -1)
            try:
                e = self._entry(item, r) if k < 0 else prepared[k]  # not in the batch: prepared on its own
                if isinstance(e, Exception):
                    raise e
                clean = k >= 0 and dirty is not None and k not in dirty
                self._export(e, item[0] == STDLIB, r, clean, lines)
                ok += 1
            except Exception as exc:  # noqa: BLE001 - also a drop to count; _lost() re-raises our bugs
                self._lost(exc)
        self.processed += ok
        with self._bytes_lock:
            self._bytes -= freed
        if lines:
            self._write(lines)

    def _prepare(
        self, head: list[tuple[int, tuple[Any, ...]]], r: Redactor | None
    ) -> tuple[list[Entry | Exception], set[int] | None]:
        """Entries for a batch (or the error each one raised), and which of them need redaction (None: all)."""
        prepared: list[Entry | Exception] = []
        for _, item in head:
            try:
                prepared.append(self._entry(item, r))
            except Exception as exc:  # noqa: BLE001 - counted (and re-raised in strict mode) when popped
                prepared.append(exc)
        dirty: set[int] | None = None
        if r is not None:
            with _G_SCAN:
                dirty = needs_redaction(prepared, r)
        return prepared, dirty

    def _lost(self, exc: Exception) -> None:
        """A record is lost to an error: count it as a drop as well as an error (re-raised in strict mode)."""
        self.dropped += 1
        _selftel.record_dropped("logs", "error")
        _selftel.swallow("logs.worker", exc)

    def _export(self, e: Entry, stdlib: bool, r: Redactor | None, clean: bool, lines: bytearray) -> None:
        """Redact ``e`` (unless the batch scan found it ``clean``), export it, and add its JSON line."""
        if r is not None and not clean:
            redact_entry(e, r)
        if self.logger_provider is not None:
            self._emit_otlp(e, r)
        if self.json_stdout and stdlib:
            lines += self._json_line(e, r)

    def _write(self, data: bytearray) -> None:
        with _G_WRITE:
            out = self._stream()
            buf = getattr(out, "buffer", None)
            if buf is not None:
                buf.write(data)
                buf.flush()
            else:
                out.write(data.decode())
                out.flush()

    def _otel_logger(self, name: str) -> Any:
        lg = self._loggers.get(name)
        if lg is None and self.logger_provider is not None:
            lg = self.logger_provider.get_logger(name or "root")
            if len(self._loggers) < 10_000:
                self._loggers[name] = lg
        return lg

    @staticmethod
    def _entry(item: tuple[Any, ...], r: Redactor | None) -> Entry:
        e = from_stdlib(item) if item[0] == STDLIB else from_structlog(item)
        exc = e.exc
        if exc and isinstance(exc.get("stacktrace"), str):
            # Cut before scanning (cost is linear), keeping the head and the innermost frames.
            limit = r.max_chars if r is not None else _MAX_STACK_CHARS
            exc["stacktrace"] = truncate(exc["stacktrace"], limit, keep="middle")
        return e

    def _emit_otlp(self, e: Entry, r: Redactor | None) -> None:
        lg = self._otel_logger(e.name)
        if lg is None:
            return
        limit = self.max_attr_chars
        attrs: dict[str, Any] = {}
        for k, v in e.extras.items():
            if not isinstance(k, str):
                k = to_text(k) if r is None else r.redact(to_text(k))
            t = type(v)
            if t is str:  # the common cases inline: a third of the attribute work per record
                attrs[k] = v if len(v) <= limit else truncate(v, limit)
            elif t is int or t is float or t is bool or v is None:
                attrs[k] = v
            else:
                attrs[k] = attr_value(v, limit, r)
        for field, value in e.ids.items():
            attr = ID_FIELDS.get(field)
            if attr is not None and value is not None:
                attrs[attr] = str(value)
        if e.exc:
            for k, v in e.exc.items():
                if isinstance(v, str) and len(v) > limit:
                    # a stack trace keeps its head and its end (the innermost frames, the exception line)
                    v = truncate(v, limit, keep="middle" if k == "stacktrace" else "head")
                attrs[f"exception.{k}"] = v
        code = e.code
        if code is not None:
            attrs["code.file.path"], attrs["code.function.name"], attrs["code.line.number"] = code
        msg = e.message
        body = msg if isinstance(msg, str) else attr_value(msg, limit, r)
        cls = PreRedactedLogRecord if r is not None else LogRecord
        lr = make_record(cls, e.ts_ns, severity(e.levelno), body, attrs, e.sc)
        emit(lg, lr)

    @staticmethod
    def _json_line(e: Entry, r: Redactor | None) -> bytes:
        levelno = e.levelno
        doc: dict[str, Any] = {
            "timestamp": iso(e.ts_ns),
            "level": _LEVEL_NAMES.get(levelno) or logging.getLevelName(levelno).lower(),
            "logger": e.name,
            "message": e.message,
        }
        sc = e.sc
        if sc is not None and sc.is_valid:
            doc["trace_id"], doc["span_id"] = trace_hex(sc)
        ids = e.ids
        for field in ID_FIELDS:
            v = ids.get(field)
            if v is not None:
                doc[field] = v
        if e.extras:
            doc["extra"] = e.extras
        if e.exc:
            doc["exception"] = e.exc
        return json_line(doc, r)


# ------------------------------------------------------------------------------------- process-wide
_live: weakref.WeakSet[LogPipeline] = weakref.WeakSet()
_pipeline: LogPipeline | None = None
_users: set[str] = set()
_lock = threading.Lock()


def _fork_child() -> None:
    for p in list(_live):
        with _G_FORK:
            p._after_fork()


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
