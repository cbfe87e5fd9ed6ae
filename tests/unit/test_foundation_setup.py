"""instrument() itself: the kill switch never raises, sampler wiring, batch delays, re-instrumenting after shutdown."""

from __future__ import annotations

import warnings

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

import agentpress_otel
from agentpress_otel import _export
from agentpress_otel.testing import capture


def test_sdk_disabled_never_raises_whatever_else_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED gives a disabled, non-recording handle even with bad settings and arguments."""
    for var, value in {
        "OTEL_SDK_DISABLED": "true",
        "AGENTPRESS_OTEL_SAMPLE_RATIO": "abc",
        "OTEL_TRACES_SAMPLER": "bogus",
        "OTEL_RESOURCE_ATTRIBUTES": "novalue",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317",
        "AGENTPRESS_OTEL_DISABLED_INTEGRATIONS": "redsi",
    }.items():
        monkeypatch.setenv(var, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Even a bad argument: the kill switch is the operator's last resort and must always work.
        tel = agentpress_otel.instrument(sample_ratio=5.0, service_name="x")
    assert tel.disabled
    assert tel.integrations == []
    assert not trace.get_tracer("t").start_span("s").is_recording()
    assert tel.shutdown(1)


def test_bad_argument_raises_when_enabled() -> None:
    """When enabled, a bad argument raises ConfigError naming the option."""
    with pytest.raises(agentpress_otel.ConfigError, match="sample_ratio"):
        agentpress_otel.instrument(sample_ratio=5.0, export_otlp=False, integrations=[])


def _remote_parent(sampled: bool) -> Context:
    ctx = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT),
    )
    return trace.set_span_in_context(NonRecordingSpan(ctx))


@pytest.mark.parametrize(
    ("env", "under_sampled_parent", "under_unsampled_parent", "root"),
    [
        ({"OTEL_TRACES_SAMPLER": "always_off"}, False, False, False),  # not parent-based: off is off
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, True, False, False),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, True, True, True),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, False, False, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, True, False, False),
        ({"AGENTPRESS_OTEL_SAMPLE_RATIO": "0"}, True, False, False),  # ours is parent-based
        ({"AGENTPRESS_OTEL_SAMPLE_RATIO": "1"}, True, False, True),
    ],
)
def test_sampler_follows_the_parent_only_when_parent_based(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], under_sampled_parent: bool, under_unsampled_parent: bool,
    root: bool,
) -> None:  # fmt: skip
    """The sampler follows a remote parent's decision only when it is parent-based."""
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    with capture(integrations=[]) as cap:
        tracer = cap.telemetry.tracer_provider.get_tracer("t")
        assert tracer.start_span("a", context=_remote_parent(True)).is_recording() is under_sampled_parent
        assert tracer.start_span("b", context=_remote_parent(False)).is_recording() is under_unsampled_parent
        assert tracer.start_span("c").is_recording() is root


def test_schedule_delays_reach_the_batch_processors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configured schedule delays reach the span and log batch processors."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "300")
    tel = agentpress_otel.instrument(endpoint="http://127.0.0.1:9", protocol="http/protobuf", integrations=[])
    assert isinstance(tel.tracer_provider, TracerProvider)
    spans = [p for p in tel.tracer_provider._active_span_processor._span_processors
             if isinstance(p, _export.DropCountingSpanProcessor)]  # fmt: skip
    assert tel.logger_provider is not None
    logs = [p for p in tel.logger_provider._multi_log_record_processor._log_record_processors
            if isinstance(p, _export.DropCountingLogProcessor)]  # fmt: skip
    assert [p._batch_processor._schedule_delay for p in spans] == [0.2]
    assert [p._batch_processor._schedule_delay for p in logs] == [0.3]
    tel.shutdown(1)


