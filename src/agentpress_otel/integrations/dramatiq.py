"""Dramatiq: trace context and ids through every message, a consumer span per message, queue metrics.

``instrument()`` adds :class:`OtelMiddleware` to the global broker (if one is set) and to every broker
created afterwards (``Broker.__init__`` is wrapped), so the AgentPress shape
``RedisBroker(middleware=[AsyncIO()])`` created at import time is covered either way.

* ``before_enqueue``: a PRODUCER span ``send {queue}`` (``{messaging.operation.name} {destination}``);
  ``traceparent``/``tracestate``/``baggage`` (with
  thread/run/project/user/request ids) and the enqueue time go into ``message.options["otel"]``.
  ``after_enqueue`` ends it and counts the message. Dramatiq has no hook for a failed enqueue (encoding or
  Redis errors raise between the two hooks), so each instrumented broker's ``enqueue`` is also wrapped on
  the instance: when it raises, the span ends with that error and nothing is counted.
* ``before_process_message``: the context is restored (ids included) and a CONSUMER span
  ``process {queue}`` starts, child of the producer span, so the worker's agent run is in the same trace
  as the HTTP request that enqueued it. Async actors (``AsyncIO`` middleware) inherit it: Dramatiq
  schedules the coroutine with ``run_coroutine_threadsafe``, which copies the worker thread's context.
* Our metrics, labelled by ``queue`` and ``actor`` only: ``agentpress.queue.messages.enqueued``,
  ``.processed`` (+ ``status`` = ok/failed/skipped), ``.failed`` (+ ``error.type``), ``.retried`` and
  ``agentpress.queue.wait.duration`` (s, enqueue or ETA -> start); plus the convention's
  ``messaging.process.duration`` (s) with its own attributes (``messaging.system``,
  ``messaging.operation.name``, ``messaging.destination.name``, ``error.type``) and advised buckets.
* The actor name and the delivery count have no registry attribute: they are ``agentpress.dramatiq.*``.
* Fork safety: :func:`set_process_boot_hook` registers a callable run in ``after_process_boot`` (each
  forked worker process), where the caller re-creates exporters/threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
import wrapt
from dramatiq.broker import Broker
from dramatiq.common import q_name
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentpress_otel import _context, _selftel, _stop
from agentpress_otel._version import __version__
from agentpress_otel.genai import error_type

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = ["NAME", "REQUIRES", "OtelMiddleware", "instrument", "set_process_boot_hook", "uninstrument"]

NAME = "dramatiq"
REQUIRES: str | None = "dramatiq"
_G_DRAMATIQ = _selftel.guard("dramatiq")  # a broker's enqueue and the worker's message never see our failures
_G_IDENTITY = _selftel.guard("dramatiq.identity")
_G_BOOT_HOOK = _selftel.guard("dramatiq.boot_hook")

OPTION_KEY = "otel"
SCOPE = "agentpress_otel.dramatiq"
_WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
#: Advised boundaries of messaging.process.duration (semconv messaging metrics).
_PROCESS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
ACTOR_ATTR = "agentpress.dramatiq.actor.name"
#: Producer spans between before_enqueue and after_enqueue; above this the oldest are ended as failed (a
#: safety net for enqueues that bypass the wrapped ``broker.enqueue``).
MAX_PRODUCING = 4096

_lock = threading.Lock()
_installed = False
_tel: Any = None
_brokers: list[Broker] = []
_boot_hook: Callable[[Any], None] | None = None


def set_process_boot_hook(fn: Callable[[Any], None] | None) -> None:
    """Run ``fn(broker)`` in every Dramatiq worker process after it forks (``after_process_boot``).

    Example::

        set_process_boot_hook(lambda broker: agentpress_otel.instrument(service_name="worker"))
    """
    global _boot_hook
    _boot_hook = fn


class _Metrics:
    def __init__(self, meter_provider: Any = None) -> None:
        meter = (meter_provider.get_meter(SCOPE, __version__) if meter_provider is not None
                 else metrics.get_meter(SCOPE, __version__))
        self.enqueued = meter.create_counter("agentpress.queue.messages.enqueued", unit="{message}",
                                             description="Messages sent to a Dramatiq queue")
        self.processed = meter.create_counter("agentpress.queue.messages.processed", unit="{message}",
                                              description="Messages a worker finished (status=ok|failed|skipped)")
        self.failed = meter.create_counter("agentpress.queue.messages.failed", unit="{message}",
                                           description="Messages whose actor raised")
        self.retried = meter.create_counter("agentpress.queue.messages.retried", unit="{message}",
                                            description="Messages re-enqueued for a retry")
        self.wait = meter.create_histogram("agentpress.queue.wait.duration", unit="s",
                                           description="Time from enqueue (or ETA) to processing start",
                                           explicit_bucket_boundaries_advisory=_WAIT_BUCKETS)
        self.process = meter.create_histogram("messaging.process.duration", unit="s",
                                              description="Duration of processing operation",
                                              explicit_bucket_boundaries_advisory=_PROCESS_BUCKETS)


def _process_attrs(queue: str) -> dict[str, str]:
    """messaging.process.duration's attributes (messaging.system and operation.name are required)."""
    return {"messaging.system": "dramatiq", "messaging.operation.name": "process",
            "messaging.destination.name": queue}


