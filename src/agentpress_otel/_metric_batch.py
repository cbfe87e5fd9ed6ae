"""Many values of one histogram with one attribute set, at the cost of one.

The Python SDK (1.45) cleans, copies, sorts and hashes the attribute set on every ``Histogram.record`` (about
9 µs with the six attributes of a GenAI series, most of a streamed LLM call's metric cost: one
``time_per_output_chunk`` value per chunk). The GenAI metric drain (:mod:`agentpress_otel.genai._state`) groups
the values it replays by instrument and attribute set, and :func:`record_many` feeds each group to the SDK's
own aggregation objects: the attribute work is done once per group, each value costs one ``aggregate``.
Values that carry a trace link (an LLM call's duration and time to first chunk) come with one context each:
the exemplar filter is asked per value and the SDK's own ``aggregate`` offers the exemplar, as ``record`` does.

This reaches into SDK internals (pinned to one SDK version in pyproject), so every step checks the shape it
expects and falls back to the public ``record`` loop when anything differs: another SDK, a proxy instrument,
a disabled meter, for values without contexts an exemplar filter other than the SDK's trace-based or
always-off ones (those would want exemplars of empty contexts), or an error before anything is recorded (an
error after that is counted, and the values are not replayed: never counted twice).
``tests/unit/test_metric_batch.py`` compares both paths' exported points.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, TraceBasedExemplarFilter

from agentpress_otel import _selftel

try:  # the SDK's own helpers: the aggregation key must be computed exactly as it computes it
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
    from opentelemetry.sdk.metrics._internal.measurement import Measurement
except ImportError:  # pragma: no cover - another SDK layout: public path only
    _hash_attributes = None  # type: ignore[assignment]
    _ExplicitBucketHistogramAggregation = None  # type: ignore[assignment,misc]
    Measurement = None  # type: ignore[assignment,misc]

#: A plain (dict-backed, unslotted) dataclass with exactly these fields: see _measurement.
_PLAIN_MEASUREMENT = Measurement is not None and "__slots__" not in vars(Measurement) and tuple(
    getattr(Measurement, "__dataclass_fields__", {})) == ("value", "time_unix_nano", "instrument", "context",
                                                           "attributes")
#: What an explicit-bucket aggregation must have for the values to be added in one step.
_AGG_FIELDS = ("_lock", "_value", "_sum", "_min", "_max", "_boundaries", "_record_min_max", "_sample_exemplar")

__all__ = ["record_many"]

_EMPTY = Context()
_G = _selftel.guard("metrics.batch")
_NO_EXEMPLAR_FILTERS = (TraceBasedExemplarFilter, AlwaysOffExemplarFilter)
#: A view-instrument match must have all of these for the batch path.
_VIM_FIELDS = ("_view", "_lock", "_reset_on_collect", "_get_or_create_aggregation", "_attributes_aggregation")


def record_many(instrument: Any, values: Sequence[float], attrs: Mapping[str, Any],
                contexts: Sequence[Context] | None = None) -> None:
    """Record every value of ``values`` on histogram ``instrument`` with ``attrs`` and no exemplar context.

    Exactly what ``for v in values: instrument.record(v, attrs, context=Context())`` records, cheaper. With
    ``contexts`` (one per value), exactly what ``instrument.record(v, attrs, context=ctx)`` records for each
    pair: the exemplar filter is asked once per value and the value offered to the exemplar reservoir with
    its own context, as the SDK does; the attribute work is still done once for all (LLM call durations and
    times to first chunk carry trace links this way).

    Example::

        record_many(instruments.tpoc, [0.011, 0.009, 0.012], attrs)
        record_many(instruments.ttfc, [0.21, 0.35], attrs, [ctx_of_call_1, ctx_of_call_2])
    """
    if not values:
        return
    plan = None
    with _G:
        plan = _plan(instrument, values, attrs, sampled=contexts is not None)  # nothing is recorded yet
    if plan is None:
        for v, ctx in zip(values, contexts or _no_contexts(len(values)), strict=True):
            instrument.record(v, attrs, context=ctx)
        return
    with _G:  # values may now be in some aggregations: an error is counted, never replayed (counted twice)
        matches, cleaned, exemplar_filter = plan
        points = None if contexts is None else _sampled(instrument, values, contexts, cleaned, exemplar_filter)
        for vim, key, a in matches:
            # The SDK's own locking: a delta reader swaps its aggregations at collect, so look up and aggregate
            # under the match's lock; a cumulative one keeps them, so the lock is needed only to create one.
            if vim._reset_on_collect:
                with vim._lock:
                    points = _aggregate(vim._get_or_create_aggregation(key, a), values, points, instrument)
            else:
                agg = vim._attributes_aggregation.get(key)
                if agg is None:
                    with vim._lock:
                        agg = vim._get_or_create_aggregation(key, a)
                points = _aggregate(agg, values, points, instrument)


def _no_contexts(n: int) -> list[Context]:
    return [_EMPTY] * n


_Plan = tuple[list[tuple[Any, Any, Any]], dict[str, Any], Any]


def _plan(instrument: Any, values: Sequence[float], attrs: Mapping[str, Any], *, sampled: bool) -> _Plan | None:
    """((view match, aggregation key, its attributes) for every reader, the cleaned attributes, the exemplar
    filter), or None: use the public path."""
    if Measurement is None or _hash_attributes is None:
        return None
    consumer = getattr(instrument, "_measurement_consumer", None)
    enabled = getattr(instrument, "_is_enabled", None)
    storages = getattr(consumer, "_reader_storages", None)
    config = getattr(consumer, "_sdk_config", None)
    if not callable(enabled) or not enabled() or not isinstance(storages, dict) or config is None:
        return None
    exemplar_filter = getattr(config, "exemplar_filter", None)
    # Without contexts, the public path would ask the exemplar filter per value with an empty context: the SDK's
    # trace-based and always-off filters say no to every value. Any other filter (always-on, a custom one) goes
    # public. With contexts, the filter is asked per value (see _sampled), whatever it is.
    if not callable(getattr(exemplar_filter, "should_sample", None)) or (
            not sampled and type(exemplar_filter) not in _NO_EXEMPLAR_FILTERS):
        return None
    # Invalid values (negative, not finite) take the public path, which warns and drops them as it always does.
    if not (min(values) >= 0 and _finite_sum(values)):
        return None
    matches = [vim for storage in storages.values() for vim in storage._get_or_init_view_instrument_match(instrument)]
    if not all(all(hasattr(vim, f) for f in _VIM_FIELDS) for vim in matches):
        return None
    cleaned = dict(Measurement(values[0], 0, instrument, _EMPTY, attrs).attributes or {})  # the SDK's cleaning
    plan = []
    for vim in matches:
        keys = vim._view._attribute_keys
        a = cleaned if keys is None else {k: v for k, v in cleaned.items() if k in keys}
        plan.append((vim, _hash_attributes(a), a))
    return plan, cleaned, exemplar_filter


def _finite_sum(values: Sequence[float]) -> bool:
    """False if any value is NaN or infinite (one C-speed pass; two huge values that overflow the sum, or an int
    too large for a float, also give False: the public path then, harmlessly)."""
    try:
        return math.isfinite(sum(values))
    except OverflowError:
        return False


def _sampled(instrument: Any, values: Sequence[float], contexts: Sequence[Context], cleaned: dict[str, Any],
             exemplar_filter: Any) -> list[tuple[Any, bool]]:
    """(Measurement, offer an exemplar?) per value, as the SDK's measurement consumer builds and asks them."""
    m_attrs = dict(cleaned)  # what the exemplars keep (read only), apart from the aggregations' own dicts
    should = exemplar_filter.should_sample
    out = []
    for v, ctx in zip(values, contexts, strict=True):
        t = time.time_ns()
        out.append((_measurement(v, t, instrument, ctx, m_attrs), bool(should(v, t, m_attrs, ctx))))
    return out


