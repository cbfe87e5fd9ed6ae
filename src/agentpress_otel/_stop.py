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
from collections.abc import Callable
from types import FrameType
from typing import Any

from agentpress_otel import _selftel

#: signal number -> the handler we replaced (what we chain to).
_previous: dict[int, Any] = {}
_SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGINT", None)) if s is not None)
_G_SIGNAL = _selftel.guard("stop.signal")
_G_INSTALL = _selftel.guard("stop.install")


def run_with_deadline(fn: Callable[[], object], timeout_s: float, name: str) -> bool:
    """Run ``fn`` on a daemon thread and wait at most ``timeout_s``; ``True`` only if it finished and did not
    return ``False``.

    The SDK's flush and shutdown ignore their timeouts (they can block 30 s or more against a dead
    endpoint); a daemon thread we stop waiting for cannot hold the caller or the process exit.

    Example::

        run_with_deadline(provider.force_flush, 5.0, "flush")
    """
    done = threading.Event()
    ok: list[bool] = []

    def run() -> None:
        try:
            ok.append(fn() is not False)
        except Exception as exc:  # noqa: BLE001 - the guard's swallow, after marking the run failed
            ok.append(False)
            _selftel.swallow(name, exc)
        finally:
            done.set()

    t = threading.Thread(target=run, name=f"agentpress-otel-{name}", daemon=True)
    t.start()
    finished = done.wait(max(0.0, timeout_s))
    return finished and bool(ok) and ok[0]


def flush_at_stop(reason: str) -> bool:
    """Export everything recorded so far (spans, logs, a final metric collection) within the shutdown deadline.

    Never raises; ``False`` when there is no active handle or the deadline passed.

    Example::

        flush_at_stop("lifespan")
    """
    from agentpress_otel._setup import current

    tel = current()
    if tel is None or tel.disabled:
        return False
    with _selftel.guard(f"stop.{reason}"):
        return tel.force_flush(timeout_s=tel.config.shutdown_timeout_s)
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
    from agentpress_otel._setup import current

    tel = current()
    if tel is not None:
        with _G_SIGNAL:
            tel.shutdown()
    with _G_SIGNAL:  # main thread only, as we are: cannot fail in practice
        signal.signal(signum, signal.SIG_DFL)
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
        cur = signal.getsignal(sig)
        if cur is _handler or cur is None or cur == signal.SIG_IGN:
            continue
        with _G_INSTALL:  # an embedding runtime may refuse (ValueError): the lifespan/worker hooks still flush
            _previous[sig] = cur  # first: our handler may run as soon as it is installed
            signal.signal(sig, _handler)

