"""Flush at every real way a process stops, not only at ``atexit``.

``atexit`` misses most real stops: ``uvicorn.run`` re-raises SIGTERM after its graceful shutdown (the
default action kills the process), gunicorn's ``UvicornWorker`` does the same in each worker, and
Dramatiq worker processes leave through multiprocessing's ``os._exit``. So the tail of every deploy was
lost. The hooks here, each bounded by ``Config.shutdown_timeout_s``:

* FastAPI/ASGI lifespan shutdown: the middleware calls :func:`flush_at_stop` (on a worker thread, so the
  event loop keeps running) after the app's own shutdown handlers, before it reports completion.
* Dramatiq: ``OtelMiddleware.after_worker_shutdown`` calls it once the worker threads finished.
* SIGTERM / SIGINT: :func:`install_signal_handlers` chains to the handler that was there before. A
  Python handler (uvicorn's, gunicorn's, the app's) is simply called: the server then stops gracefully
  through one of the paths above. The default action (terminate) is preceded by a bounded shutdown and
  then performed by re-raising the signal, so the exit status is what it would have been without us.

Each flush includes a final metric collection and export (``MeterProvider.force_flush``).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from agentpress_otel import _selftel

#: signal number -> the handler we replaced (what we chain to).
_previous: dict[int, Any] = {}
_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGINT", None)) if s is not None)


def flush_at_stop(reason: str) -> bool:
    """Export everything recorded so far (spans, logs, a final metric collection) within the shutdown deadline.

    Never raises; ``False`` when there is no active handle or the deadline passed.

    Example::

        flush_at_stop("lifespan")
    """
    try:
        from agentpress_otel._setup import current

        tel = current()
        if tel is None or tel.disabled:
            return False
        return tel.force_flush(timeout_s=tel.config.shutdown_timeout_s)
    except Exception as exc:
        _selftel.record_error(f"stop.{reason}", exc)
        return False


def _handler(signum: int, frame: FrameType | None) -> None:
    prev = _previous.get(signum, signal.SIG_DFL)
    if callable(prev):
        # The app or server owns this signal: it stops gracefully and one of our stop hooks (lifespan,
        # worker shutdown, atexit) flushes on the way out. Flushing here would block its event loop.
        prev(signum, frame)
        return
    if prev == signal.SIG_IGN:
        return
    # The default action would kill the process now, without atexit: shut down first (bounded), then let
    # the default action happen so the exit status stays "killed by SIGTERM" as without us.
    try:
        from agentpress_otel._setup import current

        tel = current()
        if tel is not None:
            tel.shutdown()
    except Exception as exc:
        _selftel.record_error("stop.signal", exc)
    try:
        signal.signal(signum, signal.SIG_DFL)
    except Exception as exc:  # pragma: no cover - main thread only, as we are
        _selftel.record_error("stop.signal", exc)
    signal.raise_signal(signum)


def install_signal_handlers() -> None:
    """Put our SIGTERM/SIGINT handler in front of the current one (main thread only; idempotent).

    A signal that is ignored, or handled outside Python, is left alone.

    Example::

        install_signal_handlers()
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal() works only there; the lifespan/worker hooks still flush
    for sig in _SIGNALS:
        try:
            cur = signal.getsignal(sig)
            if cur is _handler or cur is None or cur == signal.SIG_IGN:
                continue
            _previous[sig] = cur
            signal.signal(sig, _handler)
        except Exception as exc:
            _selftel.record_error("stop.install", exc)

