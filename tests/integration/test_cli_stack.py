"""``agentpress-otel stack up|status|down`` with a private state directory: real Collector, stand-ins,
Prometheus and Alertmanager (when installed); everything stopped at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentpress_otel._harness.collector import ensure_collector_binary
from conftest import need  # type: ignore[import-not-found]  # tests/ is on sys.path under pytest

pytestmark = pytest.mark.integration


def _cli(state: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTPRESS_OTEL_"))}
    env["APOTEL_STATE_DIR"] = str(state)
    return subprocess.run([sys.executable, "-m", "agentpress_otel", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


_ANY_PORTS = ("--grpc-port=0", "--http-port=0", "--browser-port=0", "--prometheus-port=0", "--alertmanager-port=0")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_stack_up_status_doctor_down(tmp_path: Path) -> None:
    need(lambda: ensure_collector_binary(build=False))
    state = tmp_path / "apotel"
    comps: list[dict[str, object]] = []
    try:
        # Port 0: any free port, so this test never takes the documented ports from a developer's own stack.
        up = _cli(state, "stack", "up", "--no-build", *_ANY_PORTS)
        assert up.returncode == 0, up.stdout + up.stderr
        comps = json.loads((state / "stack.json").read_text())["components"]
        names = {c["name"] for c in comps}
        assert {"collector", "tempo-standin", "loki-standin", "slack-stub"} <= names
        for c in comps:
            assert (state / f"{c['name']}.pid").read_text().strip() == str(c["pid"])
        status = _cli(state, "stack", "status")
        assert status.returncode == 0, status.stdout
        collector = next(c for c in comps if c["name"] == "collector")
        # Where to point a front end: the browser receiver's address is shown with the OTLP ones.
        for c in comps:  # every address the stack serves is printed, each on one line
            for key in ("grpc", "http", "browser", "health", "metrics", "zpages", "url", "endpoint"):
                if c.get(key):
                    assert str(c[key]) in status.stdout, (key, status.stdout)
        assert collector["browser"], collector
        for c in comps:  # what identifies each process beyond its pid
            assert c["argv"] and c["start_ticks"], c
        grpc = comps[0]["grpc"]
        doctor = _cli(state, "doctor", "--endpoint", grpc)
        assert doctor.returncode == 0, doctor.stdout
        again = _cli(state, "stack", "up", "--no-build")
        assert "already running" in again.stdout
    finally:
        down = _cli(state, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    for c in comps:
        assert not _alive(int(str(c["pid"]))), c
        assert not (state / f"{c['name']}.pid").exists()
    assert _cli(state, "stack", "status").returncode == 1
