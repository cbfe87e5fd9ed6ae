"""docker-compose.yml's optional agent tier (`--profile agent`): the `otel-agent` service runs
collector-config/agent.yaml unchanged in front of the `otel-collector` gateway, and every knob it sets is one the
config reads. (Offline: no Docker here; the agent config itself runs on the real Collector in
tests/integration/test_agent_tier.py.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
AGENT_CFG = ROOT / "collector-config" / "agent.yaml"
GATEWAY_CFG = ROOT / "collector-config" / "config.yaml"
DEFAULT = re.compile(r"\$\{(?:env:)?(\w+):-([^}]*)\}")


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def _defaults(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in DEFAULT.finditer(text)}


def _mib(size: str) -> float:
    m = re.fullmatch(r"(\d+)\s*(MiB|GiB|m|g)", size)
    assert m, size
    return int(m.group(1)) * (1024 if m.group(2) in ("GiB", "g") else 1)


def test_agent_service_runs_the_shipped_agent_config() -> None:
    """The compose agent is an opt-in profile running the mounted collector-config/agent.yaml on the gateway's image."""
    services = _compose()["services"]
    agent, gateway = services["otel-agent"], services["otel-collector"]
    assert agent["profiles"] == ["agent"], "opt-in: the default stack stays one Collector"
    assert agent["image"] == gateway["image"], "agent and gateway run the same Collector release"
    (cfg_arg,) = agent["command"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in agent["volumes"]}
    assert mounted[cfg_arg.removeprefix("--config=")] == "./collector-config/agent.yaml"


def test_agent_env_is_read_by_the_config_and_points_at_the_gateway() -> None:
    """Every OTELCOL_* variable the compose agent sets is read by agent.yaml, and it routes to the gateway service."""
    services = _compose()["services"]
    agent = services["otel-agent"]
    env = {k: str(v) for k, v in agent["environment"].items()}
    text = AGENT_CFG.read_text()
    for key in env:
        if key.startswith("OTELCOL_"):
            assert "${env:" + key + ":" in text or "${env:" + key + "}" in text, f"agent.yaml never reads {key}"
    gw_grpc_port = _defaults(GATEWAY_CFG.read_text())["OTELCOL_OTLP_GRPC_ENDPOINT"].rsplit(":", 1)[1]
    assert env["OTELCOL_LB_DNS_HOSTNAME"] == "otel-collector"
    assert _defaults(text)["OTELCOL_LB_DNS_PORT"] == gw_grpc_port
    assert env["OTELCOL_GATEWAY_ENDPOINT"] == f"otel-collector:{gw_grpc_port}"
    assert agent["depends_on"]["otel-collector"]["condition"] == "service_healthy"


def test_agent_queue_and_memory_are_bounded_and_persistent() -> None:
    """The compose agent's queue is on a named volume, bounded in bytes, with limiter <= GOMEMLIMIT < mem_limit."""
    compose = _compose()
    agent = compose["services"]["otel-agent"]
    env = {k: str(v) for k, v in agent["environment"].items()}
    storage = env["OTELCOL_STORAGE_DIR"]
    volumes = {v.split(":")[1]: v.split(":")[0] for v in agent["volumes"]}
    assert volumes.get(storage) in compose["volumes"], "the queue must live on a named volume"
    init = compose["services"]["volume-init"]
    init_mount = next(v.split(":")[1] for v in init["volumes"] if v.split(":")[0] == volumes[storage])
    assert init_mount in " ".join(init["command"]), "volume-init must hand the queue volume to uid 10001"
    gomem = _mib(DEFAULT.sub(r"\2", env["GOMEMLIMIT"]))
    limit = _mib(DEFAULT.sub(r"\2", agent["mem_limit"]))
    limiter = float(_defaults(AGENT_CFG.read_text())["OTELCOL_MEMORY_LIMIT_MIB"])
    assert limiter <= gomem < limit, (limiter, gomem, limit)
    assert int(DEFAULT.sub(r"\2", env["OTELCOL_AGENT_QUEUE_BYTES"])) > 0


def test_agent_ports_and_scrape_job() -> None:
    """The agent listens on its own loopback ports and Prometheus scrapes it as job otel-agent."""
    services = _compose()["services"]
    agent_ports = [p.rsplit(":", 2) for p in services["otel-agent"]["ports"]]
    gateway_host_ports = {p.rsplit(":", 2)[1] for p in services["otel-collector"]["ports"]}
    for bind, host_port, _ in agent_ports:
        assert bind in ("127.0.0.1", "${OTLP_BIND:-127.0.0.1}"), bind
        assert host_port not in gateway_host_ports, host_port
    metrics_port = _defaults(AGENT_CFG.read_text())["OTELCOL_METRICS_PORT"]
    prom = yaml.safe_load((ROOT / "stack" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    assert jobs["otel-agent"]["static_configs"][0]["targets"] == [f"otel-agent:{metrics_port}"]
