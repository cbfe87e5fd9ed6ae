"""Process and runtime metrics: CPU, memory, fds, threads, GC, and asyncio event-loop lag.

Integration name ``runtime``. Two parts:

* ``opentelemetry-instrumentation-system-metrics`` for what it covers, restricted to the
  per-process ``process.*`` and ``cpython.gc.*`` metrics (never host-wide ``system.*``: the
  Collector's host metrics receiver does that once per host, not once per worker process);
* an event-loop lag probe, which that package lacks: a timer callback re-armed every
  ``probe_interval_s`` on each running loop; the delay between when it was due and when it ran is
  recorded in ``agentpress.asyncio.loop_lag`` (histogram, s). ``agentpress.asyncio.loop_lag.max``
  (gauge, s) reports the worst lag over the last ``Config.runtime_interval_s``, *including a stall
  still in progress* (computed on the metric reader's thread, because a blocked loop cannot
  report itself).

Loops are found by wrapping ``asyncio.BaseEventLoop.run_forever`` (covers ``asyncio.run``,
uvicorn's asyncio loop and Dramatiq's AsyncIO middleware thread); a loop already running when
``instrument()`` is called is watched too; the FastAPI middleware calls :func:`watch_loop` on the first
request it sees on each loop, which covers uvloop servers; call it yourself for anything else (e.g. a
uvloop-based worker without HTTP). Fork-safe: a forked child re-binds psutil to its own pid and
forgets loops whose thread did not survive the fork.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, MeterProvider, NoOpMeterProvider, Observation

from agentpress_otel import _selftel
from agentpress_otel.integrations._registry import Skip

if TYPE_CHECKING:
    from agentpress_otel._setup import Telemetry

__all__ = [
    "LOOP_LAG",
    "LOOP_LAG_MAX",
    "NAME",
    "PROCESS_METRICS",
    "REQUIRES",
    "instrument",
    "max_loop_lag",
    "uninstrument",
    "watch_loop",
]

NAME = "runtime"
REQUIRES: str | None = None  # psutil (a dependency) feeds the process metrics; the loop probe is stdlib

#: Histogram of per-probe event-loop lag, unit s, attribute ``loop`` = ``main`` | ``background``.
LOOP_LAG = "agentpress.asyncio.loop_lag"
#: Gauge: worst lag over the last ``runtime_interval_s`` (and any stall still in progress), unit s.
LOOP_LAG_MAX = "agentpress.asyncio.loop_lag.max"

#: Metrics taken from opentelemetry-instrumentation-system-metrics, exported under the registry's names,
#: units and attributes (see :data:`_REGISTRY`). The deprecated ``process.runtime.*`` duplicates and
#: host-wide ``system.*`` are left out on purpose.
PROCESS_METRICS: dict[str, list[str] | None] = {
    "process.cpu.time": ["user", "system"],
    "process.cpu.utilization": ["user", "system"],
    "process.memory.usage": None,  # RSS, bytes
    "process.memory.virtual": None,
    "process.open_file_descriptor.count": None,
    "process.thread.count": None,
    "process.context_switches": ["involuntary", "voluntary"],
    "process.disk.io": ["read", "write"],
    "cpython.gc.collections": None,
    "cpython.gc.collected_objects": None,
    "cpython.gc.uncollectable_objects": None,
}


#: Upstream name -> (registry name, registry unit, upstream attribute -> registry attribute). Upstream
#: 0.66b2 leaves some units empty, keeps pre-registry labels (``type``, ``direction``, a duplicate string
#: ``generation``) and the deprecated ``process.open_file_descriptor.count``; what we export follows the
#: registry (semantic-conventions v1.44.0 process and cpython metrics).
_REGISTRY: dict[str, tuple[str, str, dict[str, str]]] = {
    "process.cpu.time": ("process.cpu.time", "s", {"type": "cpu.mode"}),
    "process.cpu.utilization": ("process.cpu.utilization", "1", {"type": "cpu.mode"}),
    "process.memory.usage": ("process.memory.usage", "By", {}),
    "process.memory.virtual": ("process.memory.virtual", "By", {}),
    "process.open_file_descriptor.count": ("process.unix.file_descriptor.count", "{file_descriptor}", {}),
    "process.thread.count": ("process.thread.count", "{thread}", {}),
    "process.context_switches": ("process.context_switches", "{context_switch}",
                                 {"type": "process.context_switch.type"}),
    "process.disk.io": ("process.disk.io", "By", {"direction": "disk.io.direction"}),
    "cpython.gc.collections": ("cpython.gc.collections", "{collection}", {}),
    "cpython.gc.collected_objects": ("cpython.gc.collected_objects", "{object}", {}),
    "cpython.gc.uncollectable_objects": ("cpython.gc.uncollectable_objects", "{object}", {}),
}
#: Upstream labels with no registry name (``generation`` duplicates ``cpython.gc.generation``).
_DROP = frozenset({"generation"})


def _translate(fn: Callable[[CallbackOptions], Iterable[Observation]],
               renames: dict[str, str]) -> Callable[[CallbackOptions], list[Observation]]:
    def cb(options: CallbackOptions) -> list[Observation]:
        out = []
        for o in fn(options):
            attrs = o.attributes
            if attrs:
                attrs = {renames.get(k, k): v for k, v in attrs.items() if k not in _DROP}
            out.append(Observation(o.value, attrs))
        return out

    return cb


class _RegistryMeter:
    """Hands upstream's observable instruments to the real meter under the registry's names (see _REGISTRY)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def _make(self, kind: str, name: str, callbacks: Any = None, unit: str = "", description: str = "") -> Any:
        new, reg_unit, renames = _REGISTRY.get(name, (name, unit, {}))
        cbs = [_translate(c, renames) for c in callbacks or ()]
        return getattr(self._inner, kind)(new, callbacks=cbs, unit=reg_unit or unit, description=description)

    def create_observable_counter(self, name: str, callbacks: Any = None, unit: str = "",
                                  description: str = "") -> Any:
        return self._make("create_observable_counter", name, callbacks, unit, description)

    def create_observable_up_down_counter(self, name: str, callbacks: Any = None, unit: str = "",
                                          description: str = "") -> Any:
        return self._make("create_observable_up_down_counter", name, callbacks, unit, description)

    def create_observable_gauge(self, name: str, callbacks: Any = None, unit: str = "",
                                description: str = "") -> Any:
        return self._make("create_observable_gauge", name, callbacks, unit, description)

    def __getattr__(self, attr: str) -> Any:  # anything else upstream may create goes through unchanged
        return getattr(self._inner, attr)


