"""The one module that writes the OpenTelemetry API's private provider slots works on the pinned API version."""

from __future__ import annotations

from importlib.metadata import version

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from agentpress_otel import _sdk_globals
from agentpress_otel.testing import capture


def test_private_names_exist_in_the_installed_api() -> None:
    """Fails with the moved names if an opentelemetry-api upgrade renames the slots we reset."""
    assert not _sdk_globals.missing(), (
        f"opentelemetry-api {version('opentelemetry-api')} no longer has {_sdk_globals.missing()}: "
        "update agentpress_otel/_sdk_globals.py (testing.capture() and the suite's reset rely on it)")
    assert _sdk_globals.api_version == version("opentelemetry-api")


def test_clear_lets_each_global_provider_be_set_again() -> None:
    """After clear() the API accepts a new tracer, meter and logger provider (it ignores a second set otherwise)."""
    first = (TracerProvider(), MeterProvider(), LoggerProvider())
    second = (TracerProvider(), MeterProvider(), LoggerProvider())
    setters = (trace.set_tracer_provider, metrics.set_meter_provider, _logs.set_logger_provider)
    getters = (trace.get_tracer_provider, metrics.get_meter_provider, _logs.get_logger_provider)
    _sdk_globals.clear()
    for set_, p in zip(setters, first, strict=True):
        set_(p)  # type: ignore[operator]
    for set_, p in zip(setters, second, strict=True):
        set_(p)  # type: ignore[operator]  # refused: set once
    assert [g() for g in getters] == list(first)
    saved = _sdk_globals.snapshot()
    _sdk_globals.clear()
    for set_, p in zip(setters, second, strict=True):
        set_(p)  # type: ignore[operator]
    assert [g() for g in getters] == list(second)
    _sdk_globals.restore(saved)
    assert [g() for g in getters] == list(first)
    for p in (*first, *second):
        p.shutdown()


def test_capture_twice_in_one_process_gets_fresh_global_providers() -> None:
    """Two capture() blocks in a row each own the global tracer provider, so spans land in the right block."""
    tracer_providers = []
    for name in ("one", "two"):
        with capture(service_name=name) as cap:
            tracer_providers.append(trace.get_tracer_provider())
            with trace.get_tracer("t").start_as_current_span(f"work-{name}"):
                pass
            assert [s.name for s in cap.spans()] == [f"work-{name}"]
            assert cap.span(f"work-{name}").resource.attributes["service.name"] == name
    assert tracer_providers[0] is not tracer_providers[1]
