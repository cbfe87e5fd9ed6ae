"""``OTEL_{TRACES,METRICS,LOGS}_EXPORTER`` (OpenTelemetry SDK environment variables): ``otlp`` (default),
``console`` (one line per span / log record / metric point on stdout), ``none``, and comma lists. Each case runs a
real process that calls ``instrument()`` and exits (the atexit shutdown flushes), against a real OTLP receiver."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration

APP = r"""
import logging, agentpress_otel
from opentelemetry import metrics, trace
agentpress_otel.instrument(service_name="exp-test", metric_interval_s=60)
log = logging.getLogger("exp")
with trace.get_tracer("exp").start_as_current_span("checkout", attributes={"order.id": "o-7"}):
    log.warning("paid\nin full")
metrics.get_meter("exp").create_counter("exp.orders").add(3, {"shop": "s1"})
"""


def _run(env: dict[str, str], endpoint: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    base.update({"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                 "AGENTPRESS_OTEL_INTEGRATIONS": "logging", **env})
    return subprocess.run([sys.executable, "-c", APP], capture_output=True, text=True, env=base, timeout=120,
                          check=False)


@pytest.fixture
def sink():  # type: ignore[no-untyped-def]
    with OTLPSink() as s:
        yield s


def test_console_prints_one_line_per_span_record_and_point_and_sends_nothing(sink: OTLPSink) -> None:
    """The console exporter prints one line per span, record and point and sends nothing over OTLP."""
    res = _run({"OTEL_TRACES_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console",
                "OTEL_METRICS_EXPORTER": "console"}, sink.grpc_endpoint)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    span = [ln for ln in lines if re.match(r"\d\d:\d\d:\d\d\.\d{3} span +checkout +INTERNAL +[\d.]+ ms", ln)]
    assert len(span) == 1, res.stdout
    assert re.search(r"trace=[0-9a-f]{32} span=[0-9a-f]{16}", span[0]) and "order.id=o-7" in span[0]
    trace_id = re.search(r"trace=([0-9a-f]{32})", span[0]).group(1)  # type: ignore[union-attr]
    log = [ln for ln in lines if " log " in ln and "paid" in ln]
    # One line even for a multi-line message, correlated with the span it was logged in.
    assert len(log) == 1 and "paid\\nin full" in log[0] and "WARN" in log[0] and trace_id in log[0], res.stdout
    assert any(re.search(r" metric +exp\.orders +3 +shop=s1", ln) for ln in lines), res.stdout
    assert not sink.spans() and not sink.log_records() and not sink.metric_names()


def test_none_turns_one_signal_off_and_leaves_the_others_on_otlp(sink: OTLPSink) -> None:
    """``none`` turns one signal's export off and leaves the others on OTLP."""
    res = _run({"OTEL_TRACES_EXPORTER": "none"}, sink.grpc_endpoint)
    assert res.returncode == 0, res.stderr
    assert not sink.spans()
    assert any(r.body.string_value == "paid\nin full" for r in sink.log_records())
    assert "exp.orders" in sink.metric_names()
    # The span still existed (context for the log record), it just was not exported.
    assert any(r.trace_id != b"\0" * 16 and r.trace_id for r in sink.log_records())
    assert res.stdout == ""


def test_otlp_and_console_together(sink: OTLPSink) -> None:
    """``otlp,console`` exports over OTLP and prints to the console."""
    res = _run({"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_METRICS_EXPORTER": "none"}, sink.grpc_endpoint)
    assert res.returncode == 0, res.stderr
    assert [s.name for s in sink.spans()] == ["checkout"]
    assert " span   checkout " in res.stdout
    assert not sink.log_records() and not sink.metric_names()


def test_an_unsupported_exporter_is_ignored_with_a_warning(sink: OTLPSink) -> None:
    """An unsupported exporter name is ignored with a warning, falling back to OTLP."""
    res = _run({"OTEL_TRACES_EXPORTER": "zipkin"}, sink.grpc_endpoint)
    assert res.returncode == 0, res.stderr
    assert "OTEL_TRACES_EXPORTER" in res.stderr and "zipkin" in res.stderr
    assert [s.name for s in sink.spans()] == ["checkout"]  # fell back to the default, otlp


def test_precedence_argument_then_ours_then_standard() -> None:
    """Exporter selection follows argument, AGENTPRESS_OTEL_*, then OTEL_* precedence."""
    from agentpress_otel._config import ConfigError, load_config

    env = {"OTEL_TRACES_EXPORTER": "none", "AGENTPRESS_OTEL_LOGS_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "none"}
    cfg = load_config({"traces_exporter": ["otlp", "console"]}, env=env)
    assert cfg.traces_exporter == ("otlp", "console") and cfg.sources["traces_exporter"] == "argument"
    assert cfg.logs_exporter == ("console",) and cfg.sources["logs_exporter"] == "AGENTPRESS_OTEL_LOGS_EXPORTER"
    assert load_config({}, env=env).traces_exporter == ()
    assert load_config({}, env={}).metrics_exporter == ("otlp",)
    with pytest.raises(ConfigError, match="none cannot be combined"):
        load_config({"metrics_exporter": "none,console"}, env={})