def _measurement(value: float, t: int, instrument: Any, ctx: Context, attrs: dict[str, Any] | None) -> Any:
    """``Measurement(value, t, instrument, ctx, attrs)`` with ``attrs`` already cleaned: its frozen-dataclass
    ``__init__`` (a guarded ``object.__setattr__`` per field, then the cleaning again) cost twice the rest of a
    value's replay, so when the class has the fields we know its instance dict is filled directly."""
    if not _PLAIN_MEASUREMENT:
        m = Measurement(value, t, instrument, ctx, None)
        object.__setattr__(m, "attributes", attrs)  # a frozen dataclass: as its own __post_init__ does
        return m
    m = object.__new__(Measurement)
    d = m.__dict__
    d["value"] = value
    d["time_unix_nano"] = t
    d["instrument"] = instrument
    d["context"] = ctx
    d["attributes"] = attrs
    return m


def _aggregate(agg: Any, values: Sequence[float], points: list[tuple[Any, bool]] | None,
               instrument: Any) -> list[tuple[Any, bool]] | None:
    """Add ``values`` to one aggregation; returns the (Measurement, sample) list it used (for the next)."""
    if type(agg) is _ExplicitBucketHistogramAggregation and all(hasattr(agg, f) for f in _AGG_FIELDS):
        # What its aggregate() does per value (bucket count, sum, min, max), done for all values under one hold of
        # its lock; then, with contexts, what it does after releasing the lock: offer the sampled values' exemplars
        # in order (an unsampled offer is a no-op).
        h: Any = agg  # the SDK's private fields are not typed for this
        bounds = h._boundaries
        with h._lock:
            if h._value is None:
                h._value = h._get_empty_bucket_counts()
            counts, total = h._value, h._sum
            for v in values:
                counts[bisect_left(bounds, v)] += 1
                total += v  # one add per value, in order: the same float sum as aggregate() gives
            h._sum = total
            if h._record_min_max:
                h._min = min(h._min, min(values))
                h._max = max(h._max, max(values))
        for m, sample in points or ():
            if sample:
                h._sample_exemplar(m, True)
        return points
    if points is None:
        t = time.time_ns()
        # aggregate() reads .value only when no exemplar is offered
        points = [(_measurement(v, t, instrument, _EMPTY, None), False) for v in values]
    for m, sample in points:
        agg.aggregate(m, sample)
    return points
