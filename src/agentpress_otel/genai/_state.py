"""Module-level GenAI telemetry state: tracer, instruments, content options.

Works before :func:`configure` (global OTel providers, usually no-op), so decorated code is cheap and
safe even when ``instrument()`` was never called.
"""

from __future__ import annotations

import threading
import warnings
from collections import deque
from collections.abc import Sequence, Sized
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, Counter, Histogram, Meter, Observation, UpDownCounter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Tracer

from agentpress_otel import _selftel
from agentpress_otel._metric_batch import record_many
from agentpress_otel._version import __version__
from agentpress_otel.genai import _semconv as sc_names

if TYPE_CHECKING:
    from opentelemetry._logs import Logger, LoggerProvider

    from agentpress_otel._config import Config

SCOPE = "agentpress_otel.genai"
#: Declared on the GenAI tracer/meter/logger; the opt-in set has its own (see _semconv).
SCHEMA_URL = sc_names.SCHEMA_URL_BASELINE

_DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]
_TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
_AGENT_BUCKETS = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 51.2, 102.4, 204.8, 409.6]
_SCORE_BUCKETS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 3.0, 4.0, 5.0, 10.0]


#: Pending measurements above this are dropped (and counted) when no reader collects them.
MAX_PENDING = 100_000

_G_METRICS = _selftel.guard("genai.metrics")
_G_CONFIGURE = _selftel.guard("genai.configure")

# (instrument, value, attributes, span context), or (None, LLMRecord) for one whole LLM call.
Pending = tuple[Any, Any, Any, Any]


def exemplar_context(sc: SpanContext | None) -> Context:
    """A Context holding only ``sc`` (for exemplars), built at record time.

    Pending records keep the bare SpanContext, never the span or the call's Context: those reach the
    caller's objects (an LLMCall's request messages), which must not live until the next collection.
    """
    if sc is None or not sc.is_valid:
        return Context()
    return trace.set_span_in_context(NonRecordingSpan(sc), Context())


class LLMRecord:
    """Everything one LLM call contributes to metrics (replayed later when deferred)."""

    __slots__ = ("base", "chunk_times", "cost", "cost_attrs", "detail_tokens", "duration", "inp", "input_tokens",
                 "out", "output_tokens", "sc", "ttfc", "unpriced")

    def __init__(self, duration: float, ttfc: float | None, chunk_times: Sequence[float] | None,
                 input_tokens: int | None,
                 output_tokens: int | None, cost: float | None, unpriced: bool, base: dict[str, Any],
                 inp: dict[str, Any], out: dict[str, Any], cost_attrs: dict[str, Any],
                 sc: SpanContext | None,
                 detail_tokens: tuple[int | None, int | None, int | None] | None = None) -> None:
        self.duration = duration
        self.ttfc = ttfc
        # perf_counter() of each chunk (streams): the gaps between them are the time per output chunk, taken
        # at replay so that the request path only appends a timestamp per chunk.
        self.chunk_times = chunk_times
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cost = cost
        self.unpriced = unpriced
        self.base = base
        self.inp = inp
        self.out = out
        self.cost_attrs = cost_attrs
        self.sc = sc
        # (cache read, cache write, reasoning): only the latest conventions have metrics for them.
        self.detail_tokens = detail_tokens


def _full(pending: Sized) -> bool:
    """True (and the drop counted) when a deferred queue holds ``MAX_PENDING`` entries already."""
    if len(pending) < MAX_PENDING:
        return False
    _selftel.record_dropped("metrics", "genai_pending_full")
    return True


