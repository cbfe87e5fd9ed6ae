"""``agentpress-otel doctor`` against a live OTLP receiver, a sick one and a dead endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agentpress_otel._harness._proc import free_port
from harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration


def _doctor(*args: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}, **(env or {})}
    return subprocess.run([sys.executable, "-m", "agentpress_otel", "doctor", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


@pytest.fixture
def sink() -> Iterator[OTLPSink]:
    with OTLPSink() as s:
        yield s


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_passes_against_a_live_receiver(sink: OTLPSink, protocol: str) -> None:
    """doctor passes against a live receiver and shows where the endpoint came from."""
    ep = sink.grpc_endpoint if protocol == "grpc" else sink.http_endpoint
    proc = _doctor("--endpoint", ep, "--protocol", protocol)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout
    assert "accepted a test span" in proc.stdout
    # The configuration table shows where the endpoint came from.
    assert "argument" in proc.stdout
    assert "opentelemetry-sdk" in proc.stdout
    assert any(s.name == "agentpress-otel doctor" for s in sink.spans())
    assert sink.log_records()
    assert "agentpress.doctor.check" in sink.metric_names()


def test_doctor_fails_clearly_on_a_dead_endpoint() -> None:
    """doctor fails with a clear message on a dead endpoint."""
    ep = f"http://127.0.0.1:{free_port()}"
    proc = _doctor("--endpoint", ep, timeout=30)  # the timeout only guards against a hang
    assert proc.returncode == 1
    assert "nothing accepts connections" in proc.stdout
    assert "problem(s) found" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_reports_a_receiver_that_rejects(sink: OTLPSink) -> None:
    """doctor reports a receiver that rejects the test span."""
    sink.mode = "fail"
    proc = _doctor("--endpoint", sink.http_endpoint, "--protocol", "http/protobuf", "--timeout", "2", timeout=60)
    assert proc.returncode == 1
    assert "did not accept a test span" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_rejects_invalid_configuration() -> None:
    """doctor exits 2 on an invalid configuration."""
    proc = _doctor("--endpoint", "localhost:4317")
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stdout


def test_doctor_reports_an_ignored_environment_value(sink: OTLPSink) -> None:
    """doctor exits 2 and names an environment value it had to ignore."""
    # instrument() would warn and fall back to the default; doctor names the variable and exits 2.
    proc = _doctor("--endpoint", sink.grpc_endpoint, env={"AGENTPRESS_OTEL_SAMPLE_RATIO": "2"})
    assert proc.returncode == 2, proc.stdout
    assert "AGENTPRESS_OTEL_SAMPLE_RATIO='2' ignored" in proc.stdout.replace("\n", " ")
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_names_the_sources_it_used(sink: OTLPSink) -> None:
    """doctor's configuration table names the source of each value."""
    proc = _doctor("--endpoint", sink.grpc_endpoint, env={"AGENTPRESS_OTEL_DISABLED_INTEGRATIONS": "redis"})
    assert proc.returncode == 0, proc.stdout
    rows = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[2:-1]]
            for ln in proc.stdout.splitlines() if ln.startswith("│") and ln.count("│") >= 4}
    assert rows["integrations"][-1] == "AGENTPRESS_OTEL_DISABLED_INTEGRATIONS"
    assert "redis" not in rows["integrations"][0]
    assert rows["service_instance_id"][0] and rows["service_instance_id"][-1] == "generated"
