"""``agentpress-otel stack up|status|down`` with a private state directory: real Collector, stand-ins,
Prometheus and Alertmanager (when installed); everything stopped at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from agentpress_otel._harness import alertmanager as am_h
from agentpress_otel._harness._proc import find_binary, http_ok, in_ci, port_open
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
    """``stack up``, ``status``, ``doctor`` and ``down`` work end to end on free ports."""
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


def _preflight(url: str, origin: str) -> str | None:
    """What a browser does before a cross-origin OTLP POST: the allowed origin the Collector echoes, or None."""
    req = urllib.request.Request(url, method="OPTIONS", headers={  # noqa: S310 - loopback URL we built
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310 - loopback
            return resp.headers.get("Access-Control-Allow-Origin")
    except urllib.error.HTTPError as exc:
        return exc.headers.get("Access-Control-Allow-Origin")


DOCUMENTED = {"grpc": 4317, "http": 4318, "browser": 4319, "prometheus": 9090, "alertmanager": 9093}


def test_stack_up_uses_the_documented_ports_and_the_cors_origin_given(tmp_path: Path) -> None:
    """Default ports when free (docs/pipeline.md); ``--cors-origin`` is what the browser receiver allows."""
    need(lambda: ensure_collector_binary(build=False))
    need(am_h.binary)
    need(lambda: find_binary("prometheus"))
    taken = [p for p in DOCUMENTED.values() if port_open(p)]
    if taken:
        msg = f"documented ports in use on this machine: {taken}"
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    state = tmp_path / "apotel"
    origin = "http://app.example.test:3000"
    try:
        up = _cli(state, "stack", "up", "--no-build", "--cors-origin", origin)
        assert up.returncode == 0, up.stdout + up.stderr
        comps = {c["name"]: c for c in json.loads((state / "stack.json").read_text())["components"]}
        col = comps["collector"]
        assert col["grpc"] == "http://127.0.0.1:4317"
        assert col["http"] == "http://127.0.0.1:4318"
        assert col["browser"] == "http://127.0.0.1:4319"
        assert comps["prometheus"]["url"] == "http://127.0.0.1:9090"
        assert comps["alertmanager"]["url"] == "http://127.0.0.1:9093"
        assert http_ok("http://127.0.0.1:9090/-/ready") and http_ok("http://127.0.0.1:9093/-/ready")
        traces = "http://127.0.0.1:4319/v1/traces"
        assert _preflight(traces, origin) == origin
        assert _preflight(traces, "http://localhost:5173") is None  # the default is replaced, not extended
    finally:
        down = _cli(state, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr


def test_stack_up_refuses_a_port_flag_that_is_taken(tmp_path: Path) -> None:
    """``stack up`` refuses a port flag that is already in use and starts nothing."""
    need(lambda: ensure_collector_binary(build=False))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        up = _cli(tmp_path / "apotel", "stack", "up", "--no-build", f"--grpc-port={port}")
    assert up.returncode == 1
    assert f"--grpc-port {port} is already in use" in up.stdout
    assert not (tmp_path / "apotel" / "stack.json").exists()


def test_stack_up_without_go_or_binary_says_what_to_install(tmp_path: Path) -> None:
    """Without Go or a Collector binary, ``stack up`` says what to install."""
    env_path = str(tmp_path / "empty-bin")  # no go, wherever the machine installed it
    (tmp_path / "empty-bin").mkdir()
    res = subprocess.run(
        [sys.executable, "-m", "agentpress_otel", "stack", "up"], capture_output=True, text=True, timeout=60,
        check=False, env={"PATH": env_path, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
                          "APOTEL_STATE_DIR": str(tmp_path / "state")})
    assert res.returncode == 1
    for hint in ("install Go", "--collector PATH", "AGENTPRESS_OTEL_COLLECTOR_BIN"):
        assert hint in res.stdout, res.stdout


def test_stack_up_with_collector_path_and_hostmetrics(tmp_path: Path) -> None:
    """``stack up`` uses a given Collector path and runs the hostmetrics agent when asked."""
    binary = Path(need(lambda: ensure_collector_binary(build=False)))
    chosen = tmp_path / "my-otelcol"
    chosen.symlink_to(binary)
    state = tmp_path / "apotel"
    try:
        up = _cli(state, "stack", "up", "--collector", str(chosen), "--hostmetrics", *_ANY_PORTS)
        assert up.returncode == 0, up.stdout + up.stderr
        comps = {c["name"]: c for c in json.loads((state / "stack.json").read_text())["components"]}
        assert comps["collector"]["argv"][0] == str(chosen)
        agent = comps["hostmetrics"]
        assert agent["argv"][0] == str(chosen) and any("hostmetrics.yaml" in a for a in agent["argv"])
        assert _alive(int(agent["pid"]))
        status = _cli(state, "stack", "status")
        assert status.returncode == 0 and "hostmetrics" in status.stdout, status.stdout
    finally:
        down = _cli(state, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
