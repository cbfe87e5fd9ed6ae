"""`otelcol validate` (our build) on every shipped Collector config, a short real start of each one (deprecation
warnings only appear at start-up), and `promtool check config` on prometheus.yml."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from agentpress_otel._harness._proc import find_binary
from agentpress_otel._harness.collector import (
    COLLECTOR_CONFIG,
    READY_LINE,
    ensure_collector_binary,
    start_collector,
    start_standin,
)
from conftest import need
from harness.pipeline import startup_log, validate_config

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def collector_binary() -> str:
    return need(ensure_collector_binary)


def test_shipped_config_validates_with_defaults(collector_binary: str) -> None:
    """The shipped Collector config validates with its defaults."""
    res = validate_config(COLLECTOR_CONFIG)
    assert res.returncode == 0, res.stdout + res.stderr


def _assert_clean_start(log: str, what: str, *, ready_line: bool = True) -> None:
    assert not ready_line or READY_LINE in log, f"{what} did not start:\n{log[-3000:]}"
    # Deprecated component aliases (e.g. "hostmetrics", "spanmetrics", "otlphttp") and deprecated options are
    # logged as warnings when the components are built; `validate` prints nothing, so only a real start shows them.
    bad = [ln for ln in log.splitlines() if "deprecat" in ln.lower()]
    assert not bad, f"{what} logs deprecation warnings:\n" + "\n".join(bad)


def test_shipped_config_starts_without_deprecation_warnings(collector_binary: str, tmp_path: Path) -> None:
    """The shipped Collector config starts without deprecation warnings."""
    col = start_collector(traces_endpoint="127.0.0.1:1", logs_endpoint="http://127.0.0.1:1/otlp",
                          remote_write_url="http://127.0.0.1:1/api/v1/write", workdir=tmp_path / "otelcol")
    col.stop()
    assert col.process is not None and col.process.log_path is not None
    _assert_clean_start(col.process.log_path.read_text(), "config.yaml")


@pytest.mark.parametrize("kind", ["traces", "logs"])
def test_standins_start_without_deprecation_warnings(collector_binary: str, tmp_path: Path, kind: str) -> None:
    """The backend stand-in configs start without deprecation warnings."""
    standin = start_standin(kind, workdir=tmp_path)  # type: ignore[arg-type]
    standin.stop()  # start_standin returned once its health check answered: it did start
    assert standin.process is not None and standin.process.log_path is not None
    # The stand-ins log at level warn (no "Everything is ready" line); deprecation warnings are warn level.
    _assert_clean_start(standin.process.log_path.read_text(), f"standin-{kind}.yaml", ready_line=False)


def test_hostmetrics_agent_starts_without_deprecation_warnings(collector_binary: str) -> None:
    """The hostmetrics agent config starts without deprecation warnings."""
    log = startup_log(ROOT / "collector-config" / "hostmetrics.yaml",
                      env={"HOSTMETRICS_ROOT_PATH": "/", "HOSTMETRICS_GATEWAY_ENDPOINT": "127.0.0.1:1"})
    _assert_clean_start(log, "hostmetrics.yaml")


def test_deprecation_check_can_fail(collector_binary: str, tmp_path: Path) -> None:
    """The check above is not vacuous: the deprecated alias really logs a warning at start-up."""
    text = (ROOT / "collector-config" / "hostmetrics.yaml").read_text()
    old = tmp_path / "hostmetrics-alias.yaml"
    old.write_text(text.replace("host_metrics:", "hostmetrics:").replace("[host_metrics]", "[hostmetrics]"))
    log = startup_log(old, env={"HOSTMETRICS_ROOT_PATH": "/", "HOSTMETRICS_GATEWAY_ENDPOINT": "127.0.0.1:1"})
    with pytest.raises(AssertionError, match="deprecation"):
        _assert_clean_start(log, "alias")


def test_shipped_config_validates_with_test_overrides(collector_binary: str) -> None:
    """The shipped Collector config validates with the test environment's overrides."""
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
    """The other shipped Collector configs validate."""
    res = validate_config(ROOT / path, env=env)
    assert res.returncode == 0, res.stdout + res.stderr


def test_promtool_check_config() -> None:
    """promtool accepts the shipped Prometheus config."""
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