class _RegistryMeterProvider:
    def __init__(self, inner: MeterProvider) -> None:
        self._inner = inner

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        return _RegistryMeter(self._inner.get_meter(*args, **kwargs))


# Seconds; resolves the 1 ms .. 30 s range where event-loop stalls live.
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_G_SYSTEM = _selftel.guard("runtime.system_metrics")
_G_PROBE = _selftel.guard("runtime.loop_probe")  # never let telemetry break the loop
_G_WATCH = _selftel.guard("runtime.watch")
_G_MAX = _selftel.guard("runtime.loop_lag_max")
_G_MAX_API = _selftel.guard("runtime.max_loop_lag")
_G_FORK = _selftel.guard("runtime.fork")


# --------------------------------------------------------------------------------------------
# system-metrics wrapper
# --------------------------------------------------------------------------------------------


def _make_system_metrics(meter_provider: MeterProvider) -> Any:
    """Build and start a private SystemMetricsInstrumentor limited to :data:`PROCESS_METRICS`.

    Upstream's instrumentor is a singleton whose ``uninstrument()`` does nothing (instruments
    cannot be removed from a MeterProvider). We take a fresh instance per ``instrument()`` and gate
    every callback on a flag, so ``uninstrument()`` really stops the observations and a callback
    error is counted instead of reaching the reader.
    """
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    class _Gated(SystemMetricsInstrumentor):
        def __new__(cls, *args: Any, **kwargs: Any) -> _Gated:
            return object.__new__(cls)

        def __init__(self) -> None:
            super().__init__(config={k: (list(v) if v else None) for k, v in PROCESS_METRICS.items()})
            self.active = True
            for name in dir(type(self)):
                if name.startswith("_get_"):
                    setattr(self, name, self._gate(getattr(self, name)))

        def _gate(self, fn: Callable[[CallbackOptions], Iterable[Observation]]) -> Callable[..., list[Observation]]:
            def gated(options: CallbackOptions) -> list[Observation]:
                if not self.active:
                    return []
                with _G_SYSTEM:
                    return list(fn(options))
                return []

            return gated

        def rebind_pid(self) -> None:
            import psutil

            self._proc = psutil.Process(os.getpid())

    inst = _Gated()
    inst.instrument(meter_provider=_RegistryMeterProvider(meter_provider))
    return inst


