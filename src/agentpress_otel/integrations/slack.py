"""In-process error alerts to Slack: a ``logging.Handler`` for errors whose stack traces metrics cannot carry.

Enabled by ``instrument(slack_webhook_url=...)`` or ``AGENTPRESS_OTEL_SLACK_WEBHOOK_URL`` (integration name
``slack``); records at ``slack_min_level`` (default ERROR) and above become Slack Block Kit messages with level,
service, environment, message, a truncated stack trace, the request/thread/project/run ids and a link to the
trace in Grafana.

It is built so that an error storm or a broken Slack never hurts the app:

* **dedup**: records with the same fingerprint (exception type, code location, logger) within ``dedup_window_s``
  (default 10 min) produce one message; when the window closes, ONE follow-up says how many repeats were
  suppressed. A window only opens for an alert that was actually handed to the sender (not rate limited, not
  dropped on a full queue) and is closed again if Slack never accepts it, so a follow-up never refers to a message
  nobody saw: the next occurrence is alerted afresh instead;
* **global rate limit**: a token bucket (``rate_per_minute``, ``burst``) caps what reaches Slack; the excess is
  dropped and counted (``agentpress_otel.exporter.dropped{signal="slack"}``);
* **never blocks**: ``emit`` only fingerprints and enqueues into a bounded queue; formatting, redaction and HTTP
  happen on one background thread, which honours ``429 Retry-After``, retries briefly, then drops with a count;
* **redacted**: every text that leaves (message, stack trace, ids) goes through ``agentpress_otel.redaction``.

Example::

    import logging
    from agentpress_otel import SlackAlertHandler

    handler = SlackAlertHandler(webhook_url="https://hooks.slack.com/services/...", service="api")
    logging.getLogger().addHandler(handler)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

from agentpress_otel import _selftel
from agentpress_otel._context import ID_ATTRIBUTES, current_ids
from agentpress_otel._text import truncate
from agentpress_otel.integrations._registry import Skip
from agentpress_otel.logs._levels import parse_level

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = ["NAME", "REQUIRES", "SlackAlertHandler", "instrument", "uninstrument"]

NAME = "slack"
REQUIRES: str | None = None  # stdlib HTTP only

_SIGNAL = "slack"
_HEADER_MAX = 150  # Slack limits: header plain_text 150, section text 3000, field text 2000
_SECTION_MAX = 2900
_FIELD_MAX = 1900
_EMOJI = {"CRITICAL": ":red_circle:", "ERROR": ":red_circle:", "WARNING": ":warning:"}
_GIVE_UP = -1.0
#: (id field, its label in the message): ``agent_run_id`` -> ``Agent run``
_ID_FIELDS = tuple((key, key.removesuffix("_id").replace("_", " ").capitalize()) for key in ID_ATTRIBUTES)
_G_EMIT = _selftel.guard("slack")
_G_SEND = _selftel.guard("slack")
_G_TRACE = _selftel.guard("slack.trace_id")
_G_STRUCTLOG = _selftel.guard("slack.structlog")


@dataclass
class _Event:
    """What the caller's thread captures; everything else is done on the sender thread."""

    kind: str  # "alert" | "summary"
    fingerprint: str
    level: str = "ERROR"
    logger: str = ""
    message: str = ""
    exc_type: str = ""
    location: str = ""
    stack: str = ""
    ids: dict[str, str] = field(default_factory=dict)
    trace_id: str = ""
    created: float = 0.0
    suppressed: int = 0
    window_s: float = 0.0


@dataclass
class _Window:
    started: float
    sample: _Event
    suppressed: int = 0


