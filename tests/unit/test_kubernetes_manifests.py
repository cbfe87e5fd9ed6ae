"""deploy/kubernetes validated offline against the real Kubernetes API types (tests/kubernetes/main.go: strict
decoding with k8s.io/api, plus cross-references to collector-config/). Needs Go and the module cache the Collector
build fills (k8s.io/api comes with the loadbalancing exporter); no cluster, no schema download."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from agentpress_otel._harness._proc import ComponentMissing
from conftest import need

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "tests" / "kubernetes"
MANIFESTS = ROOT / "deploy" / "kubernetes"
CONFIGS = ROOT / "collector-config"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise ComponentMissing("go not found (needed to validate deploy/kubernetes against k8s.io/api)")
    return go


def _validate(manifests: Path) -> subprocess.CompletedProcess[str]:
    go = need(_go)
    env = {**os.environ, "GOWORK": "off", "GOFLAGS": "-mod=readonly"}
    return subprocess.run([go, "run", ".", str(manifests), str(CONFIGS)], cwd=VALIDATOR, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def test_shipped_manifests_validate() -> None:
    """The shipped Kubernetes manifests pass the validator with the expected workloads, HPA and PDB."""
    res = _validate(MANIFESTS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 workloads" in res.stdout and "1 HPAs" in res.stdout and "1 PDBs" in res.stdout, res.stdout


@pytest.mark.parametrize(("file", "old", "new", "expect"), [
    ("gateway.yaml", "  replicas: 3", "  replica: 3", "unknown field"),
    ("gateway.yaml", 'value: "1600MiB"', 'value: "3GiB"', "GOMEMLIMIT"),
    ("gateway.yaml", "name: OTELCOL_TEMPO_ENDPOINT", "name: OTELCOL_TEMPO_ENDPIONT", "never reads it"),
    ("gateway.yaml", "      app.kubernetes.io/name: otel-gateway\n", "      app.kubernetes.io/name: otel-gw\n",
     "selector does not select its own pod template"),
    ("gateway.yaml", "targetPort: otlp-browser", "targetPort: browser", "not a port"),
    ("agent.yaml", "key: agent.yaml", "key: agent-tier.yaml", "not a file in collector-config"),
])
def test_validator_catches_broken_manifests(tmp_path: Path, file: str, old: str, new: str, expect: str) -> None:
    """The validator fails each deliberately broken manifest with the expected message."""
    broken = tmp_path / "k8s"
    shutil.copytree(MANIFESTS, broken)
    text = (broken / file).read_text()
    assert old in text, old
    (broken / file).write_text(text.replace(old, new, 1))
    res = _validate(broken)
    assert res.returncode == 1, res.stdout + res.stderr
    assert expect in res.stdout, res.stdout