class _Inflight:
    __slots__ = ("attrs", "ids_token", "outer_ids", "span", "t0", "token")

    def __init__(self, span: Any, token: object, ids_token: Any, outer_ids: Any, t0: float,
                 attrs: dict[str, str]) -> None:
        self.span = span
        self.token = token
        self.ids_token = ids_token
        self.outer_ids = outer_ids
        self.t0 = t0
        self.attrs = attrs


def _ids_from_kwargs(message: Any) -> dict[str, str]:
    """AgentPress passes its ids as actor kwargs (``run_agent_background.send(agent_run_id=..., ...)``)."""
    kwargs = getattr(message, "kwargs", None)
    if not isinstance(kwargs, dict):
        return {}
    return {k: str(v) for k in _context.ID_ATTRIBUTES if isinstance(v := kwargs.get(k), (str, int)) and str(v)}


class OtelMiddleware(dramatiq.Middleware):
    """Dramatiq middleware: propagation, producer/consumer spans and queue metrics (see module doc)."""

    def __init__(self, tel: Any = None) -> None:
        self._tracer = (tel.tracer_provider.get_tracer(SCOPE, __version__) if tel is not None
                        and getattr(tel, "tracer_provider", None) is not None else trace.get_tracer(SCOPE, __version__))
        self._m = _Metrics(getattr(tel, "meter_provider", None) if tel is not None else None)
        self._producing: dict[str, tuple[Any, dict[str, str], bool]] = {}  # id -> (span, attrs, is_retry)
        self._inflight: dict[str, _Inflight] = {}

    @staticmethod
    def _attrs(message: Any) -> dict[str, str]:
        # Canonical queue name: delayed messages sit in "X.DQ" first, but they are X's backlog.
        return {"queue": q_name(str(message.queue_name)), "actor": str(message.actor_name)}

    # ------------------------------------------------------------------ producer
    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        with _G_DRAMATIQ:
            attrs = self._attrs(message)
            retries = int(message.options.get("retries", 0) or 0)
            prev = message.options.get(OPTION_KEY)
            is_retry = bool(retries) and (prev or {}).get("retry_seen") != retries
            if isinstance(prev, dict) and not is_retry and not trace.get_current_span().get_span_context().is_valid:
                # The worker moving a delayed message from "X.DQ" to "X": same delivery, same trace, counted once.
                return
            parent = None
            if retries and isinstance(prev, dict) and not trace.get_current_span().get_span_context().is_valid:
                # Dramatiq runs after_* hooks in reverse order, so Retries re-enqueues after our consumer
                # span ended: continue the original trace from the carrier the message still holds.
                parent = _context._propagator().extract({k: v for k, v in prev.items() if isinstance(v, str)})
            span = self._tracer.start_span(
                f"send {attrs['queue']}", kind=SpanKind.PRODUCER, context=parent,
                attributes={"messaging.system": "dramatiq", "messaging.operation.type": "send",
                            "messaging.operation.name": "send",
                            "messaging.destination.name": attrs["queue"],
                            "messaging.message.id": message.message_id,
                            ACTOR_ATTR: message.actor_name},
            )
            ctx = trace.set_span_in_context(span, parent)
            token = otel_context.attach(ctx)
            try:
                carrier = _context.inject({})
            finally:
                otel_context.detach(token)
            carrier["enqueued_at_ms"] = int(time.time() * 1000)
            if retries:
                carrier["retry_seen"] = retries
            message.options[OPTION_KEY] = carrier
            old = self._producing.pop(message.message_id, None)  # a broker retrying the same message
            if old is not None:
                self._end_failed(old, "enqueue_retried")
            self._producing[message.message_id] = (span, attrs, is_retry)
            while len(self._producing) > MAX_PRODUCING:
                self._end_failed(self._producing.pop(next(iter(self._producing))), "enqueue_incomplete")

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        item = self._producing.pop(message.message_id, None)
        if item is not None:
            with _G_DRAMATIQ:
                span, attrs, is_retry = item
                # Counted here, not in before_enqueue: only messages that reached the broker.
                self._m.enqueued.add(1, attrs)
                if is_retry:
                    self._m.retried.add(1, attrs)
                span.end()

    def enqueue_failed(self, message: Any, exc: BaseException) -> None:
        """``broker.enqueue`` raised after ``before_enqueue``: end the producer span with the error."""
        with _G_DRAMATIQ:
            item = self._producing.pop(getattr(message, "message_id", None), None)  # type: ignore[arg-type]
            if item is not None:
                self._end_failed(item, error_type(exc), exc)

    @staticmethod
    def _end_failed(item: tuple[Any, dict[str, str], bool], etype: str, exc: BaseException | None = None) -> None:
        span = item[0]
        try:
            with _G_DRAMATIQ:
                span.set_status(Status(StatusCode.ERROR, str(exc)[:512] if exc is not None else etype))
                span.set_attribute("error.type", etype)
                if exc is not None:
                    span.record_exception(exc)
        finally:
            span.end()

    # ------------------------------------------------------------------ consumer
    def before_process_message(self, broker: Any, message: Any) -> None:
        with _G_DRAMATIQ:
            attrs = self._attrs(message)
            carrier = dict(message.options.get(OPTION_KEY) or {})
            now_ms = time.time() * 1000
            start_ms = max(float(carrier.get("enqueued_at_ms") or message.message_timestamp),
                           float(message.options.get("eta") or 0))
            self._m.wait.record(max(0.0, (now_ms - start_ms) / 1000.0), attrs)
            ctx = _context._propagator().extract({k: v for k, v in carrier.items() if isinstance(v, str)})
            ids = {**_context._ids_from_baggage(ctx), **_ids_from_kwargs(message)}
            outer = _context.get_ids_raw()
            ids_token = _context.set_ids({**(outer or {}), **ids}) if ids else None
            span = self._tracer.start_span(
                f"process {attrs['queue']}", context=ctx, kind=SpanKind.CONSUMER,
                attributes={"messaging.system": "dramatiq", "messaging.operation.type": "process",
                            "messaging.operation.name": "process",
                            "messaging.destination.name": attrs["queue"],
                            "messaging.message.id": message.message_id,
                            ACTOR_ATTR: message.actor_name,
                            "agentpress.dramatiq.delivery_count": int(message.options.get("retries", 0) or 0) + 1},
            )
            token = otel_context.attach(trace.set_span_in_context(span, ctx))
            self._inflight[message.message_id] = _Inflight(span, token, ids_token, outer, time.perf_counter(), attrs)

    def _finish(self, message: Any, status: str, exception: BaseException | None = None) -> None:
        item = self._inflight.pop(message.message_id, None)
        if item is None:
            return
        try:
            with _G_DRAMATIQ:
                attrs = item.attrs
                dur = time.perf_counter() - item.t0
                if exception is not None:
                    et = error_type(exception)
                    item.span.set_status(Status(StatusCode.ERROR, str(exception)[:512]))
                    item.span.set_attribute("error.type", et)
                    item.span.record_exception(exception)
                    self._m.failed.add(1, {**attrs, "error.type": et})
                    self._m.process.record(dur, {**_process_attrs(attrs["queue"]), "error.type": et})
                else:
                    self._m.process.record(dur, _process_attrs(attrs["queue"]))
                if status == "skipped":
                    item.span.set_attribute("agentpress.dramatiq.skipped", True)
                self._m.processed.add(1, {**attrs, "status": status})
                item.span.end()
        finally:
            with _G_DRAMATIQ:
                otel_context.detach(item.token)  # type: ignore[arg-type]
            if item.ids_token is not None:
                _context.reset_ids(item.ids_token, item.outer_ids)

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        self._finish(message, "failed" if exception is not None else "ok", exception)

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._finish(message, "skipped")

    # ------------------------------------------------------------------ stop
    def after_worker_shutdown(self, broker: Any, worker: Any) -> None:
        """The worker threads finished their messages: export it all now. Worker processes of the
        ``dramatiq`` CLI leave through multiprocessing's ``os._exit``, so atexit never runs there."""
        _stop.flush_at_stop("dramatiq")

    # ------------------------------------------------------------------ fork safety
    def after_process_boot(self, broker: Any) -> None:
        with _G_IDENTITY:  # a worker module imported by the API named the worker: this process is that worker
            from agentpress_otel import _setup

            _setup.apply_worker_identity()
        hook = _boot_hook
        if hook is not None:
            with _G_BOOT_HOOK:
                hook(broker)