class SlackAlertHandler(logging.Handler):
    """Send log records at ``level`` and above to a Slack incoming webhook, deduplicated and rate limited.

    Example::

        handler = SlackAlertHandler(webhook_url=url, service="api", environment="prod",
                                    grafana_url="https://grafana.example.com")
        logging.getLogger().addHandler(handler)
        ...
        handler.stop()  # flushes what is queued, bounded by close_timeout_s
    """

    def __init__(
        self,
        *,
        webhook_url: str,
        level: int | str = logging.ERROR,
        service: str = "unknown_service",
        environment: str = "",
        grafana_url: str = "",
        dedup_window_s: float = 600.0,
        rate_per_minute: float = 30.0,
        burst: int = 10,
        max_queue: int = 100,
        timeout_s: float = 5.0,
        max_attempts: int = 3,
        max_retry_after_s: float = 300.0,
        stack_max_chars: int = 2500,
        close_timeout_s: float = 2.0,
    ) -> None:
        super().__init__(level=parse_level(level))
        self.webhook_url = webhook_url
        self.service = service
        self.environment = environment
        self.grafana_url = grafana_url.rstrip("/")
        self.dedup_window_s = dedup_window_s
        self.rate_per_minute = rate_per_minute
        self.burst = burst
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.max_retry_after_s = max_retry_after_s
        self.stack_max_chars = stack_max_chars
        self.close_timeout_s = close_timeout_s
        self.sent = 0  # messages Slack accepted (tests and `doctor`)
        self._max_queue = max_queue
        self._state_lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._tokens = float(burst)
        self._tokens_at = time.monotonic()
        self._queue: queue.Queue[_Event | None] = queue.Queue(maxsize=max_queue)  # None = wake up and stop
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._worker_ident: int | None = None
        self._pid = os.getpid()
        self._redact: Callable[[str], str] | None = None
        _handlers.add(self)  # fork safety: see _after_fork_in_child

    # ------------------------------------------------------------------------------ caller's thread
    def emit(self, record: logging.LogRecord) -> None:
        with _G_EMIT:  # never raise into the app's logging call
            if threading.get_ident() == self._worker_ident or record.name.startswith("agentpress_otel"):
                return  # never alert about our own sending (feedback loop)
            fp, exc_type, location = _fingerprint(record)
            now = time.monotonic()
            with self._state_lock:
                win = self._windows.get(fp)
                if win is not None and now - win.started < self.dedup_window_s:
                    win.suppressed += 1
                    return
                if win is not None:  # window over: its summary goes out before the new alert
                    self._windows.pop(fp)
                    if win.suppressed:
                        self._enqueue(self._summary(fp, win))
                if not self._take_token(now):
                    # Not sent, so no window: a later occurrence is alerted in full once the bucket refills,
                    # instead of a follow-up about a message nobody saw.
                    _selftel.record_dropped(_SIGNAL, "rate_limited")
                    return
                ev = self._capture(record, fp, exc_type, location)
                if self._enqueue(ev):
                    self._windows[fp] = _Window(now, ev)

    def _capture(self, record: logging.LogRecord, fp: str, exc_type: str, location: str) -> _Event:
        # Runs once per fingerprint and window (not per repeat): read what only the caller's context knows.
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - the app's bad %-format or __str__ must not lose the alert
            message = str(record.msg)
        stack = ""
        if record.exc_info and record.exc_info[1] is not None:
            stack = "".join(traceback.format_exception(*record.exc_info))
        elif record.stack_info:
            stack = record.stack_info
        return _Event("alert", fp, record.levelname, record.name, message, exc_type, location, stack,
                      _record_ids(record), _current_trace_id(record), record.created)

    def _summary(self, fp: str, win: _Window) -> _Event:
        s = win.sample
        return _Event("summary", fp, s.level, s.logger, s.message, s.exc_type, s.location, "", s.ids, "",
                      time.time(), win.suppressed, self.dedup_window_s)

    def _take_token(self, now: float) -> bool:
        self._tokens = min(float(self.burst), self._tokens + (now - self._tokens_at) * self.rate_per_minute / 60.0)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def _enqueue(self, ev: _Event) -> bool:
        self._ensure_worker()
        try:
            self._queue.put_nowait(ev)
        except queue.Full:
            _selftel.record_dropped(_SIGNAL, "queue_full")
            return False
        return True

    def _ensure_worker(self) -> None:
        if self._pid != os.getpid():  # forked child: the parent's thread and queue do not exist here
            self._pid = os.getpid()
            self._queue = queue.Queue(maxsize=self._max_queue)
            self._worker = None
        if self._worker is None or not self._worker.is_alive():
            if self._stop.is_set():
                return
            self._worker = threading.Thread(target=self._run, name="agentpress-otel-slack", daemon=True)
            self._worker.start()

    # ------------------------------------------------------------------------------- sender thread
    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        sweep_every = max(0.05, min(1.0, self.dedup_window_s / 10.0))
        next_sweep = time.monotonic() + sweep_every
        while not self._stop.is_set():
            try:
                ev = self._queue.get(timeout=sweep_every)
            except queue.Empty:
                ev = None
            else:
                if ev is None:
                    self._queue.task_done()
            if ev is not None:
                try:
                    with _G_SEND:
                        self._deliver(ev)
                finally:
                    self._queue.task_done()
            elif self._stop.is_set():
                break
            if time.monotonic() >= next_sweep:
                self._sweep()
                next_sweep = time.monotonic() + sweep_every

    def _sweep(self) -> None:
        """Send the one follow-up for windows that closed with suppressed repeats; forget idle fingerprints."""
        now = time.monotonic()
        with self._state_lock:
            done = [fp for fp, w in self._windows.items() if now - w.started >= self.dedup_window_s]
            closed = [(fp, self._windows.pop(fp)) for fp in done]
            for fp, win in closed:
                if win.suppressed:
                    self._enqueue(self._summary(fp, win))

    def _deliver(self, ev: _Event) -> None:
        body = json.dumps(self.build_message(ev)).encode()
        for attempt in range(1, self.max_attempts + 1):
            wait = self._post(body)
            if wait is None:
                self.sent += 1
                return
            if wait < 0 or attempt == self.max_attempts or self._stop.wait(wait):
                break
        _selftel.record_dropped(_SIGNAL, "send_failed")
        if ev.kind == "alert":
            # Slack never showed it: close its window, so the next occurrence is a full alert, not a follow-up.
            with self._state_lock:
                win = self._windows.get(ev.fingerprint)
                if win is not None and win.sample is ev:
                    del self._windows[ev.fingerprint]
                    if win.suppressed:
                        _selftel.record_dropped(_SIGNAL, "send_failed", win.suppressed)

    def _post(self, body: bytes) -> float | None:
        """POST once; None on success, else how long to wait before retrying."""
        req = urllib.request.Request(self.webhook_url, data=body, method="POST",  # noqa: S310 - configured URL
                                     headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - user-configured URL
                resp.read()
                return None
        except urllib.error.HTTPError as err:
            if err.code == 429:
                return min(_retry_after(err.headers.get("Retry-After")), self.max_retry_after_s)
            if 400 <= err.code < 500:
                return _GIVE_UP  # bad token, channel gone, payload refused: retrying will not help
            return 1.0
        except (urllib.error.URLError, OSError, ValueError):
            return 1.0

    # ------------------------------------------------------------------------------------ message
    def build_message(self, ev: _Event) -> dict[str, Any]:
        """The Slack Block Kit payload for ``ev``, every text redacted."""
        r = self._redactor()
        env = f" ({r(self.environment)})" if self.environment else ""
        message = r(ev.message)
        ids = {k: r(v) for k, v in ev.ids.items() if v}
        if ev.kind == "summary":
            mins = ev.window_s / 60.0
            span = f"{mins:g} min" if mins >= 1 else f"{ev.window_s:g} s"
            head = f":repeat: {ev.suppressed} more × {ev.level} in {self.service}{env}"
            text = (f"*{ev.suppressed} repeats* of this {ev.level.lower()} were suppressed in the last {span}:\n"
                    f"> {truncate(message, 500)}")
            ctx = [f"{ev.exc_type or 'log'} at `{r(ev.location)}` · logger `{ev.logger}`"]
            return {
                "text": truncate(f"{head}: {message}", 300),
                "blocks": [
                    _header(head),
                    {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, _SECTION_MAX)}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(c, 300)} for c in ctx]},
                ],
            }
        head = f"{_EMOJI.get(ev.level, ':large_blue_circle:')} {ev.level} in {self.service}{env}"
        fields = [f"*Logger*\n`{ev.logger}`"]
        if ev.exc_type:
            fields.append(f"*Exception*\n`{ev.exc_type}`")
        fields.append(f"*Where*\n`{r(ev.location)}`")
        fields += [f"*{label}*\n`{ids[key]}`" for key, label in _ID_FIELDS if key in ids]
        if ev.trace_id:
            fields.append(f"*Trace*\n`{ev.trace_id}`")
        blocks: list[dict[str, Any]] = [
            _header(head),
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(f"*{_escape(message)}*", _SECTION_MAX)}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": truncate(f, _FIELD_MAX)} for f in fields[:10]]},
        ]
        if ev.stack:
            # The end of a stack trace matters most: the innermost frames and the exception line.
            stack = truncate(r(ev.stack).rstrip(), min(self.stack_max_chars, _SECTION_MAX - 10), keep="tail")
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"```{stack}```"}})
        buttons = []
        if self.grafana_url and ev.trace_id:
            buttons.append(_button("Open trace in Grafana", self._trace_link(ev.trace_id)))
        if self.grafana_url and ids.get("thread_id"):
            buttons.append(_button("Thread explorer", f"{self.grafana_url}/d/agentpress-thread-explorer?"
                                   + urllib.parse.urlencode({"var-thread_id": ids["thread_id"]})))
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"<!date^{int(ev.created)}^{{date_short_pretty}} {{time_secs}}|{_utc(ev.created)}>"
            f" · repeats within {self.dedup_window_s / 60:g} min are summarised once · fp `{ev.fingerprint[:10]}`")}]})
        return {"text": truncate(f"{head}: {message}", 300), "blocks": blocks}

    def _trace_link(self, trace_id: str) -> str:
        left = {"datasource": "tempo", "range": {"from": "now-1h", "to": "now"},
                "queries": [{"refId": "A", "datasource": {"type": "tempo", "uid": "tempo"},
                             "queryType": "traceql", "query": trace_id}]}
        return f"{self.grafana_url}/explore?" + urllib.parse.urlencode({"orgId": "1", "left": json.dumps(left)})

    def _redactor(self) -> Callable[[str], str]:
        if self._redact is None:
            # Imported here: redaction pulls in its detectors only when an alert is actually sent.
            from agentpress_otel.redaction import redact

            self._redact = redact
        return self._redact

    # ---------------------------------------------------------------------------------- lifecycle
    def flush(self, timeout: float | None = None) -> None:
        """Wait (bounded) until queued messages were handled. Called by logging at shutdown."""
        deadline = time.monotonic() + (self.close_timeout_s if timeout is None else timeout)
        while self._queue.unfinished_tasks and time.monotonic() < deadline and self._worker is not None \
                and self._worker.is_alive():
            time.sleep(0.01)

    def close(self) -> None:
        """Drain (bounded) but keep sending.

        ``logging.config.dictConfig`` (which uvicorn runs at start-up) calls ``close()`` on every existing
        handler while leaving them attached to their loggers; stopping here would silently end all alerts.
        :meth:`stop` really stops (``uninstrument()`` calls it).
        """
        with _G_SEND:
            self.flush()

    def stop(self) -> None:
        """Drain (bounded) and stop the sender thread."""
        try:
            with _G_SEND:
                self.flush()
                self._stop.set()
                try:
                    self._queue.put_nowait(None)  # wake the sender so it exits now, not at its next poll
                except queue.Full:
                    pass
                w = self._worker
                if w is not None and w is not threading.current_thread():
                    w.join(timeout=self.close_timeout_s)
        finally:
            super().close()