# --------------------------------------------------------------------------------------------
# event-loop lag probe
# --------------------------------------------------------------------------------------------


class _Probe:
    """One timer chain on one loop. All methods except ``overdue`` run on the loop's thread."""

    __slots__ = (
        "attrs",
        "cur_max",
        "due_loop",
        "due_mono",
        "handle",
        "interval",
        "loop",
        "monitor",
        "prev_max",
        "stopped",
        "thread_ident",
        "win_start",
    )  # fmt: skip

    def __init__(self, loop: asyncio.AbstractEventLoop, monitor: _Monitor, interval: float) -> None:
        self.loop = loop
        self.monitor = monitor
        self.interval = interval
        self.attrs: dict[str, str] = {"loop": "main"}
        self.thread_ident = 0
        self.due_loop = 0.0
        self.due_mono: float | None = None  # when the pending probe is due, on time.monotonic()
        self.handle: asyncio.TimerHandle | None = None
        self.stopped = False
        self.cur_max = 0.0
        self.prev_max = 0.0
        self.win_start = time.monotonic()

    def start(self) -> None:
        """Arm the first probe; must run on the loop's thread (directly or via call_soon_threadsafe)."""
        if self.stopped:
            return
        self.thread_ident = threading.get_ident()
        main = threading.current_thread() is threading.main_thread()
        self.attrs = {"loop": "main" if main else "background"}
        self._arm()

    def _arm(self) -> None:
        loop = self.loop
        self.due_loop = loop.time() + self.interval
        self.due_mono = time.monotonic() + self.interval
        self.handle = loop.call_at(self.due_loop, self._fire)

    def _fire(self) -> None:
        with _G_PROBE:
            lag = self.loop.time() - self.due_loop
            self.due_mono = None
            if self.stopped:
                return
            # asyncio runs timers up to one clock resolution early: clamp.
            self.monitor.record(self, lag if lag > 0.0 else 0.0)
            self._arm()

    def cancel(self) -> None:
        """Stop re-arming; cancel the pending timer (loop thread only)."""
        self.stopped = True
        self.due_mono = None
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def overdue(self, now: float) -> float:
        """How late the pending probe already is (any thread); 0 if none pending or not late."""
        due = self.due_mono
        if due is None or self.stopped:
            return 0.0
        late = now - due
        return late if late > 0.0 else 0.0

    def window_max(self, now: float, window: float) -> float:
        if now - self.win_start >= 2 * window:
            return 0.0
        if now - self.win_start >= window:
            return self.cur_max
        return max(self.cur_max, self.prev_max)


