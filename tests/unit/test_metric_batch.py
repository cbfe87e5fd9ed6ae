"""record_many() puts into the SDK exactly what the public ``Histogram.record`` loop puts there.

Each case builds two real SDK MeterProviders with an InMemoryMetricReader, feeds the same values through the
public loop on one and through ``record_many`` on the other, and compares the collected points (bucket counts,
sum, count, min, max, attributes, exemplars). The cases cover what the batch path must hand back to the public
path: an exemplar filter that samples, invalid values, views that drop attribute keys, delta readers.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import AlwaysOnExemplarFilter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View

from agentpress_otel import _metric_batch
from agentpress_otel._metric_batch import record_many

ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-5-mini",
         "gen_ai.response.model": "gpt-5-mini-2025", "server.address": "127.0.0.1", "server.port": 8080}
BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28]


def _provider(*, delta: bool = False, views: tuple[View, ...] = (), **kw: Any) -> tuple[MeterProvider, Any]:
    temporality = {Histogram: AggregationTemporality.DELTA} if delta else {}
    reader = InMemoryMetricReader(preferred_temporality=temporality)
    return MeterProvider(metric_readers=[reader], views=list(views), **kw), reader


def _points(reader: Any, data: Any = None) -> list[tuple[Any, ...]]:
    data = data or reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for p in m.data.data_points:
                    # every field of the point but its timestamps; exemplars by count (their times differ)
                    d = {k: v for k, v in dataclasses.asdict(p).items()
                         if k not in ("start_time_unix_nano", "time_unix_nano", "exemplars")}
                    out.append((m.name, repr(sorted(d.items(), key=lambda kv: kv[0])), len(p.exemplars)))
    return sorted(out)


def _both(values: list[float], attrs: dict[str, Any] = ATTRS, *, batches: int = 1, **kw: Any) -> tuple[Any, Any]:
    """Points after the public loop and after record_many, on two providers built the same way."""
    results = []
    for batch in (False, True):
        mp, reader = _provider(**kw)
        h = mp.get_meter("t").create_histogram("gen_ai.client.operation.time_per_output_chunk", unit="s",
                                               explicit_bucket_boundaries_advisory=BUCKETS)
        got = []
        for _ in range(batches):
            if batch:
                record_many(h, values, attrs)
            else:
                for v in values:
                    h.record(v, attrs, context=Context())
            got.append(_points(reader))
        results.append(got)
        mp.shutdown()
    return results[0], results[1]


def test_same_points_as_the_public_loop() -> None:
    """500 values through record_many give the points the public record() loop gives."""
    rng = random.Random(5)
    values = [rng.expovariate(40) for _ in range(500)] + [0.0, 0.01, 1.28, 99.0]  # on and past the boundaries
    public, batched = _both(values)
    assert public == batched
    assert f"('count', {len(values)})" in public[0][0][1]  # one count per value: nothing merged


@pytest.mark.parametrize("delta", [False, True])
def test_across_collections(delta: bool) -> None:
    """Cumulative readers keep adding to one aggregation; delta readers start a new one each collection."""
    public, batched = _both([0.011, 0.02, 0.5], batches=3, delta=delta)
    assert public == batched
    counts = [int(c[0][1].split("('count', ")[1].split(')')[0]) for c in batched]
    assert counts == ([3, 3, 3] if delta else [3, 6, 9])


def test_a_view_that_keeps_some_keys() -> None:
    """A View that keeps some attribute keys aggregates the batch under the same reduced set."""
    view = View(instrument_name="gen_ai.*", attribute_keys={"gen_ai.request.model"})
    public, batched = _both([0.01, 0.03], views=(view,))
    assert public == batched
    assert "('attributes', {'gen_ai.request.model': 'gpt-5-mini'})" in batched[0][0][1]


def test_an_exemplar_filter_that_samples_goes_public() -> None:
    """With an always-on exemplar filter the values go the public way and keep their exemplars."""
    public, batched = _both([0.01, 0.02, 0.03], exemplar_filter=AlwaysOnExemplarFilter())
    assert public == batched
    assert batched[0][0][-1] > 0  # the exemplars are there: the batch path did not swallow them


def test_invalid_values_behave_as_the_sdk_says() -> None:
    """Negative, NaN and infinite values are dropped as the SDK drops them, the rest recorded."""
    public, batched = _both([0.01, -1.0, math.nan, math.inf, 0.02])
    assert public == batched


def test_anything_that_is_not_the_sdk_instrument_gets_the_public_calls() -> None:
    """An instrument without SDK internals gets one public record() per value."""
    seen: list[tuple[float, Any]] = []

    class Proxy:  # an API proxy or a custom meter: no SDK internals
        def record(self, v: float, attrs: Any, context: Any = None) -> None:
            seen.append((v, attrs))

    record_many(Proxy(), [0.1, 0.2], ATTRS)
    assert seen == [(0.1, ATTRS), (0.2, ATTRS)]


def test_the_batch_path_is_taken_for_the_sdk_histogram(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality tests above would also pass if record_many always fell back: prove it does not."""
    mp, reader = _provider()
    h = mp.get_meter("t").create_histogram("h", explicit_bucket_boundaries_advisory=BUCKETS)
    monkeypatch.setattr(type(h), "record", lambda *a, **k: pytest.fail("public path taken"))
    monkeypatch.setattr(_metric_batch._ExplicitBucketHistogramAggregation, "aggregate",
                        lambda *a, **k: pytest.fail("per-value aggregate taken"))
    record_many(h, [0.01, 0.02], ATTRS)
    assert "('count', 2)" in _points(reader)[0][1]
    mp.shutdown()