def _retry_after(raw: str | None) -> float:
    try:
        return max(0.0, float(raw)) if raw is not None else 1.0
    except ValueError:
        return 1.0


def _fingerprint(record: logging.LogRecord) -> tuple[str, str, str]:
    """(hash, exception type, code location): where it was raised for exceptions, else the logging call."""
    exc_type = ""
    location = f"{record.pathname}:{record.lineno} in {record.funcName}"
    if record.exc_info and record.exc_info[0] is not None:
        et, _ev, tb = record.exc_info
        exc_type = f"{et.__module__}.{et.__qualname__}" if et.__module__ != "builtins" else et.__qualname__
        if tb is not None:
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            location = f"{code.co_filename}:{tb.tb_lineno} in {code.co_name}"
    digest = hashlib.blake2b(f"{exc_type}|{location}|{record.name}".encode(), digest_size=12).hexdigest()
    return digest, exc_type, location


def _record_ids(record: logging.LogRecord) -> dict[str, str]:
    """Ids from the context, overridden by ids given on the record (``extra=`` or structlog's bound values)."""
    ids = current_ids()
    for key, _label in _ID_FIELDS:
        v = record.__dict__.get(key)
        if v is not None:
            ids[key] = str(v)
    return ids


def _current_trace_id(record: logging.LogRecord) -> str:
    with _G_TRACE:
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            return f"{ctx.trace_id:032x}"
    tid = getattr(record, "otelTraceID", "") or getattr(record, "trace_id", "")
    return str(tid) if tid and str(tid) != "0" else ""


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, _HEADER_MAX), "emoji": True}}


