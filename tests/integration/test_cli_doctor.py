"""``agentpress-otel doctor`` against a live OTLP receiver, a sick one and a dead endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from agentpress_otel._harness._proc import free_port
from agentpress_otel._harness.otlp_sink import OTLPSink

pytestmark = pytest.mark.integration


def _doctor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    return subprocess.run([sys.executable, "-m", "agentpress_otel", "doctor", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


@pytest.fixture
def sink() -> Iterator[OTLPSink]:
    with OTLPSink() as s:
        yield s


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_doctor_passes_against_a_live_receiver(sink: OTLPSink, protocol: str) -> None:
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
    assert "agentpress_otel.doctor.check" in sink.metric_names()


def test_doctor_fails_clearly_on_a_dead_endpoint() -> None:
    ep = f"http://127.0.0.1:{free_port()}"
    proc = _doctor("--endpoint", ep, timeout=30)  # the timeout only guards against a hang
    assert proc.returncode == 1
    assert "nothing accepts connections" in proc.stdout
    assert "problem(s) found" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_reports_a_receiver_that_rejects(sink: OTLPSink) -> None:
    sink.mode = "fail"
    proc = _doctor("--endpoint", sink.http_endpoint, "--protocol", "http/protobuf", "--timeout", "2", timeout=60)
    assert proc.returncode == 1
    assert "did not accept a test span" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_doctor_rejects_invalid_configuration() -> None:
    proc = _doctor("--endpoint", "localhost:4317")
    assert proc.returncode == 2
    assert "invalid configuration" in proc.stdout