class Instruments:
    """Every GenAI metric instrument, created once per meter.

    With ``deferred=True`` (an SDK MeterProvider from ``configure``), hot-path code only appends
    ``(instrument, value, attributes, span context)`` to a deque; an observable-instrument callback, which
    the SDK runs at the start of every collection, replays them into the real instruments before the
    aggregations are read. The Python SDK spends ~0.25x a span per ``record()`` (attribute cleaning,
    hashing, exemplar check), so this keeps that work off the request path; values, attributes and
    exemplar trace links are unchanged. Only used when a reader exists (see :func:`configure`).
    """

    def __init__(self, meter: Meter, *, deferred: bool = False, latest: bool = False) -> None:
        self.deferred = deferred
        self.latest = latest
        self.pending: deque[Pending] = deque()
        self.sums: dict[tuple[int, int], list[Any]] = {}
        self._sum_lock = threading.Lock()
        n = sc_names
        self.operation_duration: Histogram = meter.create_histogram(
            n.CLIENT_OPERATION_DURATION, unit="s", description="GenAI operation duration (all retries)",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        if latest:
            self.inference_duration: Histogram = meter.create_histogram(
                n.INFERENCE_DURATION, unit="s", description="GenAI inference duration (all retries)",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            )
            self.usage: tuple[Counter, ...] = tuple(
                meter.create_counter(name, unit="{token}", description=desc) for name, desc in (
                    (n.USAGE_INPUT, "Input tokens (cached included)"),
                    (n.USAGE_OUTPUT, "Output tokens (reasoning included)"),
                    (n.USAGE_CACHE_READ, "Input tokens read from a cache"),
                    (n.USAGE_CACHE_WRITE, "Input tokens written to a cache"),
                    (n.USAGE_REASONING, "Reasoning output tokens"),
                ))
            self.op_tokens: tuple[Histogram, Histogram] = (
                meter.create_histogram(n.OPERATION_INPUT_TOKENS, unit="{token}",
                                       description="Input tokens per inference operation",
                                       explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS),
                meter.create_histogram(n.OPERATION_OUTPUT_TOKENS, unit="{token}",
                                       description="Output tokens per inference operation",
                                       explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS),
            )
        else:
            self.token_usage: Histogram = meter.create_histogram(
                n.TOKEN_USAGE, unit="{token}", description="Tokens used per LLM call, by gen_ai.token.type",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            )
        self.ttfc: Histogram = meter.create_histogram(
            n.INFERENCE_TTFC if latest else n.OPERATION_TTFC, unit="s", description="Time to first streamed chunk",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tpoc: Histogram = meter.create_histogram(
            n.INFERENCE_TPOC if latest else n.OPERATION_TPOC, unit="s",
            description="Time between streamed chunks after the first",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.tool_duration: Histogram = meter.create_histogram(
            n.EXECUTE_TOOL_DURATION, unit="s", description="Tool execution duration",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self.agent_duration: Histogram = meter.create_histogram(
            n.INVOKE_AGENT_DURATION, unit="s", description="Agent run duration",
            explicit_bucket_boundaries_advisory=_AGENT_BUCKETS,
        )
        self.cost: Counter = meter.create_counter(
            "agentpress.llm.cost", unit="USD", description="Estimated LLM spend from the offline price table",
        )
        self.unpriced: Counter = meter.create_counter(
            "agentpress.llm.unpriced", unit="{call}", description="LLM calls whose model has no price",
        )
        self.active_runs: UpDownCounter = meter.create_up_down_counter(
            "agentpress.agent.active_runs", unit="{run}", description="Agent runs in progress",
        )
        # Ours, not semconv: GenAI semconv defines the gen_ai.evaluation.result event but no evaluation metric.
        self.score: Histogram = meter.create_histogram(
            "agentpress.evaluation.score", unit="1",
            description="Evaluation / feedback scores by gen_ai.evaluation.name",
            explicit_bucket_boundaries_advisory=_SCORE_BUCKETS,
        )
        if deferred:
            meter.create_observable_gauge(
                "agentpress.genai.pending_measurements", callbacks=[self._drain_cb], unit="{measurement}",
                description="GenAI measurements waiting for the next collection (replayed at collect time)",
            )

    def record(self, instrument: Any, value: float, attrs: dict[str, Any], sc: SpanContext | None = None) -> None:
        """Record now, or queue for the next collection when deferred (see class docstring)."""
        if not self.deferred:
            if hasattr(instrument, "add"):
                instrument.add(value, attrs)
            else:
                instrument.record(value, attrs, context=exemplar_context(sc) if sc is not None else None)
            return
        if hasattr(instrument, "add"):
            # Counters are summed here, keyed by the (cached, long-lived) attribute dict's identity; the
            # entry keeps the dict alive, so its id cannot be reused while pending.
            key = (id(instrument), id(attrs))
            with self._sum_lock:
                entry = self.sums.get(key)
                if entry is None:
                    if _full(self.sums):
                        return
                    self.sums[key] = [instrument, attrs, value]
                else:
                    entry[2] += value
            return
        if not _full(self.pending):
            self.pending.append((instrument, value, attrs, sc))

    def record_llm(self, r: LLMRecord) -> None:
        """All metrics of one LLM call: one deque append on the hot path when deferred."""
        if not self.deferred:
            self._replay_llm(r, None)
            return
        if not _full(self.pending):
            self.pending.append((None, r, None, None))

    def _replay_llm(self, r: LLMRecord, sums: dict[tuple[int, int], list[Any]] | None,
                    batches: dict[tuple[int, int, bool], list[Any]] | None = None) -> None:
        ctx = exemplar_context(r.sc)
        duration = self.operation_duration
        if self.latest and r.base.get("gen_ai.operation.name") in sc_names.INFERENCE_OPERATIONS:
            duration = self.inference_duration
        self._hist(duration, (r.duration,), r.base, batches, ctx)
        if r.ttfc is not None:
            self._hist(self.ttfc, (r.ttfc,), r.base, batches, ctx)
            times = r.chunk_times
            if times and len(times) > 1:
                self._hist(self.tpoc, [b - a for a, b in pairwise(times)], r.base, batches)
        if self.latest:
            # Counters (cost proxy, keyed by modality) plus per-operation histograms (error.type, no modality).
            # r.inp is the counters' attribute set; r.base the histograms'.
            detail = r.detail_tokens or (None, None, None)
            for inst, value in zip(self.usage, (r.input_tokens, r.output_tokens, *detail), strict=True):
                if value is not None:
                    self._sum(inst, value, r.inp, sums)
            for hist, value in zip(self.op_tokens, (r.input_tokens, r.output_tokens), strict=True):
                if value is not None:
                    self._hist(hist, (value,), r.base, batches)
        else:
            if r.input_tokens is not None:
                self._hist(self.token_usage, (r.input_tokens,), r.inp, batches)
            if r.output_tokens is not None:
                self._hist(self.token_usage, (r.output_tokens,), r.out, batches)
        if r.cost is not None or r.unpriced:
            inst = self.unpriced if r.unpriced else self.cost
            amount: float | None = 1 if r.unpriced else r.cost
            if amount:
                self._sum(inst, amount, r.cost_attrs, sums)

    @staticmethod
    def _hist(inst: Any, values: Sequence[float], attrs: dict[str, Any],
              batches: dict[tuple[int, int, bool], list[Any]] | None, ctx: Context | None = None) -> None:
        """Record histogram values now, or group them per instrument and attribute set during a drain (each group
        goes to the SDK once, see :mod:`agentpress_otel._metric_batch`). ``ctx``: every value's exemplar context
        (its trace link), or None for none. Same identity keying as _sum."""
        if batches is None:
            c = ctx if ctx is not None else Context()
            for v in values:
                inst.record(v, attrs, context=c)
            return
        key = (id(inst), id(attrs), ctx is not None)
        e = batches.get(key)
        if e is None:
            e = batches[key] = [inst, attrs, [], None if ctx is None else []]
        e[2].extend(values)
        if ctx is not None:
            e[3].extend([ctx] * len(values))

    @staticmethod
    def _sum(inst: Any, value: float, attrs: dict[str, Any], sums: dict[tuple[int, int], list[Any]] | None) -> None:
        """Add to a counter now, or sum per attribute set during a drain (added once at its end)."""
        if sums is None:
            inst.add(value, attrs, context=Context())
            return
        key = (id(inst), id(attrs))
        e = sums.get(key)
        if e is None:
            sums[key] = [inst, attrs, value]
        else:
            e[2] += value

    def drain(self) -> int:
        """Replay pending measurements into the SDK instruments (collection thread); returns how many."""
        q = self.pending
        n = 0
        empty = Context()
        with self._sum_lock:
            sums, self.sums = self.sums, {}
        batches: dict[tuple[int, int, bool], list[Any]] = {}
        while True:
            try:
                inst, value, attrs, sc = q.popleft()
            except IndexError:
                break
            n += 1
            with _G_METRICS:
                if inst is None:
                    self._replay_llm(value, sums, batches)
                else:  # grouped per instrument and attribute dict (callers that reuse their dicts gain most)
                    self._hist(inst, (value,), attrs, batches, exemplar_context(sc) if sc is not None else None)
        for inst, attrs, total in sums.values():
            n += 1
            with _G_METRICS:
                inst.add(total, attrs, context=empty)
        for inst, attrs, values, contexts in batches.values():
            with _G_METRICS:
                record_many(inst, values, attrs, contexts)
        return n

    def _drain_cb(self, _opts: CallbackOptions) -> list[Observation]:
        n = self.drain()
        return [Observation(len(self.pending), {})] if n or self.pending else []  # no series while idle


def _global_meter() -> Meter:
    mp = metrics.get_meter_provider()
    # After our own shutdown the global provider is a shut-down SDK provider (globals cannot be unset):
    # asking it for a meter only logs a warning, so go straight to the no-op meter it would return.
    if getattr(mp, "_shutdown", False) is True:
        return metrics.NoOpMeter(SCOPE)
    return mp.get_meter(SCOPE, __version__, schema_url=SCHEMA_URL)


@dataclass(frozen=True, slots=True)
class GenAISettings:
    """What GenAI telemetry reads from :class:`~agentpress_otel._config.Config`, resolved once in :func:`configure`.

    Before ``instrument()`` (no Config yet) the defaults apply: no content, 16,384 characters, redaction on.

    Example::

        GenAISettings.from_config(load_config({"capture_content": True})).capture_content  # True
    """

    #: Record prompts, completions and tool arguments/results (``gen_ai.input.messages``...).
    capture_content: bool = False
    #: Captured content is cut to this many characters (after redaction).
    content_max_chars: int = 16_384
    #: Run captured content through the redaction engine.
    redact: bool = True
    #: Emit the latest experimental GenAI names (``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``).
    latest_semconv: bool = False

    @classmethod
    def from_config(cls, cfg: Config, *, latest_semconv: bool = False) -> GenAISettings:
        """The GenAI part of ``cfg``."""
        return cls(capture_content=cfg.capture_content, content_max_chars=cfg.content_max_chars,
                   redact=cfg.redact, latest_semconv=latest_semconv)


class Bindable(Protocol):
    """What :func:`configure` binds to: ``agentpress_otel.Telemetry``, or ``testing.capture()``'s handle."""

    @property
    def config(self) -> Config: ...

    @property
    def tracer_provider(self) -> trace.TracerProvider | None: ...

    @property
    def meter_provider(self) -> metrics.MeterProvider | None: ...

    @property
    def logger_provider(self) -> LoggerProvider | None: ...


class State:
    """The tracer, instruments, event logger and settings GenAI code reads at call time (``STATE``)."""

    def __init__(self, settings: GenAISettings | None = None) -> None:
        self.configured = False
        self.tracer: Tracer = trace.get_tracer(SCOPE, __version__, schema_url=SCHEMA_URL)
        self.instruments = Instruments(_global_meter())
        self.event_logger: Logger | None = None
        self.settings = settings or GenAISettings()
        # The handle that configured this state: a late shutdown of an older handle must not undo a newer one.
        self.owner: object = None


STATE = State()


def _has_readers(mp: Any) -> bool:
    """Defer only on an SDK MeterProvider with at least one reader: nothing else ever drains the queue.

    Without a reader (or with an unknown provider) records go straight to the instruments, which is
    cheap there, instead of piling up until ``MAX_PENDING``.
    """
    if not type(mp).__module__.startswith("opentelemetry.sdk"):
        return False
    readers = getattr(mp, "_metric_readers", None)
    if readers is None:  # SDK internals moved: older releases kept them on _sdk_config
        readers = getattr(getattr(mp, "_sdk_config", None), "metric_readers", None)
    return bool(readers)


def _bind(tel: Bindable) -> State:
    latest = sc_names.latest_requested()
    st = State(GenAISettings.from_config(tel.config, latest_semconv=latest))
    url = sc_names.schema_url(latest)
    tp, mp, lp = tel.tracer_provider, tel.meter_provider, tel.logger_provider
    if tp is not None:
        st.tracer = tp.get_tracer(SCOPE, __version__, schema_url=url)
    if mp is not None:
        st.instruments = Instruments(mp.get_meter(SCOPE, __version__, schema_url=url),
                                     deferred=_has_readers(mp), latest=latest)
    if lp is not None:
        st.event_logger = lp.get_logger(SCOPE, __version__, schema_url=url)
    st.configured = True
    st.owner = tel
    return st


def configure(tel: Bindable) -> None:
    """Bind GenAI telemetry to ``tel`` (an ``agentpress_otel.Telemetry``); called by ``instrument()``.

    Example::

        tel = agentpress_otel.instrument()
        agentpress_otel.genai.configure(tel)  # already done by instrument()
    """
    global STATE
    with _G_CONFIGURE:
        st = _bind(tel)
        from agentpress_otel.genai import prices

        try:
            prices.load_prices_file(tel.config.prices_file or None)
        except (OSError, ValueError, TypeError) as exc:  # an operator's bad file: reported; built-in prices stay
            _selftel.record_error("genai.prices_file", exc)
            warnings.warn(f"agentpress-otel: price file ignored: {exc}", RuntimeWarning, stacklevel=2)
        STATE = st


def unconfigure(owner: object = None) -> None:
    """Back to the unconfigured (global-provider) state (tests, ``uninstrument``).

    With ``owner``, only if that handle is still the one configured: ``Telemetry.shutdown`` finishes in a
    background thread when its deadline passes, and must not reset a state bound since to a newer handle.

    Example::

        agentpress_otel.genai.unconfigure()
    """
    global STATE
    if owner is not None and STATE.owner is not owner:
        return
    with _G_METRICS:
        STATE.instruments.drain()
    STATE = State()