def test_missing_sdk_helpers_fall_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the SDK helper the batch path is off and the points are still the same."""
    monkeypatch.setattr(_metric_batch, "_hash_attributes", None)
    public, batched = _both([0.01, 0.02])
    assert public == batched


def test_an_exponential_histogram_view_takes_the_per_value_aggregate() -> None:
    """A View with another aggregation (exponential buckets) gets every value through its own aggregate()."""
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

    view = View(instrument_name="gen_ai.*", aggregation=ExponentialBucketHistogramAggregation())
    public, batched = _both([0.01, 0.03, 0.5, 2.0], views=(view,))
    assert public == batched


def test_an_error_after_values_went_in_is_counted_not_replayed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two readers; the second fails while taking the values (production mode: the guard swallows). The first
    reader keeps exactly one count per value (no public replay on top), and the error is counted."""
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _ViewInstrumentMatch

    from agentpress_otel import _selftel

    r1, r2 = InMemoryMetricReader(), InMemoryMetricReader()
    mp = MeterProvider(metric_readers=[r1, r2])
    h = mp.get_meter("t").create_histogram("h", explicit_bucket_boundaries_advisory=BUCKETS)
    calls = {"n": 0}
    real = _ViewInstrumentMatch._get_or_create_aggregation

    def flaky(self: Any, key: Any, attrs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("second reader fails")
        return real(self, key, attrs)

    monkeypatch.setattr(_ViewInstrumentMatch, "_get_or_create_aggregation", flaky)
    monkeypatch.setattr(h, "record", lambda *a, **k: pytest.fail("values replayed through the public path"))
    # the cumulative path creates an aggregation only when its lookup misses: make every lookup miss
    for storage in h._measurement_consumer._reader_storages.values():
        for vim in storage._get_or_init_view_instrument_match(h):
            monkeypatch.setattr(vim, "_attributes_aggregation", _MissingDict(vim._attributes_aggregation))
    before = _selftel.errors("metrics.batch")
    previous = _selftel.set_strict(False)
    try:
        record_many(h, [0.01, 0.02, 0.03], ATTRS)
    finally:
        _selftel.set_strict(previous)
    assert _selftel.errors("metrics.batch") == before + 1
    assert "('count', 3)" in _points(r1)[0][1]  # once each, not again through the public path
    mp.shutdown()


class _MissingDict(dict):  # type: ignore[type-arg]
    """An aggregation map whose lookups miss, so the batch path goes through _get_or_create_aggregation."""

    def get(self, key: Any, default: Any = None) -> Any:
        return default


def test_a_custom_exemplar_filter_goes_public() -> None:
    """A filter of the app's own (it may sample by value) is never second-guessed: the values go public."""
    from opentelemetry.sdk.metrics._internal.exemplar import ExemplarFilter

    class Big(ExemplarFilter):
        def should_sample(self, value: float, time_unix_nano: int, attributes: Any, context: Any) -> bool:
            return value > 1

    public, batched = _both([0.01, 5.0], exemplar_filter=Big())
    assert public == batched


# ------------------------------------------------------------------ values with exemplar contexts (trace links)

def _span_context(i: int, *, sampled: bool = True) -> Context:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    sc = SpanContext(trace_id=0x1000 + i, span_id=0x200 + i, is_remote=False,
                     trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else 0))
    return trace.set_span_in_context(NonRecordingSpan(sc), Context())