def _enqueue_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return wrapped(*args, **kwargs)
    except BaseException as exc:
        message = args[0] if args else kwargs.get("message")
        broker = getattr(wrapped, "__self__", None)
        for m in getattr(broker, "middleware", ()):
            if isinstance(m, OtelMiddleware):
                m.enqueue_failed(message, exc)
        raise


def _add_to(broker: Broker) -> None:
    if any(isinstance(m, OtelMiddleware) for m in broker.middleware):
        return
    broker.add_middleware(OtelMiddleware(_tel))
    # On the instance, so broker subclasses overriding enqueue (Redis, RabbitMQ, Stub) are covered too.
    if not isinstance(broker.__dict__.get("enqueue"), wrapt.FunctionWrapper):
        broker.enqueue = wrapt.FunctionWrapper(broker.enqueue, _enqueue_wrapper)  # type: ignore[method-assign]
    _brokers.append(broker)


def _init_wrapper(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    if _installed:
        with _G_DRAMATIQ:
            _add_to(instance)
    return result


def instrument(telemetry: Telemetry) -> None:
    """Add :class:`OtelMiddleware` to the current and all future Dramatiq brokers. Idempotent.

    Example::

        from agentpress_otel.integrations import dramatiq as ap_dramatiq
        ap_dramatiq.instrument(tel)
    """
    global _installed, _tel
    with _lock:
        _tel = telemetry
        if _installed:
            return
        _installed = True
        if not isinstance(Broker.__init__, wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(Broker, "__init__", _init_wrapper)
        current = dramatiq.broker.global_broker
        if current is not None:
            _add_to(current)


def uninstrument() -> None:
    """Remove the middleware from every broker it was added to and stop hooking new brokers.

    Example::

        ap_dramatiq.uninstrument()
    """
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
        init = Broker.__dict__.get("__init__")
        if isinstance(init, wrapt.FunctionWrapper):
            Broker.__init__ = init.__wrapped__  # type: ignore[method-assign]
        for b in _brokers:
            b.middleware[:] = [m for m in b.middleware if not isinstance(m, OtelMiddleware)]
            if isinstance(b.__dict__.get("enqueue"), wrapt.FunctionWrapper):
                del b.enqueue
        _brokers.clear()