class _Monitor:
    """The probes and instruments of one ``instrument()`` call."""

    def __init__(self, meter: Meter, *, interval: float, window: float) -> None:
        self.interval = interval
        self.window = window
        self.active = True
        self.lock = threading.Lock()
        self.probes: dict[int, _Probe] = {}  # id(loop) -> probe
        self.hist: Histogram = meter.create_histogram(
            LOOP_LAG,
            unit="s",
            description="Delay between when an event-loop probe callback was due and when it ran",
            explicit_bucket_boundaries_advisory=list(_LAG_BUCKETS),
        )
        meter.create_observable_gauge(
            LOOP_LAG_MAX,
            callbacks=[self._observe_max],
            unit="s",
            description="Worst event-loop lag over the last runtime interval, including a stall in progress",
        )

    # -- loop thread ----------------------------------------------------------------------------
    def record(self, probe: _Probe, lag: float) -> None:
        if not self.active:
            probe.cancel()
            return
        now = time.monotonic()
        if now - probe.win_start >= self.window:
            # Rotate: keep one previous window so a read just after rotation still sees the peak.
            probe.prev_max = probe.cur_max if now - probe.win_start < 2 * self.window else 0.0
            probe.cur_max = 0.0
            probe.win_start = now
        if lag > probe.cur_max:
            probe.cur_max = lag
        self.hist.record(lag, probe.attrs)

    def watch(self, loop: asyncio.AbstractEventLoop, *, from_loop_thread: bool, interval: float | None = None) -> bool:
        if not self.active or loop.is_closed():
            return False
        with self.lock:
            existing = self.probes.get(id(loop))
            if existing is not None and existing.loop is loop and not existing.stopped:
                return True
            probe = _Probe(loop, self, interval or self.interval)
            self.probes[id(loop)] = probe
        if from_loop_thread:
            probe.start()
        else:
            loop.call_soon_threadsafe(probe.start)
        return True

    def loop_stopped(self, loop: asyncio.AbstractEventLoop) -> None:
        """run_forever returned: drop the probe, so a stopped loop is never mistaken for a stall."""
        with self.lock:
            probe = self.probes.pop(id(loop), None)
        if probe is not None and probe.loop is loop:
            probe.cancel()

    def stop(self) -> None:
        self.active = False
        with self.lock:
            probes = list(self.probes.values())
            self.probes.clear()
        for p in probes:
            # Off the loop thread we may only flip the flag; the next firing sees it and stops.
            p.stopped = True
            p.due_mono = None

    def after_fork_in_child(self) -> None:
        self.lock = threading.Lock()  # it may have been held by a thread that no longer exists
        me = threading.get_ident()
        for key, p in list(self.probes.items()):
            if p.thread_ident != me:  # that loop's thread did not survive the fork
                p.stopped = True
                p.due_mono = None
                del self.probes[key]
            else:
                p.cur_max = p.prev_max = 0.0
                p.win_start = time.monotonic()

    # -- reader thread --------------------------------------------------------------------------
    def current_max(self) -> dict[str, float]:
        now = time.monotonic()
        out: dict[str, float] = {}
        with self.lock:
            probes = list(self.probes.values())
        for p in probes:
            try:
                if p.loop.is_closed():
                    self.loop_stopped(p.loop)
                    continue
            except Exception:  # noqa: S112, BLE001 - a foreign loop object without is_closed(); skip it
                continue
            v = max(p.window_max(now, self.window), p.overdue(now))
            role = p.attrs["loop"]
            if v > out.get(role, -1.0):
                out[role] = v
        return out

    def _observe_max(self, _options: CallbackOptions) -> Iterable[Observation]:
        if not self.active:
            return []
        with _G_MAX:
            return [Observation(v, {"loop": role}) for role, v in self.current_max().items()]
        return []


# --------------------------------------------------------------------------------------------
# module state, patch, fork
# --------------------------------------------------------------------------------------------

_lock = threading.RLock()
_monitor: _Monitor | None = None
_sysm: Any = None
_patched = False
_fork_hook_installed = False