def _collect(reader: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """One collection's points (as _points) and exemplars (exemplars are per collection: collect once)."""
    data = reader.get_metrics_data()
    return _points(reader, data), _exemplars(data)


def _exemplars(data: Any) -> list[tuple[Any, ...]]:
    """Every exemplar of every point: value, trace and span id, filtered attributes (not its time)."""
    return sorted((p.attributes.get("gen_ai.request.model"), e.value, e.trace_id, e.span_id,
                   repr(sorted((e.filtered_attributes or {}).items())))
                  for rm in (data.resource_metrics if data else ()) for sm in rm.scope_metrics
                  for m in sm.metrics for p in m.data.data_points for e in p.exemplars)


def _both_linked(values: list[float], contexts: list[Context], *, batches: int = 1,
                 **kw: Any) -> tuple[Any, Any]:
    """(points, exemplars) after the public loop with one context per value and after record_many with them."""
    results = []
    for batch in (False, True):
        mp, reader = _provider(**kw)
        h = mp.get_meter("t").create_histogram("gen_ai.client.operation.duration", unit="s",
                                               explicit_bucket_boundaries_advisory=BUCKETS)
        got = []
        for _ in range(batches):
            if batch:
                record_many(h, values, ATTRS, contexts)
            else:
                for v, ctx in zip(values, contexts, strict=True):
                    h.record(v, ATTRS, context=ctx)
            got.append(_collect(reader))
        results.append(got)
        mp.shutdown()
    return results[0], results[1]


@pytest.mark.parametrize("plain", [True, False])
def test_values_with_contexts_keep_their_own_exemplars(plain: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each value with its own span context: same points and the same exemplars (value, trace and span id) as one
    public record() per value; unsampled and empty contexts give none, as in the SDK. Measurements built both ways
    (filled directly, or through the dataclass when its shape is not the one we know)."""
    monkeypatch.setattr(_metric_batch, "_PLAIN_MEASUREMENT", plain)
    rng = random.Random(7)
    values = [rng.expovariate(5) for _ in range(60)]
    contexts = [_span_context(i, sampled=i % 3 != 0) if i % 7 else Context() for i in range(60)]
    public, batched = _both_linked(values, contexts)
    assert public == batched
    (_, exemplars), = batched
    ids = [e[2] - 0x1000 for e in exemplars]
    assert ids and all(i % 3 and i % 7 for i in ids), ids  # only sampled span contexts left exemplars
    assert {e[1] for e in exemplars} <= set(values)


@pytest.mark.parametrize("delta", [False, True])
def test_values_with_contexts_across_collections(delta: bool) -> None:
    """Delta and cumulative readers, three collections: the exemplars of each collection match the public ones."""
    contexts = [_span_context(i) for i in range(4)]
    public, batched = _both_linked([0.011, 0.5, 0.02, 3.0], contexts, batches=3, delta=delta)
    assert public == batched
    assert all(ex for _, ex in batched)


def test_values_with_contexts_under_a_view_and_any_filter() -> None:
    """A View dropping keys (the exemplars keep them as filtered attributes) and a filter of the app's own (asked
    per value, with the value's context) give the public path's points and exemplars."""
    from opentelemetry.sdk.metrics._internal.exemplar import ExemplarFilter

    class Big(ExemplarFilter):
        def should_sample(self, value: float, time_unix_nano: int, attributes: Any, context: Any) -> bool:
            return value > 1 and attributes.get("server.port") == 8080

    view = View(instrument_name="gen_ai.*", attribute_keys={"gen_ai.request.model"})
    contexts = [_span_context(i) for i in range(4)]
    public, batched = _both_linked([0.5, 1.1, 3.0, 0.9], contexts, views=(view,), exemplar_filter=Big())
    assert public == batched
    (_, exemplars), = batched
    assert sorted(e[1] for e in exemplars) == [1.1, 3.0]
    assert "server.port" in exemplars[0][4]  # dropped from the point, kept on the exemplar


def test_values_with_contexts_take_the_batch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality tests above would also pass if record_many fell back to record(): prove it does not, and
    that the exemplar of a sampled context is still there."""
    mp, reader = _provider()
    h = mp.get_meter("t").create_histogram("h", explicit_bucket_boundaries_advisory=BUCKETS)
    monkeypatch.setattr(type(h), "record", lambda *a, **k: pytest.fail("public path taken"))
    monkeypatch.setattr(_metric_batch._ExplicitBucketHistogramAggregation, "aggregate",
                        lambda *a, **k: pytest.fail("per-value aggregate taken"))
    record_many(h, [0.01, 0.02], ATTRS, [_span_context(1), _span_context(2)])
    points, exemplars = _collect(reader)
    assert "('count', 2)" in points[0][1]
    assert [e[3] for e in exemplars] == [0x201, 0x202]
    mp.shutdown()