def test_instrument_after_shutdown_warns_and_returns_a_disabled_handle() -> None:
    """instrument() after shutting down the global providers returns a disabled handle that works as a no-op."""
    mem = InMemorySpanExporter()
    first = agentpress_otel.instrument(
        export_otlp=False, integrations=[], additional_span_processors=[SimpleSpanProcessor(mem)]
    )
    assert not first.disabled
    assert first.shutdown(2)
    assert agentpress_otel.current() is None
    with pytest.warns(RuntimeWarning, match="after shutdown"):
        second = agentpress_otel.instrument(export_otlp=False, integrations=[])
    assert second.disabled and second is not first
    assert agentpress_otel.current() is second
    assert second.force_flush(1) and second.shutdown(1)
    # Nothing half-works: no new processors were added to the shut-down global provider.
    with trace.get_tracer("t").start_as_current_span("after"):
        pass
    assert mem.get_finished_spans() == ()


def test_shutdown_stops_our_processors_on_the_apps_provider() -> None:
    """On an app's own provider, shutdown stops only our processors and instrumenting again works."""
    app_tp = TracerProvider()
    trace.set_tracer_provider(app_tp)
    tel = agentpress_otel.instrument(endpoint="http://127.0.0.1:9", protocol="http/protobuf", integrations=[],
                                     logs=False, metrics=False)  # fmt: skip
    assert tel.tracer_provider is app_tp
    ours = [p for p in app_tp._active_span_processor._span_processors
            if isinstance(p, _export.DropCountingSpanProcessor)]  # fmt: skip
    assert len(ours) == 1 and not ours[0]._batch_processor._shutdown
    assert tel.shutdown(2)
    assert ours[0]._batch_processor._shutdown  # ours stopped exporting...
    assert app_tp.get_tracer("t").start_span("still works").is_recording()  # ...the app's provider lives on
    # The app's provider was never ours: instrumenting again is allowed and works.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = agentpress_otel.instrument(export_otlp=False, integrations=[], logs=False, metrics=False)
    assert not again.disabled


def test_redact_hash_key_argument_makes_tags_match_across_processes() -> None:
    """Two processes given the same key tag the same secret alike; without it each process has its own key."""
    import agentpress_otel
    from agentpress_otel.redaction import configure_redaction
    from agentpress_otel.testing import capture

    secret = "sk-proj-" + "Q7" * 20
    tags = []
    for _ in range(2):  # each round rebuilds the process-wide redactor, as a fresh process would
        configure_redaction()
        with capture(redact_hash_key="shared-key-0123456789"):
            tags.append(agentpress_otel.redact(secret))
    configure_redaction()
    unkeyed = agentpress_otel.redact(secret)
    assert tags[0] == tags[1] and tags[0].startswith("[REDACTED:openai_key:")
    assert unkeyed != tags[0]


class _SlowShutdown(SimpleSpanProcessor):
    """A processor whose shutdown outlives the deadline (an exporter stuck on a dead Collector)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(InMemorySpanExporter())
        self.seconds = seconds

    def shutdown(self) -> None:
        import time

        time.sleep(self.seconds)
        super().shutdown()


def test_a_late_shutdown_does_not_unbind_genai_from_a_newer_handle() -> None:
    """A shutdown finishing after its deadline does not unbind GenAI from a newer handle."""
    import time

    from agentpress_otel.genai import _state

    old = agentpress_otel.instrument(export_otlp=False, integrations=[], metrics=False, logs=False,
                                     additional_span_processors=[_SlowShutdown(0.8)])  # fmt: skip
    assert old.shutdown(timeout_s=0.1) is False  # the deadline passes; the rest finishes in the background
    with capture(integrations=[]) as cap:
        bound = _state.STATE
        assert bound.owner is cap.telemetry
        time.sleep(1.2)  # the old handle's shutdown has finished meanwhile
        assert _state.STATE is bound
        with agentpress_otel.llm_call(model="gpt-5", provider="openai") as call:
            call.set_usage(input_tokens=3, output_tokens=2)
        assert [p.count for p in cap.metrics()["gen_ai.client.operation.duration"]] == [1]