def _run_forever_wrapper(wrapped: Callable[..., Any], instance: Any, args: Any, kwargs: Any) -> Any:
    mon = _monitor
    if mon is None or not mon.active or instance.is_running():
        return wrapped(*args, **kwargs)
    with _G_WATCH:
        # Loop not yet running: call_at just queues the first probe for when it does.
        mon.watch(instance, from_loop_thread=True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        with _G_WATCH:
            mon.loop_stopped(instance)


def _patch_asyncio() -> None:
    global _patched
    if _patched:
        return
    import wrapt

    wrapt.wrap_function_wrapper(asyncio.base_events, "BaseEventLoop.run_forever", _run_forever_wrapper)
    _patched = True


def _unpatch_asyncio() -> None:
    global _patched
    if not _patched:
        return
    fn = asyncio.base_events.BaseEventLoop.run_forever
    orig = getattr(fn, "__wrapped__", None)
    if orig is not None:
        asyncio.base_events.BaseEventLoop.run_forever = orig  # type: ignore[method-assign]
    _patched = False


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.RLock()
    with _G_FORK:
        if _sysm is not None:
            _sysm.rebind_pid()
        if _monitor is not None:
            _monitor.after_fork_in_child()


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------


def instrument(
    telemetry: Telemetry,
    *,
    probe_interval_s: float | None = None,
    system_metrics: bool = True,
    patch_asyncio: bool = True,
) -> None:
    """Start process metrics and event-loop lag probes on ``telemetry.meter_provider``.

    Raises :class:`~agentpress_otel.integrations.Skip` (nothing started) when metrics are off. Idempotent: a
    second call first undoes the previous one. ``probe_interval_s`` defaults to ``Config.loop_probe_interval_s``
    (0.25 s, ``AGENTPRESS_OTEL_LOOP_PROBE_INTERVAL_S``); the max-lag window is ``telemetry.config.runtime_interval_s``.
    The keyword options are for tests and benchmarks.

    Example::

        from agentpress_otel.integrations import runtime
        runtime.instrument(tel)              # done by agentpress_otel.instrument() when "runtime" is enabled
    """
    global _monitor, _sysm, _fork_hook_installed
    mp = telemetry.meter_provider
    if not telemetry.config.metrics or mp is None or isinstance(mp, NoOpMeterProvider):
        raise Skip("metrics are off")
    interval = float(probe_interval_s or telemetry.config.loop_probe_interval_s)
    window = max(float(telemetry.config.runtime_interval_s), interval)
    with _lock:
        uninstrument()
        if system_metrics:
            with _G_SYSTEM:  # psutil missing or broken: keep the loop probe
                _sysm = _make_system_metrics(mp)
        _monitor = _Monitor(mp.get_meter("agentpress_otel.runtime"), interval=interval, window=window)
        if patch_asyncio:
            _patch_asyncio()
        if not _fork_hook_installed:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        _monitor.watch(running, from_loop_thread=True)


def uninstrument() -> None:
    """Stop the probes and the process metrics and remove the asyncio patch. Safe to call twice.

    Example::

        runtime.uninstrument()
    """
    global _monitor, _sysm
    with _lock:
        _unpatch_asyncio()
        if _monitor is not None:
            _monitor.stop()
            _monitor = None
        if _sysm is not None:
            _sysm.active = False
            with _G_SYSTEM:
                _sysm.uninstrument()
            _sysm = None


def watch_loop(loop: asyncio.AbstractEventLoop | None = None, *, interval_s: float | None = None) -> bool:
    """Probe ``loop`` (default: the running loop) for lag; returns whether it is now watched.

    Needed only for loops the ``run_forever`` patch cannot see (uvloop, or a loop already running
    before ``instrument()``); harmless otherwise, and cheap enough (~1 µs when already watched) to
    call from a per-request middleware (ours calls it on the first request of each loop). Callable
    from any thread; never raises.

    Example::

        @asynccontextmanager
        async def lifespan(app):
            runtime.watch_loop()
            yield
    """
    mon = _monitor
    if mon is None:
        return False
    with _G_WATCH:
        # Cheap enough to call on every request: one lookup when the loop is already watched.
        running = asyncio.events._get_running_loop()
        if loop is None:
            if running is None:
                return False
            loop = running
        probe = mon.probes.get(id(loop))
        if probe is not None and probe.loop is loop and not probe.stopped:
            return True
        # Off the loop's thread the first probe is queued thread-safely (also fine before it runs).
        return mon.watch(loop, from_loop_thread=running is loop, interval=interval_s)
    return False


def max_loop_lag() -> float:
    """Worst lag (s) over the current window across watched loops, including a stall in progress.

    Useful for a health endpoint. ``0.0`` when nothing is watched.

    Example::

        if runtime.max_loop_lag() > 1.0:
            ...
    """
    mon = _monitor
    if mon is None:
        return 0.0
    with _G_MAX_API:
        return max(mon.current_max().values(), default=0.0)
    return 0.0


def _watched_loops() -> list[asyncio.AbstractEventLoop]:
    """Loops currently probed (tests)."""
    mon = _monitor
    if mon is None:
        return []
    with mon.lock:
        return [p.loop for p in mon.probes.values() if not p.stopped]