def _button(label: str, url: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url[:3000]}


# ------------------------------------------------------------------------------------ fork safety
# Every live handler, so a forked child (gunicorn/uvicorn workers, Dramatiq processes) can replace locks that a
# thread of the parent may have held at fork time: that thread does not exist in the child, so the lock would stay
# held forever and the first error logged in the child would hang the app. The sender thread and queue are
# replaced lazily by _ensure_worker (it compares pids).
_handlers: weakref.WeakSet[SlackAlertHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    for h in list(_handlers):
        h._state_lock = threading.Lock()


# ------------------------------------------------------------------------------------ integration
_handler: SlackAlertHandler | None = None
_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def instrument(telemetry: Telemetry) -> None:
    """Attach a :class:`SlackAlertHandler` to the root logger; :class:`Skip` without ``Config.slack_webhook_url``.

    Idempotent. Example::

        agentpress_otel.instrument(slack_webhook_url=os.environ["SLACK_WEBHOOK"])  # calls this
    """
    global _handler
    cfg = telemetry.config
    if not cfg.slack_webhook_url:
        raise Skip("no slack_webhook_url configured")
    with _lock:
        if _handler is not None:
            return
        handler = SlackAlertHandler(
            webhook_url=cfg.slack_webhook_url,
            level=cfg.slack_min_level,
            service=cfg.service_name,
            environment=cfg.environment,
            grafana_url=cfg.grafana_url,
        )
        logging.getLogger().addHandler(handler)
        _handler = handler


def uninstrument() -> None:
    """Detach and close the handler (idempotent)."""
    global _handler
    with _lock:
        handler, _handler = _handler, None
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.stop()


def current_handler() -> SlackAlertHandler | None:
    return _handler


def alert_from_structlog(logger_name: str, levelno: int, event: Mapping[str, Any]) -> None:
    """Hand a structlog event to the Slack handler (AgentPress logs through structlog only, not stdlib).

    Called by the structlog integration for WARNING and above; a no-op without a handler or below its level.
    """
    handler = _handler
    if handler is None or levelno < handler.level:
        return
    with _G_STRUCTLOG:
        ei: Any = event.get("exc_info")
        if ei is True or not isinstance(ei, (tuple, BaseException)):
            # exc_info=True, or dict_tracebacks already turned it into data: we are still inside the except block.
            ei = sys.exc_info() if sys.exc_info()[0] is not None else None
        elif isinstance(ei, BaseException):
            ei = (type(ei), ei, ei.__traceback__)
        rec = logging.LogRecord(logger_name, levelno, "structlog", 0, str(event.get("event", "")), None, ei)
        for key in ID_ATTRIBUTES:
            if key in event:
                setattr(rec, key, event[key])
        handler.handle(rec)
