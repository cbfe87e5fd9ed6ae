"""`otelcol validate` (our build) on every shipped Collector config, and `promtool check config` on prometheus.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentpress_otel._harness._proc import find_binary
from agentpress_otel._harness.collector import COLLECTOR_CONFIG, ensure_collector_binary, validate_config
from conftest import need

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def collector_binary() -> str:
    return need(ensure_collector_binary)


def test_shipped_config_validates_with_defaults(collector_binary: str) -> None:
    res = validate_config(COLLECTOR_CONFIG)
    assert res.returncode == 0, res.stdout + res.stderr
    # Deprecated component aliases log a warning on every start; the shipped config must not use any.
    assert "deprecated" not in (res.stdout + res.stderr).lower()


def test_shipped_config_validates_with_test_overrides(collector_binary: str) -> None:
    env = {
        "OTELCOL_BROWSER_CORS_ORIGINS": "[https://app.example.com, https://admin.example.com]",
        "OTELCOL_TAIL_SAMPLING_PERCENTAGE": "25",
        "OTELCOL_TAIL_DECISION_WAIT": "2s",
        "OTELCOL_TAIL_SLOW_MS": "300",
        "OTELCOL_SPANMETRICS_FLUSH_INTERVAL": "1s",
    }
    res = validate_config(COLLECTOR_CONFIG, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_invalid_override_is_rejected(collector_binary: str) -> None:
    """validate really checks types: a non-numeric sampling share must fail."""
    res = validate_config(COLLECTOR_CONFIG, env={"OTELCOL_TAIL_SAMPLING_PERCENTAGE": "lots"})
    assert res.returncode != 0


@pytest.mark.parametrize(
    ("path", "env"),
    [
        ("collector-config/testing/standin-traces.yaml", {}),
        ("collector-config/testing/standin-logs.yaml", {}),
        ("collector-config/hostmetrics.yaml", {"HOSTMETRICS_ROOT_PATH": "/"}),
    ],
)
def test_other_configs_validate(collector_binary: str, path: str, env: dict[str, str]) -> None:
    res = validate_config(ROOT / path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_check_config() -> None:
    # Debian's promtool 2.42 accepts our prometheus.yml (no 3.x-only keys); it also checks the rule files it globs.
    promtool = need(lambda: find_binary("promtool"))
    res = subprocess.run(
        [promtool, "check", "config", str(ROOT / "stack" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert res.returncode == 0, res.stdout + res.stderr
