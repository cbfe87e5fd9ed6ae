"""``agentpress-otel stack up|down|status``: our Collector plus Prometheus and Alertmanager, without Docker.

``up`` builds the Collector (``scripts/build-collector.sh``, a no-op when up to date) and starts, through the
pipeline harness, the same binaries and shipped configs the tests use:

* the Collector with ``collector-config/config.yaml`` on the standard OTLP ports 4317/4318 (free ports
  when those are taken);
* Tempo and Loki stand-ins (our Collector build writing OTLP/JSON lines to ``.apotel/``), since the real
  ones run only in the compose stack;
* Prometheus (rules from ``stack/prometheus/rules``) and Alertmanager when installed, with Alertmanager's
  Slack receiver pointed at a local Slack stand-in whose log shows every message.

The processes outlive the command; their pids, ports and logs live under ``.apotel/``. ``down`` stops them
(SIGTERM to each process group, SIGKILL after 10 s) and removes the pid files.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from agentpress_otel._harness._proc import REPO_ROOT, ComponentMissing, ManagedProcess, free_port, http_ok, port_open

STATE_DIR_NAME = ".apotel"


def state_dir() -> Path:
    """``.apotel/`` in the repository when run from a checkout, else in the current directory.

    ``APOTEL_STATE_DIR`` overrides it (tests use a private directory so they never touch a developer's stack).
    """
    override = os.environ.get("APOTEL_STATE_DIR")
    if override:
        return Path(override)
    base = REPO_ROOT if (REPO_ROOT / "collector-config").is_dir() else Path.cwd()
    return base / STATE_DIR_NAME


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _start_ticks(pid: int) -> int | None:
    """The process start time (clock ticks after boot, /proc/<pid>/stat field 22), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _argv(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0")[:-1]]


def _record(sd: Path, name: str, proc: ManagedProcess, **info: Any) -> dict[str, Any]:
    assert proc.proc is not None
    pid = proc.proc.pid
    (sd / f"{name}.pid").write_text(f"{pid}\n")
    # The full command line and the start time identify the process: a pid alone may be reused.
    return {"name": name, "pid": pid, "argv0": str(proc.argv[0]), "argv": [str(a) for a in proc.argv],
            "start_ticks": _start_ticks(pid), "log": str(proc.log_path), **info}


def _load(sd: Path) -> list[dict[str, Any]]:
    f = sd / "stack.json"
    if not f.exists():
        return []
    try:
        data = json.loads(f.read_text())
    except ValueError:
        return []
    comps: list[dict[str, Any]] = data.get("components", [])
    return comps


def _running(comp: dict[str, Any]) -> bool:
    """Whether the recorded process still runs: same pid, same start time and same full command line
    (``stack down`` must never signal an unrelated process that got the pid later)."""
    pid = int(comp.get("pid", 0))
    if pid <= 0 or not _alive(pid):
        return False
    ticks = comp.get("start_ticks")
    if ticks is not None and _start_ticks(pid) != int(ticks):
        return False
    argv = comp.get("argv")
    if argv:
        return _argv(pid) == [str(a) for a in argv]
    # stack.json written before argv/start_ticks were recorded: the whole first argument must match.
    argv0 = str(comp.get("argv0", ""))
    return bool(argv0) and _argv(pid)[:1] == [argv0]


def _build(console: Console) -> None:
    script = REPO_ROOT / "scripts" / "build-collector.sh"
    if not script.exists():
        return
    if shutil.which("go") is None:
        console.print("[yellow]go not found: using the existing Collector binary, if any[/]")
        return
    console.print("Building the Collector (scripts/build-collector.sh; quick when up to date) …")
    res = subprocess.run(["bash", str(script)], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"collector build failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    last = (res.stdout.strip().splitlines() or [""])[-1]
    console.print(f"[dim]{last}[/]")


def _port_or_free(port: int) -> int:
    return port if not port_open(port) else free_port()


def up(console: Console, *, build: bool = True) -> int:
    sd = state_dir()
    existing = [c for c in _load(sd) if _running(c)]
    if existing:
        console.print("[yellow]The stack is already running[/] (use `agentpress-otel stack down` first).")
        return status(console)
    sd.mkdir(parents=True, exist_ok=True)
    from agentpress_otel._harness import alertmanager as am_h
    from agentpress_otel._harness import collector as col_h
    from agentpress_otel._harness import prometheus as prom_h

    started: list[Any] = []
    comps: list[dict[str, Any]] = []
    try:
        if build:
            _build(console)
        col_h.ensure_collector_binary(build=False)

        slack = ManagedProcess("slack-stub", [sys.executable, "-m", "agentpress_otel._harness.slack_stub"],
                               log_dir=sd / "slack")
        slack.start(ready=lambda: "listening:" in slack.log_tail(5), timeout=30)
        started.append(slack)
        m = re.search(r"listening: (\S+)", slack.log_tail(5))
        slack_url = m.group(1) if m else ""
        comps.append(_record(sd, "slack-stub", slack, url=slack_url, what="Slack stand-in (messages in its log)"))

        tempo = col_h.start_standin("traces", workdir=sd / "tempo")
        started.append(tempo)
        assert tempo.process is not None
        comps.append(_record(sd, "tempo-standin", tempo.process, endpoint=tempo.endpoint, output=str(tempo.output),
                             what="Tempo stand-in (OTLP/JSON lines)"))
        loki = col_h.start_standin("logs", workdir=sd / "loki")
        started.append(loki)
        assert loki.process is not None
        comps.append(_record(sd, "loki-standin", loki.process, endpoint=loki.endpoint, output=str(loki.output),
                             what="Loki stand-in (OTLP/JSON lines)"))

        metrics_port = free_port()
        am_url = prom_url = None
        remote_write = f"http://127.0.0.1:{free_port()}/api/v1/write"  # nowhere, when Prometheus is missing
        targets = {"otel-collector:8888": f"127.0.0.1:{metrics_port}"}
        try:
            (sd / "alertmanager").mkdir(parents=True, exist_ok=True)
            am = am_h.Alertmanager(webhook_url=slack_url, workdir=sd / "alertmanager").start()
            started.append(am)
            assert am.proc is not None
            am_url = am.url
            targets["alertmanager:9093"] = f"127.0.0.1:{am.port}"
            comps.append(_record(sd, "alertmanager", am.proc, url=am.url, what="Alertmanager → Slack stand-in"))
        except ComponentMissing as exc:
            console.print(f"[yellow]Alertmanager skipped:[/] {exc}")
        try:
            prom = prom_h.start_prometheus(targets=targets, workdir=sd / "prometheus")
            started.append(prom)
            prom_url = prom.url
            remote_write = prom.remote_write_url
            comps.append(_record(sd, "prometheus", prom.process, url=prom.url, what="Prometheus (remote write in)"))
        except ComponentMissing as exc:
            console.print(f"[yellow]Prometheus skipped:[/] {exc}")

        grpc_port, http_port = _port_or_free(4317), _port_or_free(4318)
        col = col_h.start_collector(
            traces_endpoint=tempo.endpoint, logs_endpoint=loki.endpoint, remote_write_url=remote_write,
            workdir=sd / "collector", metrics_port=metrics_port,
            env={"OTELCOL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
                 "OTELCOL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}"},
        )
        started.append(col)
        assert col.process is not None
        comps.insert(0, _record(sd, "collector", col.process, grpc=f"http://127.0.0.1:{grpc_port}",
                                http=f"http://127.0.0.1:{http_port}", browser=col.browser_endpoint,
                                health=f"http://127.0.0.1:{col.health_port}/health",
                                what="OpenTelemetry Collector (collector-config/config.yaml)"))
    except Exception as exc:
        console.print(f"[bold red]✗ stack up failed:[/] {exc}")
        for s in reversed(started):
            with contextlib.suppress(Exception):
                s.stop()
        for c in comps:
            (sd / f"{c['name']}.pid").unlink(missing_ok=True)
        return 1
    (sd / "stack.json").write_text(json.dumps({"started": time.time(), "components": comps,
                                               "prometheus": prom_url, "alertmanager": am_url}, indent=2))
    console.print("[bold green]✓ stack is up[/]")
    status(console)
    grpc = comps[0]["grpc"]
    console.print(f"\nNext: [bold]agentpress-otel demo --endpoint {grpc}[/]  ·  check it: "
                  f"[bold]agentpress-otel doctor --endpoint {grpc}[/]  ·  stop: [bold]agentpress-otel stack down[/]")
    return 0


def down(console: Console) -> int:
    sd = state_dir()
    comps = _load(sd)
    if not comps:
        console.print("Nothing to stop (no .apotel/stack.json).")
        return 0
    problems = 0
    for c in comps:
        pid = int(c.get("pid", 0))
        if _running(c):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)  # started in its own session: its group is its pid
            deadline = time.monotonic() + 10
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                time.sleep(0.2)
            if _alive(pid):
                problems += 1
                console.print(f"[red]✗ {c['name']} (pid {pid}) did not stop[/]")
                continue
            console.print(f"✓ stopped {c['name']} (pid {pid})")
        else:
            console.print(f"[dim]{c['name']} (pid {pid}) was not running[/]")
        (sd / f"{c['name']}.pid").unlink(missing_ok=True)
    if not problems:
        (sd / "stack.json").unlink(missing_ok=True)
    return 1 if problems else 0


_WHERE = (("grpc", "OTLP gRPC "), ("http", "OTLP/HTTP "), ("browser", "browser "), ("url", ""),
          ("endpoint", ""), ("output", ""))


def status(console: Console) -> int:
    comps = _load(state_dir())
    if not comps:
        console.print("The stack is not running (start it with `agentpress-otel stack up`).")
        return 1
    t = Table(title="agentpress-otel stack", title_justify="left")
    for col in ("component", "pid", "state", "where", "log"):
        t.add_column(col, overflow="fold")
    down_count = 0
    for c in comps:
        alive = _running(c)
        health = c.get("health") or (f"{c['url']}/-/ready" if c.get("url") and c["name"] in
                                     ("prometheus", "alertmanager") else None)
        healthy = alive and (health is None or http_ok(health, timeout=1.0))
        down_count += not healthy
        state = "[green]up[/]" if healthy else ("[yellow]unhealthy[/]" if alive else "[red]down[/]")
        where = "\n".join(f"{label}{c[k]}" for k, label in _WHERE if c.get(k))
        t.add_row(f"{c['name']}\n[dim]{c.get('what', '')}[/]", str(c.get("pid")), state, where, str(c.get("log")))
    console.print(t)
    return 1 if down_count else 0


def run(action: str, *, build: bool = True, console: Console | None = None) -> int:
    """Dispatch ``stack up|down|status``; returns the exit code.

    Example::

        raise SystemExit(run("status"))
    """
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    if action == "up":
        return up(console, build=build)
    if action == "down":
        return down(console)
    return status(console)
